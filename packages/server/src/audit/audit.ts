import type { AuditAction } from '@latchkey/core/audit';
import { type Kysely, type RawBuilder, sql, type Transaction } from 'kysely';
import { membershipOf } from '../access/membership.js';
import { permissions, requirePermission } from '../access/permissions.js';
import type { Database } from '../db/schema.js';
import { type DbScope, withDbScope } from '../db/scope.js';
import { newId } from '../identity/tokens.js';
import type { Actor, Services } from '../services.js';

/**
 * Every event type, with its label, is in `@latchkey/core/audit`. Notes: `secret.renamed` details hold `from`/`to`;
 * `secret.refused_destination` means a run kept a credential from a host it may not go to (nothing was sent);
 * OAuth2 events hold expiry, scopes and error codes, never a token; `secret.needs_allowed_domains` was written by
 * migration 0006 for each HTTP Request credential it stopped applying.
 */
export type { AuditAction };

export interface AuditEvent {
  workspaceId: string;
  actorId: string | null;
  action: AuditAction;
  targetType: 'secret' | 'member' | 'workspace' | 'invite' | 'workflow';
  targetId?: string | null;
  targetName?: string | null;
  /** Counts, ids and names only: never a credential value. */
  details?: Record<string, unknown>;
}

/** Appends audit events inside the caller's transaction, so the events and the change commit together. */
export async function recordAudit(
  trx: Transaction<Database> | Kysely<Database>,
  events: AuditEvent | readonly AuditEvent[],
): Promise<void> {
  const list = Array.isArray(events) ? events : [events as AuditEvent];
  if (list.length === 0) return;
  await trx
    .insertInto('audit_events')
    .values(
      list.map((event) => ({
        id: newId(),
        workspace_id: event.workspaceId,
        actor_id: event.actorId,
        action: event.action,
        target_type: event.targetType,
        target_id: event.targetId ?? null,
        target_name: event.targetName ?? null,
        details: JSON.stringify(event.details ?? {}),
      })),
    )
    .execute();
}

/** A column of an audit event written by SQL: a value (sent as a parameter) or an expression over `from`. */
type AuditColumn<T> = T | RawBuilder<unknown>;

/**
 * The same audit event as `recordAudit`, for a statement that writes it set-based in a CTE (one event per row
 * of `from`, e.g. the rows a deletion returned): `audit as (${auditInsert({...}, sql`deleted d`)})`. The action
 * and target type are typed as in `AuditEvent`; `details` is a jsonb expression.
 */
export function auditInsert(
  event: {
    workspaceId: AuditColumn<string>;
    actorId: AuditColumn<string | null>;
    action: AuditAction;
    targetType: AuditEvent['targetType'];
    targetId: AuditColumn<string | null>;
    targetName: AuditColumn<string | null>;
    details: RawBuilder<unknown>;
  },
  from?: RawBuilder<unknown>,
): RawBuilder<unknown> {
  const column = <T>(value: AuditColumn<T>) => (isRawBuilder(value) ? value : sql`${value}`);
  return sql`insert into audit_events (id, workspace_id, actor_id, action, target_type, target_id, target_name, details)
    select gen_random_uuid()::text, ${column(event.workspaceId)}, ${column(event.actorId)}, ${event.action},
           ${event.targetType}, ${column(event.targetId)}, ${column(event.targetName)}, ${event.details}
    ${from ? sql`from ${from}` : sql``}`;
}

function isRawBuilder(value: unknown): value is RawBuilder<unknown> {
  return typeof value === 'object' && value !== null && 'toOperationNode' in value;
}

export interface AuditEntry {
  id: string;
  action: string;
  actor: { id: string; name: string; email: string } | null;
  targetType: string;
  targetId: string | null;
  targetName: string | null;
  details: Record<string, unknown>;
  createdAt: string;
}

/**
 * Which events to read (every field optional; all given fields must match). `actions`: event types
 * (`secret.used`, …); `actorId`: who did it; `targetId`: a secret, workflow, member, invite or workspace id —
 * an event matches when it is its target, or when its details name it (`secretId`, `previousSecretId`,
 * `workflowId`, or in its `secrets` / `nodes` lists: a secret's history includes the runs that used it, the
 * nodes that selected it and the removal that deleted it); `from`
 * (inclusive) and `to` (exclusive) are instants.
 */
export interface AuditFilter {
  actions?: readonly string[] | undefined;
  actorId?: string | undefined;
  targetId?: string | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
}

