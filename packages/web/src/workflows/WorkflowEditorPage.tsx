import { useMutation, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import {
  findCredentialType,
  findIntegrationByNodeType,
  type Integration,
  useIntegrations,
  type Workflow,
  type WorkflowNode,
  type WorkspaceSummary,
} from '../api/hooks';
import { errorCode, errorMessage, queryClient, trpc } from '../api/trpc';
import { Link, paths, useDocumentTitle } from '../app/router';
import { PageHeader } from '../app/Shell';
import { schemaFields } from '../schema-form/jsonSchema';
import { Dialog } from '../ui/Dialog';
import { EmptyState, ErrorAlert, Spinner, useToast } from '../ui/Feedback';
import { NodeDialog } from './NodeDialog';

export function WorkflowEditorPage({
  workspace,
  workflowId,
}: {
  workspace: WorkspaceSummary;
  workflowId: string;
}) {
  const workflow = useQuery(trpc.workflows.get.queryOptions({ workflowId }));
  const integrations = useIntegrations();
  const [editing, setEditing] = useState<WorkflowNode | 'new' | null>(null);
  const [removing, setRemoving] = useState<WorkflowNode | null>(null);
  useDocumentTitle(workflow.data?.name ?? 'Workflow');

  const back = (
    <Link href={paths.section(workspace.id, 'workflows')} className="back-link">
      ← All workflows
    </Link>
  );
  if (workflow.isPending) return <Spinner label="Loading the workflow" />;
  if (workflow.isError)
    return (
      <>
        {back}
        <ErrorAlert>
          {errorCode(workflow.error) === 'NOT_FOUND'
            ? 'This workflow does not exist.'
            : errorMessage(workflow.error)}
        </ErrorAlert>
      </>
    );
  const data = workflow.data;
  const needing = data.nodes.filter((node) => node.status === 'needs-credential').length;

  return (
    <>
      {back}
      <PageHeader
        title={data.name}
        description={`${data.nodes.length} ${data.nodes.length === 1 ? 'node' : 'nodes'}, run in order.`}
        actions={
          // Issue 5 adds workflows.run: a "Run" button goes here, showing each node's result.
          <button type="button" className="button button-primary" onClick={() => setEditing('new')}>
            Add node
          </button>
        }
      />
      {needing > 0 && (
        <div className="alert alert-warning" role="status">
          {needing === 1 ? '1 node needs' : `${needing} nodes need`} a credential before this workflow can
          run.
        </div>
      )}
      {data.nodes.length === 0 ? (
        <EmptyState
          title="No nodes yet"
          action={
            <button type="button" className="button button-primary" onClick={() => setEditing('new')}>
              Add the first node
            </button>
          }
        >
          <p>Add an action node, fill in its parameters, and pick the credential it uses.</p>
        </EmptyState>
      ) : (
        <ol className="node-list" aria-label="Nodes">
          {data.nodes.map((node, index) => (
            <NodeCard
              key={node.id}
              index={index}
              node={node}
              workflow={data}
              integration={findIntegrationByNodeType(integrations.data, node.nodeType)}
              onEdit={() => setEditing(node)}
              onRemove={() => setRemoving(node)}
            />
          ))}
        </ol>
      )}
      <NodeDialog
        workspaceId={workspace.id}
        workflow={data}
        node={editing === 'new' ? null : editing}
        open={editing !== null}
        onClose={() => setEditing(null)}
      />
      <RemoveNodeDialog workflow={data} node={removing} onClose={() => setRemoving(null)} />
    </>
  );
}

function NodeCard({
  index,
  node,
  workflow,
  integration,
  onEdit,
  onRemove,
}: {
  index: number;
  node: WorkflowNode;
  workflow: Workflow;
  integration: Integration | null;
  onEdit: () => void;
  onRemove: () => void;
}) {
  const selectable = useQuery(
    trpc.secrets.selectable.queryOptions({ workspaceId: workflow.workspaceId, nodeType: node.nodeType }),
  );
  const secret = selectable.data?.find((candidate) => candidate.id === node.secretId);
  const credentialLabel = secret
    ? (findCredentialType(
        [integration].filter((i): i is Integration => i !== null),
        secret.credentialType,
      )?.credentialType.displayName ?? secret.credentialType)
    : null;
  const params = schemaFields(integration?.paramsSchema)
    .map((field) => ({ field, value: (node.params as Record<string, unknown> | null)?.[field.name] }))
    .filter(
      (entry): entry is { field: (typeof entry)['field']; value: string } =>
        typeof entry.value === 'string' && entry.value !== '',
    )
    .slice(0, 3);
  const needsCredential = node.status === 'needs-credential';

  return (
    <li className={`node-card${needsCredential ? ' node-card-attention' : ''}`} data-node-name={node.name}>
      <div className="node-index" aria-hidden="true">
        {index + 1}
      </div>
      <div className="node-main">
        <h2 className="node-title">{node.name}</h2>
        <p className="node-kind">
          {integration?.displayName ?? node.nodeType} <code>{node.nodeType}</code>
        </p>
        {params.length > 0 && (
          <dl className="node-params">
            {params.map(({ field, value }) => (
              <div key={field.name}>
                <dt>{field.label}</dt>
                <dd>{value.length > 80 ? `${value.slice(0, 77)}…` : value}</dd>
              </div>
            ))}
          </dl>
        )}
        <div className="node-credential">
          {needsCredential ? (
            <p className="needs-credential" data-testid="needs-credential">
              <span className="badge badge-warning">Needs a credential</span>{' '}
              {node.lostSecretName
                ? `The secret “${node.lostSecretName}” it used was deleted. Choose another one.`
                : 'Choose the credential this node uses.'}
            </p>
          ) : secret ? (
            <p>
              <span className="muted">Credential:</span> <strong>{secret.name}</strong>{' '}
              {credentialLabel && <span className="muted">({credentialLabel})</span>}
            </p>
          ) : node.secretId ? (
            <p className="muted">Credential selected.</p>
          ) : (
            <p className="muted">No credential.</p>
          )}
        </div>
      </div>
      <div className="node-actions">
        <button
          type="button"
          className={`button button-small${needsCredential ? ' button-primary' : ''}`}
          onClick={onEdit}
          aria-label={`${needsCredential ? 'Choose credential for' : 'Edit'} ${node.name}`}
        >
          {needsCredential ? 'Choose credential' : 'Edit'}
        </button>
        <button
          type="button"
          className="button button-small button-danger-ghost"
          onClick={onRemove}
          aria-label={`Remove ${node.name}`}
        >
          Remove
        </button>
      </div>
    </li>
  );
}

function RemoveNodeDialog({
  workflow,
  node,
  onClose,
}: {
  workflow: Workflow;
  node: WorkflowNode | null;
  onClose: () => void;
}) {
  const remove = useMutation(trpc.workflows.removeNode.mutationOptions());
  const toast = useToast();
  async function confirm() {
    if (!node) return;
    try {
      await remove.mutateAsync({ workflowId: workflow.id, nodeId: node.id });
      await queryClient.invalidateQueries({ queryKey: trpc.workflows.pathKey() });
      toast(`Node “${node.name}” removed.`);
      onClose();
    } catch {
      // Shown below.
    }
  }
  return (
    <Dialog open={node !== null} onClose={onClose} title="Remove node" size="small">
      <div className="stack">
        <p>
          Remove <strong>{node?.name}</strong> from {workflow.name}? The secret it uses is not deleted.
        </p>
        {remove.error && <ErrorAlert>{errorMessage(remove.error)}</ErrorAlert>}
        <div className="form-actions">
          <button type="button" className="button" onClick={onClose}>
            Cancel
          </button>
          <button
            type="button"
            className="button button-danger"
            onClick={confirm}
            disabled={remove.isPending}
          >
            Remove node
          </button>
        </div>
      </div>
    </Dialog>
  );
}
