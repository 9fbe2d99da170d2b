import { AUDIT_EVENT_LABELS, auditEventLabel } from '@latchkey/core/audit';
import { rolePermissions } from '@latchkey/core/roles';
import { useInfiniteQuery, useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import {
  type AuditEvent,
  findCredentialType,
  findIntegrationByNodeType,
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
import { NoMatches, ToolbarField } from '../ui/Toolbar';

/** The log's filters, kept in the address (`?type=…&actorId=…&targetId=…&from=…&to=…`) so a view can be shared. */
interface AuditFilters {
  /** An event type (`secret.used`) or a group of them (`secret.*`); empty: all. */
  type: string;
  actorId: string;
  targetId: string;
  /** Dates (YYYY-MM-DD), inclusive. */
  from: string;
  to: string;
}

const FILTER_KEYS = ['type', 'actorId', 'targetId', 'from', 'to'] as const;

const GROUPS: { prefix: string; label: string }[] = [
  { prefix: 'secret', label: 'Secrets and connections' },
  { prefix: 'member', label: 'Members and invites' },
  { prefix: 'workflow', label: 'Workflows' },
  { prefix: 'workspace', label: 'Workspace' },
  { prefix: 'audit', label: 'Audit log' },
];

const ACTIONS = Object.keys(AUDIT_EVENT_LABELS);

function filtersFromAddress(): AuditFilters {
  const query = new URLSearchParams(window.location.search);
  const filters = { type: '', actorId: '', targetId: '', from: '', to: '' };
  for (const key of FILTER_KEYS) filters[key] = query.get(key) ?? '';
  return filters;
}

function writeFiltersToAddress(filters: AuditFilters): void {
  const query = new URLSearchParams();
  for (const key of FILTER_KEYS) if (filters[key]) query.set(key, filters[key]);
  const search = query.toString();
  window.history.replaceState(null, '', `${window.location.pathname}${search ? `?${search}` : ''}`);
}

/** The event types a type filter stands for. */
function actionsOf(type: string): string[] | undefined {
  if (!type) return undefined;
  if (type.endsWith('.*')) return ACTIONS.filter((action) => action.startsWith(type.slice(0, -1)));
  return [type];
}

/** The filters as the export's query parameters (the same meaning as `audit.list`'s). */
function exportQuery(filters: AuditFilters, format: 'jsonl' | 'csv'): string {
  const query = new URLSearchParams();
  const actions = actionsOf(filters.type);
  if (actions) query.set('actions', actions.join(','));
  for (const key of ['actorId', 'targetId', 'from', 'to'] as const)
    if (filters[key]) query.set(key, filters[key]);
  if (format === 'csv') query.set('format', 'csv');
  return query.toString();
}

export function AuditPage({ workspace }: { workspace: WorkspaceSummary }) {
  useDocumentTitle('Audit log');
  const allowed = rolePermissions.readAudit(workspace.role);
  const integrations = useIntegrations();
  const [filters, setFiltersState] = useState<AuditFilters>(filtersFromAddress);
  const setFilters = (next: AuditFilters) => {
    setFiltersState(next);
    writeFiltersToAddress(next);
  };
  const members = useQuery({
    ...trpc.workspaces.members.queryOptions({ workspaceId: workspace.id }),
    enabled: allowed,
  });
  const actions = actionsOf(filters.type);
  const events = useInfiniteQuery({
    ...trpc.audit.list.infiniteQueryOptions(
      {
        workspaceId: workspace.id,
        ...(actions ? { actions } : {}),
        ...(filters.actorId ? { actorId: filters.actorId } : {}),
        ...(filters.targetId ? { targetId: filters.targetId } : {}),
        ...(filters.from ? { from: filters.from } : {}),
        ...(filters.to ? { to: filters.to } : {}),
      },
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
  const filtered = FILTER_KEYS.some((key) => filters[key]);
  const targetName = filters.targetId
    ? (items.find((event) => event.targetId === filters.targetId)?.targetName ?? null)
    : null;
  const exportBase = `/api/workspaces/${encodeURIComponent(workspace.id)}/audit.jsonl`;
  return (
    <>
      <PageHeader
        title="Audit log"
        description="Every change to secrets, members and workflows in this workspace, and every run, newest first. Secret values are never recorded."
        actions={
          rolePermissions.exportAudit(workspace.role) ? (
            <>
              <a className="button" href={`${exportBase}?${exportQuery(filters, 'csv')}`} download>
                Export CSV
              </a>
              <a className="button" href={`${exportBase}?${exportQuery(filters, 'jsonl')}`} download>
                Export JSON lines
              </a>
            </>
          ) : undefined
        }
      />
      <AuditFilterBar
        filters={filters}
        onChange={setFilters}
        members={members.data?.map((m) => ({ id: m.userId, name: m.name })) ?? []}
      />
      {filters.targetId && (
        <p className="muted" role="status" data-history-of={filters.targetId}>
          Showing the history of{' '}
          {targetName ? (
            <strong title={`Id: ${filters.targetId}`}>{targetName}</strong>
          ) : (
            <code>{filters.targetId}</code>
          )}
          .{' '}
          <button
            type="button"
            className="button button-small"
            onClick={() => setFilters({ ...filters, targetId: '' })}
          >
            Show every item
          </button>
        </p>
      )}
      {events.isPending && <Spinner label="Loading the audit log" />}
      {events.isError && <ErrorAlert>{errorMessage(events.error)}</ErrorAlert>}
      {events.isSuccess && items.length === 0 && !filtered && (
        <EmptyState title="Nothing recorded yet">
          <p>Changes to secrets, members and workflows will be listed here.</p>
        </EmptyState>
      )}
      {events.isSuccess && items.length === 0 && filtered && (
        <NoMatches
          what="No event matches these filters."
          onClear={() => setFilters({ type: '', actorId: '', targetId: '', from: '', to: '' })}
        />
      )}
      {items.length > 0 && (
        <DataTable
          caption={`Audit events of ${workspace.name}`}
          columns={['When', 'Who', 'What', 'Target', 'Details']}
        >
          {items.map((event) => (
            <tr key={event.id} data-action={event.action}>
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
                <span className="cell-main">{auditEventLabel(event.action)}</span>
              </td>
              <td>
                <span className="cell-main" title={event.targetId ? `Id: ${event.targetId}` : undefined}>
                  {event.targetName ?? event.targetId ?? '—'}
                </span>
                <span className="cell-sub">{humanize(event.targetType)}</span>
              </td>
              <td className="cell-details">
                <EventDetails event={event} integrations={integrations.data} />
              </td>
            </tr>
          ))}
        </DataTable>
      )}
      <LoadMore pages={events} />
    </>
  );
}

function AuditFilterBar({
  filters,
  onChange,
  members,
}: {
  filters: AuditFilters;
  onChange: (filters: AuditFilters) => void;
  members: { id: string; name: string }[];
}) {
  return (
    <section aria-label="Filters" className="toolbar">
      <ToolbarField label="Event">
        {(id) => (
          <select
            id={id}
            className="input"
            value={filters.type}
            onChange={(event) => onChange({ ...filters, type: event.target.value })}
          >
            <option value="">All events</option>
            {GROUPS.map((group) => (
              <optgroup key={group.prefix} label={group.label}>
                <option value={`${group.prefix}.*`}>Any of: {group.label.toLowerCase()}</option>
                {ACTIONS.filter((action) => action.startsWith(`${group.prefix}.`)).map((action) => (
                  <option key={action} value={action}>
                    {auditEventLabel(action)}
                  </option>
                ))}
              </optgroup>
            ))}
          </select>
        )}
      </ToolbarField>
      <ToolbarField label="Who">
        {(id) => (
          <select
            id={id}
            className="input"
            value={filters.actorId}
            onChange={(event) => onChange({ ...filters, actorId: event.target.value })}
          >
            <option value="">Anyone</option>
            {members.map((member) => (
              <option key={member.id} value={member.id}>
                {member.name}
              </option>
            ))}
          </select>
        )}
      </ToolbarField>
      {(['from', 'to'] as const).map((end) => (
        <ToolbarField key={end} label={end === 'from' ? 'From' : 'To'}>
          {(id) => (
            <input
              id={id}
              className="input"
              type="date"
              value={filters[end]}
              {...(end === 'from' ? { max: filters.to || undefined } : { min: filters.from || undefined })}
              onChange={(event) => onChange({ ...filters, [end]: event.target.value })}
            />
          )}
        </ToolbarField>
      ))}
    </section>
  );
}

/** A detail's value as words: a list joined with commas, yes/no for a flag, anything else as JSON. */
function detailText(value: unknown): string {
  if (Array.isArray(value) && value.every((item) => typeof item === 'string')) return value.join(', ');
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/**
 * Details as "Key: value" pairs, names where the event has them (a node, a workflow, a secret) and credential
 * types by their display name. Ids are not shown inline: each name carries its id on hover, and every id of the
 * event is listed under "Ids". Audit details never hold secret values.
 */
function EventDetails({
  event,
  integrations,
}: {
  event: AuditEvent;
  integrations: Integration[] | undefined;
}) {
  const details = (event.details ?? {}) as Record<string, unknown>;
  const ids: [string, string][] = event.targetId ? [['Target', event.targetId]] : [];
  const parts: { key: string; text: string; title?: string }[] = [];
  for (const [key, value] of Object.entries(details)) {
    if (value === null || value === undefined || value === '') continue;
    if (key.endsWith('Id') && typeof value === 'string') {
      ids.push([humanize(key.slice(0, -2)), value]);
      continue;
    }
    const text = detailText(value);
    const idKey = key.endsWith('Name') ? `${key.slice(0, -4)}Id` : null;
    const id = idKey && typeof details[idKey] === 'string' ? (details[idKey] as string) : undefined;
    const shown =
      key === 'credentialType'
        ? (findCredentialType(integrations, text)?.credentialType.displayName ?? text)
        : key === 'nodeType'
          ? (findIntegrationByNodeType(integrations, text)?.displayName ?? text)
          : text;
    parts.push({
      key: humanize(key.endsWith('Name') ? key.slice(0, -4) : key),
      text: shown,
      ...(id ? { title: `Id: ${id}` } : {}),
    });
  }
  // Stored details come back in the database's key order; a change reads old first.
  const rank = (key: string) => ['From', 'To'].indexOf(key) + 1 || 3;
  parts.sort((a, b) => rank(a.key) - rank(b.key));
  return (
    <>
      {parts.map((part, index) => (
        <span key={part.key}>
          {index > 0 && ' · '}
          {part.key}: <span title={part.title}>{part.text}</span>
        </span>
      ))}
      {ids.length > 0 && (
        <details className="audit-ids">
          <summary>Ids</summary>
          <dl>
            {ids.map(([label, id]) => (
              <div key={`${label}-${id}`}>
                <dt>{label}</dt>
                <dd>
                  <code>{id}</code>
                </dd>
              </div>
            ))}
          </dl>
        </details>
      )}
    </>
  );
}
