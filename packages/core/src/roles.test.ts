import { describe, expect, it } from 'vitest';
import { assignableRoles, isDemotion, ROLES, type Role, rolePermissions, rolesWhere } from './roles.js';

describe('the role table (DESIGN §6)', () => {
  it('lets owners and admins list and manage every secret, members only their own', () => {
    expect(rolesWhere(rolePermissions.listAllSecrets)).toEqual(['owner', 'admin']);
    expect(rolesWhere((role) => rolePermissions.manageSecret(role, false))).toEqual(['owner', 'admin']);
    expect(rolesWhere((role) => rolePermissions.manageSecret(role, true))).toEqual([...ROLES]);
    expect(rolesWhere(rolePermissions.readAudit)).toEqual(['owner', 'admin']);
    expect(rolesWhere(rolePermissions.exportAudit)).toEqual(['owner']);
  });

  it('lets admins manage members and admins but never owners', () => {
    const table = (actor: Role) =>
      ROLES.filter((target) => rolePermissions.manageMemberWithRole(actor, target));
    expect(table('owner')).toEqual(['owner', 'admin', 'member']);
    expect(table('admin')).toEqual(['admin', 'member']);
    expect(rolesWhere(rolePermissions.manageMembers)).toEqual(['owner', 'admin']);
    expect(assignableRoles('owner')).toEqual(['owner', 'admin', 'member']);
    expect(assignableRoles('admin')).toEqual(['admin', 'member']);
    expect(assignableRoles('member')).toEqual([]);
    expect(rolePermissions.inviteWithRole('admin', 'owner')).toBe(false);
    expect(rolePermissions.inviteWithRole('member', 'member')).toBe(false);
  });

  it('calls a change that takes rights away a demotion', () => {
    expect(isDemotion('owner', 'admin')).toBe(true);
    expect(isDemotion('admin', 'member')).toBe(true);
    expect(isDemotion('member', 'admin')).toBe(false);
    expect(isDemotion('admin', 'admin')).toBe(false);
  });
});
