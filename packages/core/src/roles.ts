/**
 * The role table of the design (DESIGN §6), in one place: the server enforces it (in TypeScript and, derived
 * from it, in SQL) and the web imports it to decide what to offer. Dependency-free, so the web bundle can
 * import `@latchkey/core/roles` without the registry or zod.
 */

export const ROLES = ['owner', 'admin', 'member'] as const;
export type Role = (typeof ROLES)[number];

const RANK: Record<Role, number> = { member: 0, admin: 1, owner: 2 };

/** Owners and admins: they list every secret, manage any secret, read the audit log and manage members. */
export const isManagerRole = (role: Role): boolean => role === 'owner' || role === 'admin';

/** What a role may do. `actor` is the caller's role; other arguments describe the target. */
export const rolePermissions = {
  /** List every secret of the workspace (members list the ones they created). */
  listAllSecrets: (actor: Role) => isManagerRole(actor),
  /** Change or delete a secret: owners and admins any, members the ones they created. */
  manageSecret: (actor: Role, createdByCaller: boolean) => isManagerRole(actor) || createdByCaller,
  readAudit: (actor: Role) => isManagerRole(actor),
  /** Export the whole audit log (a download of every event): owners only. */
  exportAudit: (actor: Role) => actor === 'owner',
  manageMembers: (actor: Role) => isManagerRole(actor),
  /** Admins manage members and admins; only owners touch owners or grant ownership. */
  manageMemberWithRole: (actor: Role, target: Role) =>
    actor === 'owner' || (actor === 'admin' && target !== 'owner'),
  /**
   * Issuing an invite for a role: what `workspaces.invite` requires, what revoking one requires, and what the
   * invite's maker must still hold when it is accepted (an invite admits no one its maker could not admit now).
   */
  inviteWithRole: (actor: Role, invited: Role) =>
    isManagerRole(actor) && rolePermissions.manageMemberWithRole(actor, invited),
} as const;

/** The roles a caller may hand out (to a member or in an invite). */
export const assignableRoles = (actor: Role): Role[] =>
  ROLES.filter((role) => rolePermissions.manageMemberWithRole(actor, role) && isManagerRole(actor));

/** The roles for which `allowed(role)` holds: what SQL filters on, derived from the table above. */
export const rolesWhere = (allowed: (role: Role) => boolean): Role[] => ROLES.filter(allowed);

/** A role change that takes rights away (owner → admin, admin → member, owner → member). */
export const isDemotion = (from: Role, to: Role): boolean => RANK[to] < RANK[from];
