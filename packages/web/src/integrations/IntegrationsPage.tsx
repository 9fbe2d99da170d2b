import { rolePermissions } from '@latchkey/core/roles';
import { useInfiniteQuery, useMutation } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import {
  findCredentialType,
  type Integration,
  type Me,
  type SecretMeta,
  useIntegrations,
  type WorkspaceSummary,
} from '../api/hooks';
import { errorMessage, trpc } from '../api/trpc';
import { Link, paths, useDocumentTitle } from '../app/router';
import { PageHeader } from '../app/Shell';
import { CreateSecretDialog } from '../secrets/CreateSecretDialog';
import { RenameSecretDialog } from '../secrets/lazyDialogs';
import { DeleteSecretDialog } from '../secrets/SecretDialogs';
import { DataTable, LoadMore } from '../ui/DataTable';
import { ErrorAlert, Notice, Spinner } from '../ui/Feedback';
import { Time } from '../ui/Time';

const PAGE_SIZE = 50;

/**
 * Integrations: the OAuth2 connections of the workspace, by integration, with Connect / Reconnect / Disconnect.
 * Connections are secrets of kind `oauth2` (one model with Secrets & API Keys: the same list, deletion, rules).
 * The service's consent screen sends the browser back here through `/oauth/callback`, with `?connected=<id>`
 * or `?oauthError=<code>`; the page says what happened and takes the parameter out of the address.
 */
export function IntegrationsPage({ me, workspace }: { me: Me; workspace: WorkspaceSummary }) {
  useDocumentTitle('Integrations');
  const listAll = rolePermissions.listAllSecrets(workspace.role);
  const integrations = useIntegrations();
  const [outcome] = useState(consentOutcome);
  // Said once: a reload or a shared address repeats nothing.
  useEffect(() => {
    if (outcome) window.history.replaceState(null, '', window.location.pathname);
  }, [outcome]);
  const [connecting, setConnecting] = useState<Integration | null>(null);
  const [disconnecting, setDisconnecting] = useState<SecretMeta | null>(null);
  const [renaming, setRenaming] = useState<SecretMeta | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);

  const connections = useInfiniteQuery(
    trpc.secrets.list.infiniteQueryOptions(
      { workspaceId: workspace.id, kind: 'oauth2', limit: PAGE_SIZE },
      { getNextPageParam: (last) => last.nextCursor ?? undefined },
    ),
  );
  const items = connections.data?.pages.flatMap((page) => page.items) ?? [];
  const withOAuth2 = (integrations.data ?? []).filter((integration) =>
    integration.credentialTypes.some((type) => type.kind === 'oauth2'),
  );
  const connected = outcome?.connected ? items.find((item) => item.id === outcome.connected) : undefined;

  return (
    <>
      <PageHeader
        title="Integrations"
        description={
          <>
            Services that workflow nodes reach through an OAuth2 connection: you approve access at the
            service, and its tokens are stored encrypted, refreshed on their own and never shown.{' '}
            {listAll
              ? 'Everyone in the workspace can select a connection in a node of its integration.'
              : 'These are the connections you made; your teammates’ connections can be selected in nodes too.'}{' '}
            Pasted API keys and tokens are under{' '}
            <Link href={paths.section(workspace.id, 'secrets')}>Secrets &amp; API Keys</Link>.
          </>
        }
      />

      {outcome?.connected && connected && (
        <Notice tone="ok" role="status">
          <p data-connected={connected.id}>
            “{connected.name}” is connected
            {connected.connection?.account ? ` as ${connected.connection.account}` : ''}
            {connected.connection?.scopes ? ` · scopes ${connected.connection.scopes}` : ''}.
          </p>
        </Notice>
      )}
      {outcome?.error && (
        <ErrorAlert>
          <span data-oauth-error={outcome.error}>{consentErrorMessage(outcome.error)}</span>
        </ErrorAlert>
      )}
      {actionError && <ErrorAlert>{actionError}</ErrorAlert>}
      {(integrations.isPending || connections.isPending) && <Spinner label="Loading integrations" />}
      {integrations.isError && <ErrorAlert>{errorMessage(integrations.error)}</ErrorAlert>}
      {connections.isError && <ErrorAlert>{errorMessage(connections.error)}</ErrorAlert>}

      {connections.isSuccess &&
        withOAuth2.map((integration) => (
          <IntegrationSection
            key={integration.id}
            me={me}
            workspace={workspace}
            integration={integration}
            connections={items.filter((item) => item.integrationId === integration.id)}
            highlighted={outcome?.connected ?? null}
            onConnect={() => setConnecting(integration)}
            onDisconnect={setDisconnecting}
            onRename={setRenaming}
            onError={setActionError}
          />
        ))}
      {integrations.isSuccess && withOAuth2.length === 0 && (
        <p className="muted">No installed integration connects through OAuth2.</p>
      )}
      <LoadMore pages={connections} />

      <CreateSecretDialog
        workspaceId={workspace.id}
        kind="oauth2"
        integrationId={connecting?.id}
        open={connecting !== null}
        onClose={() => setConnecting(null)}
      />
      <DeleteSecretDialog
        workspaceId={workspace.id}
        secret={disconnecting}
        onClose={() => setDisconnecting(null)}
      />
      <RenameSecretDialog workspaceId={workspace.id} secret={renaming} onClose={() => setRenaming(null)} />
    </>
  );
}

