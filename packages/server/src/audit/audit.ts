import { type Kysely, type RawBuilder, sql, type Transaction } from 'kysely';
import { membershipOf } from '../access/membership.js';
import { permissions, requirePermission } from '../access/permissions.js';
import type { Database } from '../db/schema.js';
import { type DbScope, withDbScope } from '../db/scope.js';
import { newId } from '../identity/tokens.js';
import type { Actor, Services } from '../services.js';

export type AuditAction =
  | 'secret.created'
  | 'secret.replaced'
  | 'secret.deleted'
  | 'secret.used'
  | 'secret.tested'
  /** OAuth2 connections: never a token value, only expiry, scopes and error codes. */
  | 'secret.connected'
  | 'secret.reconnected'
  | 'secret.refreshed'
  | 'secret.refresh_failed'
  | 'secret.connect_failed'
  /** Written by migration 0006 for each HTTP Request credential it stopped applying (no allowed domains). */
  | 'secret.needs_allowed_domains'
  | 'member.invited'
  | 'member.invite_revoked'
  | 'member.joined'
  | 'member.removed'
  | 'member.left'
  | 'member.role_changed'
  | 'workspace.created'
  | 'workspace.data_key_rotated'
  | 'audit.exported';

export interface AuditEvent {
  workspaceId: string;
  actorId: string | null;
  action: AuditAction;
  targetType: 'secret' | 'member' | 'workspace' | 'invite';
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

async function listAudit(
  db: Kysely<Database>,
  workspaceId: string,
  cursor: string | undefined,
  limit = 50,
): Promise<{ items: AuditEntry[]; nextCursor: string | null }> {
  let query = auditRows(db, workspaceId)
    .orderBy('e.seq', 'desc')
    .limit(limit + 1);
  if (cursor && /^\d{1,19}$/.test(cursor)) query = query.where('e.seq', '<', cursor);
  const rows = await query.execute();
  const page = rows.slice(0, limit);
  return {
    items: page.map((r) => ({
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
    nextCursor: rows.length > limit ? String(page[page.length - 1]?.seq) : null,
  };
}

/** The audit log of a workspace, for its owners and admins. */
export async function readAuditLog(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; cursor?: string | undefined },
) {
  const membership = await membershipOf(svc.db, input.workspaceId, actor.userId);
  requirePermission(permissions.readAudit(membership), 'Only owners and admins can read the audit log');
  return listAudit(svc.db, input.workspaceId, input.cursor);
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

const EXPORT_PAGE = 500;

/**
 * The whole audit log of a workspace, oldest first, as JSON lines — for its owners only. The export itself is
 * recorded (`audit.exported`) before anything is read, and the lines end at that event — a file that does not
 * end with it was cut short. Read page by page (keyset on `seq`): memory stays flat however long the log.
 */
export async function exportAuditLog(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string },
): Promise<AsyncIterable<string>> {
  // Outside tRPC (an HTTP route, and lines read later by the response stream): the scope is set here.
  const scope = { workspaceId: input.workspaceId, userId: actor.userId };
  return withDbScope(scope, () => startAuditExport(svc, actor, input, scope));
}

async function startAuditExport(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string },
  scope: DbScope,
): Promise<AsyncIterable<string>> {
  const membership = await membershipOf(svc.db, input.workspaceId, actor.userId);
  requirePermission(permissions.exportAudit(membership), 'Only owners can export the audit log');
  const lastSeq = await svc.db.transaction().execute(async (trx) => {
    await recordAudit(trx, {
      workspaceId: input.workspaceId,
      actorId: actor.userId,
      action: 'audit.exported',
      targetType: 'workspace',
      targetId: input.workspaceId,
      targetName: membership.name,
    });
    const row = await trx
      .selectFrom('audit_events')
      .select((eb) => eb.fn.max('seq').as('seq'))
      .where('workspace_id', '=', input.workspaceId)
      .executeTakeFirstOrThrow();
    return String(row.seq);
  });
  const db = svc.db;
  const workspaceId = input.workspaceId;
  return (async function* lines() {
    let after = '0';
    for (;;) {
      const rows = await withDbScope(scope, () =>
        auditRows(db, workspaceId)
          .where('e.seq', '>', after)
          .where('e.seq', '<=', lastSeq)
          .orderBy('e.seq')
          .limit(EXPORT_PAGE)
          .execute(),
      );
      if (rows.length === 0) return;
      let chunk = '';
      for (const r of rows) {
        const event: ExportedAuditEvent = {
          seq: String(r.seq),
          id: r.id,
          at: new Date(r.created_at).toISOString(),
          action: r.action,
          actor: r.actor_id ? { id: r.actor_id, email: r.actor_email, name: r.actor_name } : null,
          target: { type: r.target_type, id: r.target_id, name: r.target_name },
          details: r.details,
        };
        chunk += `${JSON.stringify(event)}\n`;
      }
      yield chunk;
      after = String(rows[rows.length - 1]?.seq);
      if (rows.length < EXPORT_PAGE) return;
    }
  })();
}
