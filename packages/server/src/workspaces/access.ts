import type { Kysely, Transaction } from 'kysely';
import type { Database, Plan, Role } from '../db/schema.js';
import { NotAllowedError, NotFoundError } from '../errors.js';

export interface Membership {
  workspaceId: string;
  userId: string;
  role: Role;
  plan: Plan;
  name: string;
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
  const row = await db
    .selectFrom('memberships as m')
    .innerJoin('workspaces as w', 'w.id', 'm.workspace_id')
    .select(['m.workspace_id', 'm.user_id', 'm.role', 'w.plan', 'w.name'])
    .where('m.workspace_id', '=', workspaceId)
    .where('m.user_id', '=', userId)
    .executeTakeFirst();
  if (!row) throw new NotFoundError('Workspace');
  return {
    workspaceId: row.workspace_id,
    userId: row.user_id,
    role: row.role,
    plan: row.plan,
    name: row.name,
  };
}

const isManager = (role: Role) => role === 'owner' || role === 'admin';

/** The role table of the design (§6), in one place. */
export const permissions = {
  listAllSecrets: (m: Membership) => isManager(m.role),
  manageSecret: (m: Membership, createdBy: string) => isManager(m.role) || createdBy === m.userId,
  readAudit: (m: Membership) => isManager(m.role),
  manageMembers: (m: Membership) => isManager(m.role),
  /** Admins manage members and admins; only owners touch owners or grant ownership. */
  manageMemberWithRole: (m: Membership, targetRole: Role) =>
    m.role === 'owner' || (m.role === 'admin' && targetRole !== 'owner'),
  /**
   * Issuing an invite for a role: what `workspaces.invite` requires, what revoking one requires, and what the
   * invite's maker must still hold when it is accepted (an invite admits no one its maker could not admit now).
   */
  inviteWithRole: (m: Membership, inviteRole: Role) =>
    isManager(m.role) && permissions.manageMemberWithRole(m, inviteRole),
};

const ROLE_RANK: Record<Role, number> = { member: 0, admin: 1, owner: 2 };

/** A role change that takes rights away (owner → admin, admin → member, owner → member). */
export const isDemotion = (from: Role, to: Role) => ROLE_RANK[to] < ROLE_RANK[from];

export function requirePermission(allowed: boolean, message: string): void {
  if (!allowed) throw new NotAllowedError(message);
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
