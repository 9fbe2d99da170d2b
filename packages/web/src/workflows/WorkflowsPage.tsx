import { useMutation, useQuery } from '@tanstack/react-query';
import { FormProvider, useForm } from 'react-hook-form';
import type { WorkspaceSummary } from '../api/hooks';
import { errorMessage, fieldIssues, queryClient, trpc } from '../api/trpc';
import { Link, navigate, paths, useDocumentTitle } from '../app/router';
import { PageHeader } from '../app/Shell';
import { applyFieldIssues } from '../schema-form/SchemaFields';
import { DataTable } from '../ui/DataTable';
import { EmptyState, ErrorAlert, Spinner } from '../ui/Feedback';
import { TextField } from '../ui/TextField';
import { Time } from '../ui/Time';

export function WorkflowsPage({ workspace }: { workspace: WorkspaceSummary }) {
  useDocumentTitle('Workflows');
  const workflows = useQuery(trpc.workflows.list.queryOptions({ workspaceId: workspace.id }));
  const attention = workflows.data?.filter((workflow) => workflow.needsAttention).length ?? 0;

  return (
    <>
      <PageHeader
        title="Workflows"
        description="Workflows are made of action nodes. Each node that calls a service uses one of the workspace’s secrets of its type."
      />
      <CreateWorkflowForm workspaceId={workspace.id} />
      {workflows.isPending && <Spinner label="Loading workflows" />}
      {workflows.isError && <ErrorAlert>{errorMessage(workflows.error)}</ErrorAlert>}
      {workflows.data && workflows.data.length === 0 && (
        <EmptyState title="No workflows yet">
          <p>
            Create a workflow, then add nodes: send an email with SendGrid, post to Slack, call any HTTP API.
          </p>
        </EmptyState>
      )}
      {attention > 0 && (
        <div className="alert alert-warning" role="status">
          {attention === 1
            ? '1 workflow needs attention: a secret one of its nodes used was deleted.'
            : `${attention} workflows need attention: a secret their nodes used was deleted.`}
        </div>
      )}
      {workflows.data && workflows.data.length > 0 && (
        <DataTable
          caption={`Workflows in ${workspace.name}`}
          columns={['Name', 'Nodes', 'Status', 'Updated']}
        >
          {workflows.data.map((workflow) => (
            <tr key={workflow.id} data-workflow-name={workflow.name}>
              <th scope="row" className="cell-name">
                <Link href={paths.workflow(workspace.id, workflow.id)} className="table-link">
                  {workflow.name}
                </Link>
              </th>
              <td>{workflow.nodeCount}</td>
              <td>
                {workflow.needsAttention ? (
                  <span className="badge badge-warning">Needs attention</span>
                ) : (
                  <span className="badge badge-ok">Ready</span>
                )}
              </td>
              <td>
                <Time iso={workflow.updatedAt} withTime />
              </td>
            </tr>
          ))}
        </DataTable>
      )}
    </>
  );
}

function CreateWorkflowForm({ workspaceId }: { workspaceId: string }) {
  const form = useForm<{ name: string }>({ defaultValues: { name: '' } });
  const create = useMutation(trpc.workflows.create.mutationOptions());
  const onSubmit = form.handleSubmit(async ({ name }) => {
    try {
      const workflow = await create.mutateAsync({ workspaceId, name: name.trim() });
      await queryClient.invalidateQueries({ queryKey: trpc.workflows.list.queryKey({ workspaceId }) });
      form.reset();
      navigate(paths.workflow(workspaceId, workflow.id));
    } catch (error) {
      applyFieldIssues(fieldIssues(error), new Set(['name']), form.setError);
    }
  });
  return (
    <FormProvider {...form}>
      <form className="inline-form card" onSubmit={onSubmit} noValidate aria-label="Create a workflow">
        <TextField
          name="name"
          label="New workflow"
          placeholder="Welcome new customers"
          autoComplete="off"
          required
        />
        <button type="submit" className="button button-primary" disabled={form.formState.isSubmitting}>
          Create workflow
        </button>
        {create.error && fieldIssues(create.error).length === 0 && (
          <ErrorAlert>{errorMessage(create.error)}</ErrorAlert>
        )}
      </form>
    </FormProvider>
  );
}
