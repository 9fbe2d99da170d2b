import { rolePermissions } from '@latchkey/core/roles';
import { useInfiniteQuery } from '@tanstack/react-query';
import {
  type AuditEvent,
  findCredentialType,
  type Integration,
  useIntegrations,
  type WorkspaceSummary,
} from '../api/hooks';
import { errorMessage, trpc } from '../api/trpc';
import { useDocumentTitle } from '../app/router';
import { PageHeader } from '../app/Shell';
import { humanize } from '../schema-form/jsonSchema';
import { DataTable, LoadMore } from '../ui/DataTable';
import { EmptyState, ErrorAlert, Spinner } from '../ui/Feedback';
import { Time } from '../ui/Time';

export function AuditPage({ workspace }: { workspace: WorkspaceSummary }) {
  useDocumentTitle('Audit log');
  const allowed = rolePermissions.readAudit(workspace.role);
  const integrations = useIntegrations();
  const events = useInfiniteQuery({
    ...trpc.audit.list.infiniteQueryOptions(
      { workspaceId: workspace.id },
      { getNextPageParam: (last) => last.nextCursor ?? undefined },
    ),
    enabled: allowed,
  });

  if (!allowed)
    return (
      <>
        <PageHeader title="Audit log" />
        <EmptyState title="Only owners and admins can read the audit log">
          <p>Ask an owner of {workspace.name} if you need to know who changed what.</p>
        </EmptyState>
      </>
    );

  const items = events.data?.pages.flatMap((page) => page.items) ?? [];
  return (
    <>
      <PageHeader
        title="Audit log"
        description="Every change to secrets, members and workflows in this workspace, newest first. Secret values are never recorded."
      />
      {events.isPending && <Spinner label="Loading the audit log" />}
      {events.isError && <ErrorAlert>{errorMessage(events.error)}</ErrorAlert>}
      {events.isSuccess && items.length === 0 && (
        <EmptyState title="Nothing recorded yet">
          <p>Changes to secrets, members and workflows will be listed here.</p>
        </EmptyState>
      )}
      {items.length > 0 && (
        <DataTable
          caption={`Audit events of ${workspace.name}`}
          columns={['When', 'Who', 'What', 'Target', 'Details']}
        >
          {items.map((event) => (
            <tr key={event.id}>
              <td className="nowrap">
                <Time iso={event.createdAt} withTime />
              </td>
              <td>
                {event.actor ? (
                  <>
                    <span className="cell-main">{event.actor.name}</span>
                    <span className="cell-sub">{event.actor.email}</span>
                  </>
                ) : (
                  <span className="muted">System</span>
                )}
              </td>
              <td>
                <code className="action-code">{event.action}</code>
              </td>
              <td>
                <span className="cell-main">{event.targetName ?? event.targetId ?? '—'}</span>
                <span className="cell-sub">{event.targetType}</span>
              </td>
              <td className="cell-details">{describeDetails(event, integrations.data)}</td>
            </tr>
          ))}
        </DataTable>
      )}
      <LoadMore pages={events} />
    </>
  );
}

/** Details as "Key: value" pairs; credential types by their display name. Audit details never hold secret values. */
function describeDetails(event: AuditEvent, integrations: Integration[] | undefined): string {
  const details: unknown = event.details;
  if (!details || typeof details !== 'object') return typeof details === 'string' ? details : '';
  return Object.entries(details as Record<string, unknown>)
    .filter(([, value]) => value !== null && value !== undefined && value !== '')
    .map(([key, value]) => {
      const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
      const shown =
        key === 'credentialType'
          ? (findCredentialType(integrations, text)?.credentialType.displayName ?? text)
          : text;
      return `${humanize(key)}: ${shown}`;
    })
    .join(' · ');
}