/** A workspace's audit events with their actors: the one query the log page and the export both read. */
function auditRows(db: Kysely<Database>, workspaceId: string) {
  return db
    .selectFrom('audit_events as e')
    .leftJoin('users as u', 'u.id', 'e.actor_id')
    .select([
      'e.seq',
      'e.id',
      'e.action',
      'e.actor_id',
      'u.name as actor_name',
      'u.email as actor_email',
      'e.target_type',
      'e.target_id',
      'e.target_name',
      'e.details',
      'e.created_at',
    ])
    .where('e.workspace_id', '=', workspaceId);
}

/** The filter as one SQL condition over `e` (`true` when nothing is filtered). */
function filterCondition(filter: AuditFilter): RawBuilder<boolean> {
  const parts: RawBuilder<unknown>[] = [];
  if (filter.actions && filter.actions.length > 0)
    parts.push(sql`e.action in (${sql.join(filter.actions.map((a) => sql`${a}`))})`);
  if (filter.actorId !== undefined) parts.push(sql`e.actor_id = ${filter.actorId}`);
  if (filter.targetId !== undefined) {
    const target = filter.targetId;
    parts.push(sql`(e.target_id = ${target} or e.details->>'secretId' = ${target}
      or e.details->>'previousSecretId' = ${target} or e.details->>'workflowId' = ${target}
      or e.details->'secrets' @> jsonb_build_array(jsonb_build_object('secretId', ${target}::text))
      or e.details->'nodes' @> jsonb_build_array(jsonb_build_object('workflowId', ${target}::text)))`);
  }
  if (filter.from) parts.push(sql`e.created_at >= ${filter.from}`);
  if (filter.to) parts.push(sql`e.created_at < ${filter.to}`);
  return parts.length === 0 ? sql<boolean>`true` : sql<boolean>`(${sql.join(parts, sql` and `)})`;
}

async function listAudit(
  db: Kysely<Database>,
  workspaceId: string,
  page: { cursor?: string | undefined; limit?: number | undefined },
  filter: AuditFilter,
): Promise<{ items: AuditEntry[]; nextCursor: string | null }> {
  const limit = page.limit ?? 50;
  let query = auditRows(db, workspaceId)
    .where(filterCondition(filter))
    .orderBy('e.seq', 'desc')
    .limit(limit + 1);
  if (page.cursor && /^\d{1,19}$/.test(page.cursor)) query = query.where('e.seq', '<', page.cursor);
  const rows = await query.execute();
  const items = rows.slice(0, limit);
  return {
    items: items.map((r) => ({
      id: r.id,
      action: r.action,
      actor:
        r.actor_id && r.actor_name && r.actor_email
          ? { id: r.actor_id, name: r.actor_name, email: r.actor_email }
          : null,
      targetType: r.target_type,
      targetId: r.target_id,
      targetName: r.target_name,
      details: r.details,
      createdAt: new Date(r.created_at).toISOString(),
    })),
    nextCursor: rows.length > limit ? String(items[items.length - 1]?.seq) : null,
  };
}

/** The audit log of a workspace, for its owners and admins: newest first, filtered, keyset-paginated. */
export async function readAuditLog(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; cursor?: string | undefined; limit?: number | undefined } & AuditFilter,
) {
  const membership = await membershipOf(svc.db, input.workspaceId, actor.userId);
  requirePermission(permissions.readAudit(membership), 'Only owners and admins can read the audit log');
  return listAudit(svc.db, input.workspaceId, input, input);
}

/** One exported audit event (one JSON line). Counts, ids and names only, like the events themselves. */
export interface ExportedAuditEvent {
  seq: string;
  id: string;
  at: string;
  action: string;
  actor: { id: string; email: string | null; name: string | null } | null;
  target: { type: string; id: string | null; name: string | null };
  details: Record<string, unknown>;
}

export type AuditExportFormat = 'jsonl' | 'csv';

const EXPORT_PAGE = 500;

/** The filter as the export's own event records it (ids, types and instants only). */
function describedFilter(filter: AuditFilter): Record<string, unknown> {
  return {
    ...(filter.actions && filter.actions.length > 0 ? { actions: [...filter.actions] } : {}),
    ...(filter.actorId !== undefined ? { actorId: filter.actorId } : {}),
    ...(filter.targetId !== undefined ? { targetId: filter.targetId } : {}),
    ...(filter.from ? { from: filter.from.toISOString() } : {}),
    ...(filter.to ? { to: filter.to.toISOString() } : {}),
  };
}

