import { rolePermissions } from '@latchkey/core/roles';
import { useInfiniteQuery, useMutation, useQuery } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import {
  findCredentialType,
  type Me,
  type SecretMeta,
  useIntegrations,
  type WorkspaceSummary,
} from '../api/hooks';
import { errorMessage, queryClient, trpc } from '../api/trpc';
import { Link, paths, useDocumentTitle } from '../app/router';
import { PageHeader } from '../app/Shell';
import { schemaFields } from '../schema-form/jsonSchema';
import { DataTable, LoadMore } from '../ui/DataTable';
import { FailureDetails } from '../ui/FailureDetails';
import { EmptyState, ErrorAlert, Spinner, useToast } from '../ui/Feedback';
import { Time } from '../ui/Time';
import { NoMatches, ToolbarField } from '../ui/Toolbar';
import {
  CreateSecretDialog,
  DeleteSecretDialog,
  ImportN8nDialog,
  RenameSecretDialog,
  RotateSecretDialog,
} from './lazyDialogs';
import { TestBadge } from './TestBadge';

const PAGE_SIZE = 20;

function useDebounced<T>(value: T, delay: number): T {
  const [debounced, setDebounced] = useState(value);
  useEffect(() => {
    const timer = window.setTimeout(() => setDebounced(value), delay);
    return () => window.clearTimeout(timer);
  }, [value, delay]);
  return debounced;
}