function IntegrationSection({
  me,
  workspace,
  integration,
  connections,
  highlighted,
  onConnect,
  onDisconnect,
  onRename,
  onError,
}: {
  me: Me;
  workspace: WorkspaceSummary;
  integration: Integration;
  connections: SecretMeta[];
  highlighted: string | null;
  onConnect: () => void;
  onDisconnect: (connection: SecretMeta) => void;
  onRename: (connection: SecretMeta) => void;
  onError: (message: string | null) => void;
}) {
  const headingId = `integration-${integration.id}`;
  return (
    <section className="integration-section" aria-labelledby={headingId} data-integration={integration.id}>
      <header className="integration-header">
        <div>
          <h2 id={headingId} className="section-title">
            {integration.displayName}
          </h2>
          <p className="muted">{integration.description}</p>
        </div>
        <button
          type="button"
          className="button button-primary"
          onClick={onConnect}
          aria-label={`Connect ${integration.displayName}`}
        >
          Connect
        </button>
      </header>
      {connections.length === 0 ? (
        <p className="empty-inline">No {integration.displayName} connections yet.</p>
      ) : (
        <DataTable
          caption={`${integration.displayName} connections`}
          columns={['Name', 'Status', 'Scopes', 'Last refresh', 'Created']}
          actions
        >
          {connections.map((connection) => (
            <ConnectionRow
              key={connection.id}
              me={me}
              workspace={workspace}
              integration={integration}
              connection={connection}
              highlighted={connection.id === highlighted}
              onDisconnect={() => onDisconnect(connection)}
              onRename={() => onRename(connection)}
              onError={onError}
            />
          ))}
        </DataTable>
      )}
    </section>
  );
}

function ConnectionRow({
  me,
  workspace,
  integration,
  connection,
  highlighted,
  onDisconnect,
  onRename,
  onError,
}: {
  me: Me;
  workspace: WorkspaceSummary;
  integration: Integration;
  connection: SecretMeta;
  highlighted: boolean;
  onDisconnect: () => void;
  onRename: () => void;
  onError: (message: string | null) => void;
}) {
  const type = findCredentialType([integration], connection.credentialType)?.credentialType;
  const mayChange = rolePermissions.manageSecret(workspace.role, connection.createdBy.id === me.user.id);
  const status = connection.connection?.status ?? 'pending';
  const mine = connection.createdBy.id === me.user.id;
  return (
    <tr
      data-secret-id={connection.id}
      data-connection-status={status}
      data-highlight={highlighted || undefined}
    >
      <th scope="row" className="cell-name">
        <span className="secret-name">{connection.name}</span>
        <span className="cell-sub">{type?.displayName ?? connection.credentialType}</span>
        {connection.connection?.account && (
          <span className="cell-sub">Connected as {connection.connection.account}</span>
        )}
      </th>
      <td>
        <ConnectionStatus status={status} />
      </td>
      <td className="cell-scopes">
        {connection.connection?.scopes ? (
          <code>{connection.connection.scopes}</code>
        ) : (
          <span className="muted">—</span>
        )}
      </td>
      <td>
        {connection.connection?.lastRefreshAt ? (
          <Time iso={connection.connection.lastRefreshAt} withTime />
        ) : (
          <span className="muted">Not yet</span>
        )}
        {connection.connection?.expiresAt && (
          <span className="cell-sub">
            Token valid until <Time iso={connection.connection.expiresAt} withTime />
          </span>
        )}
      </td>
      <td>
        <span className="cell-main nowrap">
          <Time iso={connection.createdAt} />
        </span>
        <span className="cell-sub" title={connection.createdBy.email}>
          by {mine ? `${connection.createdBy.name} (you)` : connection.createdBy.name}
        </span>
      </td>
      <td className="cell-actions">
        {mayChange && type?.grant === 'authorizationCode' && (
          <ReconnectButton workspaceId={workspace.id} connection={connection} onError={onError} />
        )}
        {mayChange && (
          <button
            type="button"
            className="button button-small"
            onClick={onRename}
            aria-label={`Rename ${connection.name}`}
          >
            Rename
          </button>
        )}
        {mayChange && (
          <button
            type="button"
            className="button button-small button-danger-ghost"
            onClick={onDisconnect}
            aria-label={`Disconnect ${connection.name}`}
          >
            Disconnect
          </button>
        )}
      </td>
    </tr>
  );
}

