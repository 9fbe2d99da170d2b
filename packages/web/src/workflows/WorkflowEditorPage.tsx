import { plural } from '@latchkey/core/words';
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
import { errorCode, errorMessage, queryClient, type RouterOutputs, trpc } from '../api/trpc';
import { Link, paths, useDocumentTitle } from '../app/router';
import { PageHeader } from '../app/Shell';
import { schemaFields } from '../schema-form/jsonSchema';
import { ConfirmDialog } from '../ui/ConfirmDialog';
import { FailureDetails } from '../ui/FailureDetails';
import { EmptyState, ErrorAlert, Spinner, useToast } from '../ui/Feedback';
import { formatDateTime } from '../ui/format';
import { NodeDialog } from './NodeDialog';

type RunResult = RouterOutputs['workflows']['run'];
type NodeRunResult = RunResult['nodes'][number];

interface LastRun {
  workflowId: string;
  result: RunResult;
  finishedAt: string;
}

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
  const run = useMutation(trpc.workflows.run.mutationOptions());
  const [lastRun, setLastRun] = useState<LastRun | null>(null);
  useDocumentTitle(workflow.data?.name ?? 'Workflow');

  // Every node runs (a failing one does not stop the others); each result is shown next to its node.
  // Runs mark secrets as used and may surface deleted credentials, so the lists are fetched again after.
  async function runWorkflow() {
    setLastRun(null);
    try {
      const result = await run.mutateAsync({ workflowId });
      setLastRun({ workflowId, result, finishedAt: new Date().toISOString() });
    } catch {
      // Shown below.
    }
    await Promise.all([
      queryClient.invalidateQueries({ queryKey: trpc.workflows.pathKey() }),
      queryClient.invalidateQueries({ queryKey: trpc.secrets.list.pathKey() }),
    ]);
  }

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
  const shownRun = lastRun?.workflowId === data.id ? lastRun : null;
  const results = new Map(shownRun?.result.nodes.map((result) => [result.nodeId, result]));

  return (
    <>
      {back}
      <PageHeader
        title={data.name}
        description={
          data.nodes.length === 0
            ? 'No nodes yet.'
            : data.nodes.length === 1
              ? '1 node.'
              : `${plural(data.nodes.length, 'node')}, run in order.`
        }
        actions={
          <>
            <button type="button" className="button" onClick={() => setEditing('new')}>
              Add node
            </button>
            <button
              type="button"
              className="button button-primary"
              onClick={runWorkflow}
              disabled={run.isPending || data.nodes.length === 0}
              aria-describedby={needing > 0 ? 'needs-credential-banner' : undefined}
            >
              {run.isPending
                ? 'Running…'
                : needing > 0
                  ? `Run workflow (${plural(needing, 'node')} will fail)`
                  : 'Run workflow'}
            </button>
          </>
        }
      />
      <RunStatus pending={run.isPending} lastRun={shownRun} workflowName={data.name} />
      {run.error && <ErrorAlert>{`The workflow could not be run: ${errorMessage(run.error)}`}</ErrorAlert>}
      {needing > 0 && (
        <div className="alert alert-warning" role="status" id="needs-credential-banner">
          {needsCredentialNotice(needing, data.nodes.length)}
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
              result={results.get(node.id)}
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
  result,
  onEdit,
  onRemove,
}: {
  index: number;
  node: WorkflowNode;
  workflow: Workflow;
  integration: Integration | null;
  result: NodeRunResult | undefined;
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
    <li
      className={`node-card${result && !result.ok ? ' node-card-failed' : needsCredential ? ' node-card-attention' : ''}`}
      data-node-name={node.name}
    >
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
        {result && <NodeResult result={result} />}
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

/**
 * A node's outcome in the last run, inside its card: what the service answered, or what went wrong, without
 * naming the node again (`reason`; `error` names it, for the run's summary). A failure's system code
 * (`ENOTFOUND`) is in a "Details" disclosure, not in the sentence.
 */
function NodeResult({ result }: { result: NodeRunResult }) {
  return (
    <div
      className={`node-result ${result.ok ? 'node-result-ok' : 'node-result-failed'}`}
      data-testid="node-result"
      data-result={result.ok ? 'ok' : 'failed'}
    >
      <p className="result-line">
        <span className={`badge ${result.ok ? 'badge-ok' : 'badge-danger'}`}>
          {result.ok ? 'Succeeded' : 'Failed'}
        </span>{' '}
        <span className="node-result-text">
          {result.ok ? (result.summary ?? 'Done.') : (result.reason ?? result.error ?? 'The node failed.')}
        </span>{' '}
        <span className="node-result-time">{formatDuration(result.durationMs)}</span>
      </p>
      <FailureDetails code={result.code} />
    </div>
  );
}

function formatDuration(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/**
 * The run's outcome, in a polite live region that is in the page before the first run: a visible summary
 * and, for screen readers, each node's result (the same text shown next to the node).
 */
function RunStatus({
  pending,
  lastRun,
  workflowName,
}: {
  pending: boolean;
  lastRun: LastRun | null;
  workflowName: string;
}) {
  const nodes = lastRun?.result.nodes ?? [];
  const failed = nodes.filter((node) => !node.ok).length;
  return (
    <div className="run-status" role="status" aria-live="polite" aria-atomic="true" data-testid="run-status">
      {pending ? (
        <div className="alert">Running {workflowName}…</div>
      ) : lastRun ? (
        <div className={`alert ${failed === 0 ? 'alert-ok' : 'alert-error'}`}>
          <p>
            <strong>{`The workflow ran: ${runOutcome(nodes.length, failed)}.`}</strong>{' '}
            <span className="muted">
              Finished {formatDateTime(lastRun.finishedAt)}. Results are shown with each node.
            </span>
          </p>
          <ul className="visually-hidden">
            {nodes.map((node) => (
              <li key={node.nodeId}>
                {node.ok ? `${node.nodeName} succeeded: ${node.summary ?? 'done'}.` : node.error}
              </li>
            ))}
          </ul>
        </div>
      ) : null}
    </div>
  );
}

/** "1 node needs a credential: a run fails it, naming it, and runs the other 2 nodes. …", with no "the others" of none. */
function needsCredentialNotice(needing: number, count: number): string {
  const one = needing === 1;
  const others = count - needing;
  return [
    `${plural(needing, 'node')} ${one ? 'needs' : 'need'} a credential: a run fails ${one ? 'it' : 'them'}, naming ${one ? 'it' : 'them'}`,
    others > 0 ? `, and runs the other ${others === 1 ? 'node' : plural(others, 'node')}.` : '.',
    ` Choose a credential for ${one ? 'it' : 'each'} to fix this.`,
  ].join('');
}

/** "its node failed", "2 of 3 nodes failed", "all 3 nodes succeeded": no "1 of 1 node", no "0 of …". */
function runOutcome(count: number, failed: number): string {
  if (count === 0) return 'it has no nodes';
  const outcome = failed === 0 ? 'succeeded' : 'failed';
  if (count === 1) return `its node ${outcome}`;
  if (failed === 0 || failed === count) return `all ${count} nodes ${outcome}`;
  return `${failed} of ${count} nodes failed`;
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
    await remove.mutateAsync({ workflowId: workflow.id, nodeId: node.id });
    await queryClient.invalidateQueries({ queryKey: trpc.workflows.pathKey() });
    toast(`Node “${node.name}” removed.`);
    onClose();
  }
  return (
    <ConfirmDialog
      open={node !== null}
      onClose={onClose}
      title="Remove node"
      size="small"
      confirmLabel="Remove node"
      onConfirm={confirm}
    >
      <p>
        Remove <strong>{node?.name}</strong> from {workflow.name}? The secret it uses is not deleted.
      </p>
    </ConfirmDialog>
  );
}