export function SecretsPage({ me, workspace }: { me: Me; workspace: WorkspaceSummary }) {
  useDocumentTitle('Secrets & API Keys');
  const listAll = rolePermissions.listAllSecrets(workspace.role);
  const readAudit = rolePermissions.readAudit(workspace.role);
  const integrations = useIntegrations();
  const members = useQuery({
    ...trpc.workspaces.members.queryOptions({ workspaceId: workspace.id }),
    enabled: listAll,
  });
  const [integrationId, setIntegrationId] = useState('');
  const [createdBy, setCreatedBy] = useState('');
  const [searchText, setSearchText] = useState('');
  const search = useDebounced(searchText.trim(), 250);
  const [creating, setCreating] = useState(false);
  const [deleting, setDeleting] = useState<SecretMeta | null>(null);
  const [rotating, setRotating] = useState<SecretMeta | null>(null);
  const [renaming, setRenaming] = useState<SecretMeta | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);

  const secrets = useInfiniteQuery(
    trpc.secrets.list.infiniteQueryOptions(
      {
        workspaceId: workspace.id,
        // Pasted keys only: OAuth2 connections belong to the Integrations settings.
        kind: 'static',
        limit: PAGE_SIZE,
        ...(integrationId ? { integrationId } : {}),
        ...(createdBy ? { createdBy } : {}),
        ...(search ? { search } : {}),
      },
      { getNextPageParam: (last) => last.nextCursor ?? undefined },
    ),
  );
  const items = secrets.data?.pages.flatMap((page) => page.items) ?? [];
  const filtered = Boolean(integrationId || createdBy || search);

  const [importing, setImporting] = useState(false);
  const newButton = (
    <button type="button" className="button button-primary" onClick={() => setCreating(true)}>
      New secret
    </button>
  );

  return (
    <>
      <PageHeader
        title="Secrets & API Keys"
        description={
          <>
            {listAll
              ? 'Credentials that workflow nodes use to call services. Everyone in the workspace can select them in a node of the matching type; values are never shown again after saving.'
              : 'The credentials you added. You can also select the secrets your teammates added when you configure a node of the matching type.'}{' '}
            Services you connect through OAuth2 (a Slack app, an OAuth2 API) are under{' '}
            <Link href={paths.section(workspace.id, 'integrations')}>Integrations</Link>.
          </>
        }
        actions={
          <>
            <button type="button" className="button" onClick={() => setImporting(true)}>
              Import from n8n
            </button>
            {newButton}
          </>
        }
      />

      <section aria-label="Filters" className="toolbar">
        <ToolbarField label="Search by name" wide>
          {(id) => (
            <input
              id={id}
              className="input"
              type="search"
              value={searchText}
              onChange={(event) => setSearchText(event.target.value)}
              placeholder="Search secrets…"
              autoComplete="off"
            />
          )}
        </ToolbarField>
        <ToolbarField label="Integration">
          {(id) => (
            <select
              id={id}
              className="input"
              value={integrationId}
              onChange={(event) => setIntegrationId(event.target.value)}
            >
              <option value="">All integrations</option>
              {integrations.data?.map((integration) => (
                <option key={integration.id} value={integration.id}>
                  {integration.displayName}
                </option>
              ))}
            </select>
          )}
        </ToolbarField>
        {listAll && (
          <ToolbarField label="Created by">
            {(id) => (
              <select
                id={id}
                className="input"
                value={createdBy}
                onChange={(event) => setCreatedBy(event.target.value)}
              >
                <option value="">Anyone</option>
                {members.data?.map((member) => (
                  <option key={member.userId} value={member.userId}>
                    {member.userId === me.user.id ? `${member.name} (you)` : member.name}
                  </option>
                ))}
              </select>
            )}
          </ToolbarField>
        )}
      </section>

      {secrets.isPending && <Spinner label="Loading secrets" />}
      {secrets.isError && <ErrorAlert>{errorMessage(secrets.error)}</ErrorAlert>}
      {actionError && <ErrorAlert>{actionError}</ErrorAlert>}

      {secrets.isSuccess && items.length === 0 && !filtered && (
        <EmptyState title="No secrets yet" action={newButton}>
          <p>
            A secret holds what an action node needs to call a service on your behalf: an API key, a bot
            token, a password. Save it once here; nodes of the matching type (a SendGrid key for SendGrid
            nodes, a bearer token for HTTP Request nodes) can then use it by name.
          </p>
          <p>The value is encrypted and never shown again, not even to you.</p>
        </EmptyState>
      )}
      {secrets.isSuccess && items.length === 0 && filtered && (
        <NoMatches
          what="No secrets match these filters."
          onClear={() => {
            setIntegrationId('');
            setCreatedBy('');
            setSearchText('');
          }}
        />
      )}

      {items.length > 0 && (
        <DataTable
          caption={`Secrets in ${workspace.name}`}
          columns={['Name', 'Type', 'Created', 'Last used', 'Last test']}
          actions
        >
          {items.map((secret) => {
            const found = findCredentialType(integrations.data, secret.credentialType);
            const integration =
              found?.integration ??
              integrations.data?.find((candidate) => candidate.id === secret.integrationId);
            const mayChange = rolePermissions.manageSecret(
              workspace.role,
              secret.createdBy.id === me.user.id,
            );
            const publicFields = Object.entries(secret.publicFields);
            const testable = found?.credentialType.testable ?? false;
            return (
              <tr key={secret.id} data-secret-id={secret.id}>
                <th scope="row" className="cell-name">
                  <span className="secret-name">{secret.name}</span>
                  {secret.needsAllowedDomains && (
                    <span className="cell-sub" data-needs-allowed-domains="">
                      <span className="badge badge-warning">Needs allowed domains</span> Sent nowhere until{' '}
                      {mayChange ? 'you add' : 'its creator, an owner or an admin adds'} the hosts it may go
                      to{mayChange ? ' (Rotate)' : ''}.
                    </span>
                  )}
                  {publicFields.length > 0 && (
                    <span className="cell-sub">
                      {publicFields
                        .map(([key, value]) => publicFieldText(found?.credentialType.jsonSchema, key, value))
                        .join(' · ')}
                    </span>
                  )}
                </th>
                <td className="cell-type">
                  <span className="cell-main">{integration?.displayName ?? secret.integrationId}</span>
                  <span className="cell-sub">
                    {found?.credentialType.displayName ?? secret.credentialType}
                  </span>
                </td>
                <td>
                  <span className="cell-main nowrap">
                    <Time iso={secret.createdAt} />
                  </span>
                  <span className="cell-sub" title={secret.createdBy.email}>
                    by{' '}
                    {secret.createdBy.id === me.user.id
                      ? `${secret.createdBy.name} (you)`
                      : secret.createdBy.name}
                  </span>
                  {changedSince(secret.createdAt, secret.updatedAt) && (
                    <span className="cell-sub" data-rotated="">
                      Rotated <Time iso={secret.updatedAt} />
                    </span>
                  )}
                </td>
                <td className="cell-last-used">
                  {secret.lastUsedAt ? (
                    <Time iso={secret.lastUsedAt} withTime />
                  ) : (
                    <span className="muted">Never</span>
                  )}
                </td>
                <td className="cell-test">
                  <LastTest secret={secret} testable={testable} />
                </td>
                <td className="cell-actions">
                  {testable && (
                    <TestSecretButton
                      workspaceId={workspace.id}
                      secret={secret}
                      onStart={() => setActionError(null)}
                      onError={setActionError}
                    />
                  )}
                  {mayChange && (
                    <>
                      <button
                        type="button"
                        className="button button-small"
                        onClick={() => setRotating(secret)}
                        aria-label={`Rotate ${secret.name}`}
                      >
                        Rotate
                      </button>
                      <button
                        type="button"
                        className="button button-small"
                        onClick={() => setRenaming(secret)}
                        aria-label={`Rename ${secret.name}`}
                      >
                        Rename
                      </button>
                      <button
                        type="button"
                        className="button button-small button-danger-ghost"
                        onClick={() => setDeleting(secret)}
                        aria-label={`Delete ${secret.name}`}
                      >
                        Delete
                      </button>
                    </>
                  )}
                  {readAudit && (
                    <Link
                      className="button button-small button-ghost"
                      href={`${paths.section(workspace.id, 'audit')}?targetId=${encodeURIComponent(secret.id)}`}
                      aria-label={`History of ${secret.name}`}
                    >
                      History
                    </Link>
                  )}
                </td>
              </tr>
            );
          })}
        </DataTable>
      )}

      <LoadMore pages={secrets} />
      {items.length > 0 && (
        <p className="list-count" aria-live="polite">
          Showing {items.length} {items.length === 1 ? 'secret' : 'secrets'}
          {secrets.hasNextPage ? ' (more available)' : ''}.
        </p>
      )}

      <CreateSecretDialog workspaceId={workspace.id} open={creating} onClose={() => setCreating(false)} />
      <ImportN8nDialog workspaceId={workspace.id} open={importing} onClose={() => setImporting(false)} />
      <DeleteSecretDialog workspaceId={workspace.id} secret={deleting} onClose={() => setDeleting(null)} />
      <RenameSecretDialog workspaceId={workspace.id} secret={renaming} onClose={() => setRenaming(null)} />
      <RotateSecretDialog workspaceId={workspace.id} secret={rotating} onClose={() => setRotating(null)} />
    </>
  );
}

