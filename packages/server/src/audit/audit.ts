import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../db/schema.js';
import { newId } from '../identity/tokens.js';
import type { Actor, Services } from '../services.js';
import { membershipOf, permissions, requirePermission } from '../workspaces/access.js';

export type AuditAction =
  | 'secret.created'
  | 'secret.replaced'
  | 'secret.deleted'
  | 'secret.used'
  | 'secret.tested'
  | 'member.invited'
  | 'member.joined'
  | 'member.removed'
  | 'member.left'
  | 'member.role_changed'
  | 'workspace.created';

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

/** Appends an audit event inside the caller's transaction, so the event and the change commit together. */
export async function recordAudit(
  trx: Transaction<Database> | Kysely<Database>,
  event: AuditEvent,
): Promise<void> {
  await trx
    .insertInto('audit_events')
    .values({
      id: newId(),
      workspace_id: event.workspaceId,
      actor_id: event.actorId,
      action: event.action,
      target_type: event.targetType,
      target_id: event.targetId ?? null,
      target_name: event.targetName ?? null,
      details: JSON.stringify(event.details ?? {}),
    })
    .execute();
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

async function listAudit(
  db: Kysely<Database>,
  workspaceId: string,
  cursor: string | undefined,
  limit = 50,
): Promise<{ items: AuditEntry[]; nextCursor: string | null }> {
  let query = db
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
    .where('e.workspace_id', '=', workspaceId)
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
