import type { Role } from '@latchkey/core/roles';
import { type Kysely, type RawBuilder, sql, type Transaction } from 'kysely';
import type { Database, Plan } from '../db/schema.js';
import { NotFoundError } from '../errors.js';

/**
 * "The caller is a member of this workspace (with role R)", in one place: the `me` CTE below is the one SQL
 * definition of a membership; `membershipOf` reads it on its own, and the secrets statements put it in front
 * of their own work so the check and the work are one statement. (The row-level-security policies of
 * db/migrations.ts say the same in the database's own terms: migrations are history and stay as written.)
 */
export interface Membership {
  workspaceId: string;
  userId: string;
  role: Role;
  plan: Plan;
  name: string;
}

/** The columns `membershipCte` yields. */
export interface MembershipColumns {
  workspace_id: string;
  user_id: string;
  role: Role;
  plan: Plan;
  workspace_name: string;
}

/**
 * A CTE `me`: the caller's membership of the workspace (zero rows when they do not belong to it), with the
 * columns of `MembershipColumns`.
 * `share`: lock the membership row for the rest of the statement, so a removal or role change waits for it
 * (or, committed first, is what the statement sees) — for writes that must not outlive the caller's rights.
 * `workspace: false`: only the membership's own columns (workspace_id, user_id, role), for statements that need
 * no more — the hot write paths skip the join.
 */
export function membershipCte(
  workspaceId: string,
  userId: string,
  options: { share?: boolean; workspace?: boolean } = {},
): RawBuilder<unknown> {
  const workspace = options.workspace !== false;
  return sql`me as (
    select m.workspace_id, m.user_id, m.role ${workspace ? sql`, w.plan, w.name as workspace_name` : sql``}
    from memberships m ${workspace ? sql`join workspaces w on w.id = m.workspace_id` : sql``}
    where m.workspace_id = ${workspaceId} and m.user_id = ${userId}
    ${options.share ? sql`for share of m` : sql``})`;
}

export function membershipFrom(row: MembershipColumns): Membership {
  return {
    workspaceId: row.workspace_id,
    userId: row.user_id,
    role: row.role,
    plan: row.plan,
    name: row.workspace_name,
  };
}

/**
 * The caller's membership of a workspace. A workspace the caller does not belong to is answered exactly
 * like one that does not exist, so ids of other workspaces reveal nothing.
 */
export async function membershipOf(
  db: Kysely<Database> | Transaction<Database>,
  workspaceId: string,
  userId: string,
): Promise<Membership> {
  const { rows } = await sql<MembershipColumns>`
    with ${membershipCte(workspaceId, userId)} select * from me`.execute(db);
  const row = rows[0];
  if (!row) throw new NotFoundError('Workspace');
  return membershipFrom(row);
}

/**
 * Serialises membership changes of one workspace (role changes, removals, leaving, joining): each takes this
 * lock first, so concurrent changes queue instead of deadlocking, and "last owner" checks see settled rows.
 * FOR NO KEY UPDATE does not block inserts that merely reference the workspace (secrets, nodes).
 */
export async function lockWorkspaceMembership(
  trx: Transaction<Database>,
  workspaceId: string,
): Promise<void> {
  await trx.selectFrom('workspaces').select('id').where('id', '=', workspaceId).forNoKeyUpdate().execute();
}
