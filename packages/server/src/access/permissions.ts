import { type Role, rolePermissions, rolesWhere } from '@latchkey/core/roles';
import { type RawBuilder, sql } from 'kysely';
import { NotAllowedError } from '../errors.js';
import type { Membership } from './membership.js';

/**
 * The role table of the design (§6) is `rolePermissions` in @latchkey/core/roles — the server and the web
 * read the same one. Here it is applied to a membership, and turned into SQL for statements that check a
 * permission in the same statement as the write it guards.
 */
export const permissions = {
  listAllSecrets: (m: Membership) => rolePermissions.listAllSecrets(m.role),
  manageSecret: (m: Membership, createdBy: string) =>
    rolePermissions.manageSecret(m.role, createdBy === m.userId),
  readAudit: (m: Membership) => rolePermissions.readAudit(m.role),
  exportAudit: (m: Membership) => rolePermissions.exportAudit(m.role),
  manageMembers: (m: Membership) => rolePermissions.manageMembers(m.role),
  manageMemberWithRole: (m: Membership, targetRole: Role) =>
    rolePermissions.manageMemberWithRole(m.role, targetRole),
  inviteWithRole: (m: Membership, inviteRole: Role) => rolePermissions.inviteWithRole(m.role, inviteRole),
};

export function requirePermission(allowed: boolean, message: string): void {
  if (!allowed) throw new NotAllowedError(message);
}

const roleIn = (membership: string, roles: Role[]) =>
  roles.length === 0 ? sql`false` : sql`${sql.ref(`${membership}.role`)} in (${sql.join(roles)})`;

/** `permissions.listAllSecrets` as SQL over a membership row (`role`). */
export function listsAllSecretsSql(membership: string): RawBuilder<unknown> {
  return roleIn(membership, rolesWhere(rolePermissions.listAllSecrets));
}

/**
 * `permissions.manageSecret` as SQL over a membership row (`role`, `user_id`) and a secret row (`created_by`),
 * derived from the role table: a write that carries it checks the permission in its own statement, so a member
 * demoted or removed after an earlier read cannot complete it.
 */
export function managesSecretSql(membership: string, secret: string): RawBuilder<unknown> {
  const any = rolesWhere((role) => rolePermissions.manageSecret(role, false));
  const own = rolesWhere((role) => rolePermissions.manageSecret(role, true));
  return sql`(${roleIn(membership, any)}
    or (${roleIn(membership, own)} and ${sql.ref(`${secret}.created_by`)} = ${sql.ref(`${membership}.user_id`)}))`;
}