const CSV_COLUMNS = [
  'seq',
  'at',
  'action',
  'actor_id',
  'actor_email',
  'actor_name',
  'target_type',
  'target_id',
  'target_name',
  'details',
] as const;

/**
 * One CSV field (RFC 4180): quoted when it holds a comma, quote or line break; a text a spreadsheet would run
 * as a formula (`=`, `+`, `-`, `@`, tab, CR first: names are typed by users) is prefixed with `'`.
 */
function csvField(value: string | null): string {
  if (value === null) return '';
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

function csvLine(event: ExportedAuditEvent): string {
  const values: Record<(typeof CSV_COLUMNS)[number], string | null> = {
    seq: event.seq,
    at: event.at,
    action: event.action,
    actor_id: event.actor?.id ?? null,
    actor_email: event.actor?.email ?? null,
    actor_name: event.actor?.name ?? null,
    target_type: event.target.type,
    target_id: event.target.id,
    target_name: event.target.name,
    details: JSON.stringify(event.details),
  };
  return `${CSV_COLUMNS.map((c) => csvField(values[c])).join(',')}\r\n`;
}

/**
 * The audit log of a workspace, oldest first, as JSON lines (or CSV with a header row) — for its owners only,
 * the events `filter` selects. The export itself is recorded (`audit.exported`, with its format and filter)
 * before anything is read, and the file ends with that event whatever the filter — a file that does not end
 * with it was cut short. Read page by page (keyset on `seq`): memory stays flat however long the log.
 */
export async function exportAuditLog(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; format?: AuditExportFormat | undefined } & AuditFilter,
): Promise<AsyncIterable<string>> {
  // Outside tRPC (an HTTP route, and lines read later by the response stream): the scope is set here.
  const scope = { workspaceId: input.workspaceId, userId: actor.userId };
  return withDbScope(scope, () => startAuditExport(svc, actor, input, scope));
}

async function startAuditExport(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; format?: AuditExportFormat | undefined } & AuditFilter,
  scope: DbScope,
): Promise<AsyncIterable<string>> {
  const membership = await membershipOf(svc.db, input.workspaceId, actor.userId);
  requirePermission(permissions.exportAudit(membership), 'Only owners can export the audit log');
  const format = input.format ?? 'jsonl';
  const exportId = newId();
  const exportSeq = await svc.db.transaction().execute(async (trx) => {
    const row = await trx
      .insertInto('audit_events')
      .values({
        id: exportId,
        workspace_id: input.workspaceId,
        actor_id: actor.userId,
        action: 'audit.exported' satisfies AuditAction,
        target_type: 'workspace' satisfies AuditEvent['targetType'],
        target_id: input.workspaceId,
        target_name: membership.name,
        details: JSON.stringify({ format, filter: describedFilter(input) }),
      })
      .returning('seq')
      .executeTakeFirstOrThrow();
    return String(row.seq);
  });
  const db = svc.db;
  const workspaceId = input.workspaceId;
  // The filtered events up to this export, and this export's own event last.
  const selected = sql<boolean>`(${filterCondition(input)} or e.seq = ${exportSeq})`;
  const line = format === 'csv' ? csvLine : (event: ExportedAuditEvent) => `${JSON.stringify(event)}\n`;
  return (async function* lines() {
    if (format === 'csv') yield `${CSV_COLUMNS.join(',')}\r\n`;
    let after = '0';
    for (;;) {
      const rows = await withDbScope(scope, () =>
        auditRows(db, workspaceId)
          .where('e.seq', '>', after)
          .where('e.seq', '<=', exportSeq)
          .where(selected)
          .orderBy('e.seq')
          .limit(EXPORT_PAGE)
          .execute(),
      );
      if (rows.length === 0) return;
      let chunk = '';
      for (const r of rows) {
        chunk += line({
          seq: String(r.seq),
          id: r.id,
          at: new Date(r.created_at).toISOString(),
          action: r.action,
          actor: r.actor_id ? { id: r.actor_id, email: r.actor_email, name: r.actor_name } : null,
          target: { type: r.target_type, id: r.target_id, name: r.target_name },
          details: r.details,
        });
      }
      yield chunk;
      after = String(rows[rows.length - 1]?.seq);
      if (rows.length < EXPORT_PAGE) return;
    }
  })();
}