/** The secret's last test: a badge, the service's answer as text, and when. */
function LastTest({ secret, testable }: { secret: SecretMeta; testable: boolean }) {
  if (!secret.lastTest) return <span className="muted">{testable ? 'Not tested' : 'No test available'}</span>;
  const { ok, message, code, testedAt } = secret.lastTest;
  return (
    <div className="last-test" data-last-test={ok ? 'ok' : 'failed'}>
      <TestBadge ok={ok} />
      <span className="last-test-message">{message}</span>
      <span className="cell-sub">
        <Time iso={testedAt} withTime />
      </span>
      <FailureDetails code={code} />
    </div>
  );
}

/**
 * Tests a saved secret against its service (`secrets.test {secretId}`): the server keeps the result and
 * the time of use, so the list is fetched again; the outcome is announced through the toast live region.
 */
function TestSecretButton({
  workspaceId,
  secret,
  onStart,
  onError,
}: {
  workspaceId: string;
  secret: SecretMeta;
  onStart: () => void;
  onError: (message: string) => void;
}) {
  const test = useMutation(trpc.secrets.test.mutationOptions());
  const [pending, setPending] = useState(false);
  const toast = useToast();
  async function run() {
    onStart();
    setPending(true);
    try {
      const outcome = await test.mutateAsync({ workspaceId, secretId: secret.id });
      await queryClient.invalidateQueries({ queryKey: trpc.secrets.list.pathKey() });
      toast(`Test of “${secret.name}” ${outcome.ok ? 'passed' : 'failed'}: ${outcome.message}`);
    } catch (error) {
      onError(`Could not test “${secret.name}”: ${errorMessage(error)}`);
    } finally {
      test.reset();
      setPending(false);
    }
  }
  return (
    <button
      type="button"
      className="button button-small"
      onClick={run}
      disabled={pending}
      aria-label={`${pending ? 'Testing' : 'Test'} ${secret.name}`}
    >
      {pending ? 'Testing…' : 'Test'}
    </button>
  );
}

/** Whether a secret's value changed after it was created (a rotation; the create itself is not one). */
function changedSince(createdAt: string, updatedAt: string): boolean {
  return new Date(updatedAt).getTime() - new Date(createdAt).getTime() > 1000;
}

/** A public field as the list shows it: its label, and a choice's label for its value ("Region: EU"). */
function publicFieldText(schema: unknown, key: string, value: string): string {
  const field = schemaFields(schema).find((candidate) => candidate.name === key);
  return `${field?.label ?? key}: ${field?.optionLabels?.[value] ?? value}`;
}
