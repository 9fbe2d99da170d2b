import { type RawBuilder, sql } from 'kysely';
import { type MembershipColumns, membershipCte, membershipFrom } from '../access/membership.js';
import { managesSecretSql, permissions, requirePermission } from '../access/permissions.js';
import { NotAllowedError, NotFoundError } from '../errors.js';
import type { Actor, Services } from '../services.js';
import { META_SQL, type MetaRow } from './meta.js';

/*
 * Round trips (docs/performance.md; counted by src/perf/round-trips.test.ts). Every operation on secrets checks
 * the caller's membership in the SAME statement that does its work: the CTE `me` (access/membership.ts) yields
 * the caller's membership (none: the workspace is "not found"), and the page, row or write hangs off it.
 */

export const MAY_NOT_MANAGE =
  'Only owners, admins and the member who created a secret can change or delete it';

/**
 * The CTEs that gate work on one secret by the caller's permission, evaluated in the work's own statement:
 *   me      — the caller's membership; for a write share-locked, so a removal or role change waits for this
 *             statement (or, committed first, is what this statement sees);
 *   found   — the secret (id, created_by, public_fields);
 *   allowed — the secret again, only when `me` may manage it (`permissions.manageSecret` as SQL).
 */
export function manageGateCtes(
  workspaceId: string,
  userId: string,
  secretId: string,
  options: { write: boolean },
): RawBuilder<unknown> {
  return sql`${membershipCte(workspaceId, userId, { share: options.write, workspace: false })},
    found as (
      select id, created_by, public_fields from secrets where id = ${secretId} and workspace_id = ${workspaceId}
    ),
    allowed as (
      select found.id, found.public_fields from found, me where ${managesSecretSql('me', 'found')}
    )`;
}

/** The gate's verdict, in the final select of a gated statement. */
export const GATE_RESULT = sql`exists (select 1 from me) as member, exists (select 1 from found) as found,
  exists (select 1 from allowed) as allowed`;

export type GateOutcome = { member: boolean; found: boolean; allowed: boolean };

/** Throws what the gate found missing: the membership ("not found"), the secret, or the permission. */
export function requireGate(outcome: GateOutcome | undefined): void {
  if (!outcome?.member) throw new NotFoundError('Workspace');
  if (!outcome.found) throw new NotFoundError('Secret');
  if (!outcome.allowed) throw new NotAllowedError(MAY_NOT_MANAGE);
}

/**
 * Loads a secret the caller may manage (owner/admin: any; member: their own): ONE statement, the membership
 * and the secret together.
 */
export async function manageableSecret(svc: Services, actor: Actor, workspaceId: string, secretId: string) {
  const { rows } = await sql<MembershipColumns & { [K in keyof MetaRow]: MetaRow[K] | null }>`
    with ${membershipCte(workspaceId, actor.userId)}
    select me.workspace_id, me.user_id, me.role, me.plan, me.workspace_name, p.* from me
    left join lateral (
      select ${META_SQL} from secrets s join users u on u.id = s.created_by
      where s.id = ${secretId} and s.workspace_id = me.workspace_id
    ) p on true`.execute(svc.db);
  const found = rows[0];
  if (!found) throw new NotFoundError('Workspace');
  if (found.id === null) throw new NotFoundError('Secret');
  const row = found as MetaRow & MembershipColumns;
  requirePermission(permissions.manageSecret(membershipFrom(row), row.created_by), MAY_NOT_MANAGE);
  return row;
}