function ConnectionStatus({ status }: { status: 'connected' | 'pending' | 'needs-reconnect' }) {
  if (status === 'connected') return <span className="badge badge-ok">Connected</span>;
  if (status === 'needs-reconnect')
    return (
      <>
        <span className="badge badge-danger">Needs reconnect</span>
        <span className="cell-sub">The service no longer accepts its access: runs that use it fail.</span>
      </>
    );
  return (
    <>
      <span className="badge badge-warning">Not connected</span>
      <span className="cell-sub">Access was never approved at the service.</span>
    </>
  );
}

/** Reconnect keeps the connection's id: every node that uses it keeps working with the new tokens. */
function ReconnectButton({
  workspaceId,
  connection,
  onError,
}: {
  workspaceId: string;
  connection: SecretMeta;
  onError: (message: string | null) => void;
}) {
  const reconnect = useMutation(trpc.secrets.reconnect.mutationOptions());
  async function run() {
    onError(null);
    try {
      const { authorizationUrl } = await reconnect.mutateAsync({ workspaceId, secretId: connection.id });
      window.location.assign(authorizationUrl);
    } catch (error) {
      onError(`Could not reconnect “${connection.name}”: ${errorMessage(error)}`);
    }
  }
  const urgent = connection.connection?.status !== 'connected';
  return (
    <button
      type="button"
      className={`button button-small${urgent ? ' button-primary' : ''}`}
      onClick={run}
      disabled={reconnect.isPending}
      aria-label={`Reconnect ${connection.name}`}
    >
      {reconnect.isPending ? 'Going to the service…' : 'Reconnect'}
    </button>
  );
}

/** `?connected=` / `?oauthError=` from the callback. */
function consentOutcome(): { connected?: string; error?: string } | null {
  const query = new URLSearchParams(window.location.search);
  const connected = query.get('connected');
  const error = query.get('oauthError');
  if (!connected && !error) return null;
  return {
    ...(connected ? { connected } : {}),
    // Only a code's own characters: the address bar is not a place to take text from.
    ...(error ? { error: error.replace(/[^a-z0-9_]/gi, '').slice(0, 64) || 'unknown' } : {}),
  };
}

const CONSENT_ERRORS: Record<string, string> = {
  access_denied: 'Access was not approved at the service, so nothing was connected.',
  invalid_client:
    'The service did not accept the client ID or client secret. Check them in your app’s settings at the service and connect again.',
  invalid_grant: 'The service did not accept the approval it had just given. Connect again.',
  invalid_scope: 'The service refused the scopes asked for. Check the scopes and connect again.',
  unauthorized_client:
    'The service does not allow this client to connect this way. Check your app’s settings.',
  invalid_state:
    'This approval could not be matched to a connection you started, or it was already used. Connect again.',
  expired: 'The approval took longer than 10 minutes. Connect again.',
  wrong_user: 'This approval was started by someone else. Connect again while signed in as yourself.',
  signed_out: 'You were signed out while approving access. Sign in and connect again.',
  not_found: 'The connection was deleted while access was being approved.',
  conflict: 'The connection changed while access was being approved. Connect again.',
};

function consentErrorMessage(code: string): string {
  return CONSENT_ERRORS[code] ?? `The service did not connect (${code}). Try again.`;
}
