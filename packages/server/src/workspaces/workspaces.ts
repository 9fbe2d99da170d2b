import { isDemotion, rolePermissions } from '@latchkey/core/roles';
import { sql, type Transaction } from 'kysely';
import { lockWorkspaceMembership, type Membership, membershipOf } from '../access/membership.js';
import { permissions, requirePermission } from '../access/permissions.js';
import { auditInsert, recordAudit } from '../audit/audit.js';
import type { Database, Plan, Role } from '../db/schema.js';
import { withDbScope } from '../db/scope.js';
import { ConflictError, NotAllowedError, NotFoundError } from '../errors.js';
import { hashToken, newId, newToken } from '../identity/tokens.js';
import {
  affectedNodesOf,
  DELETED_SECRETS_JSONB,
  FLAGGED_NODES_JSONB,
  SECRET_DELETION_RESULT,
  type SecretDeletionResult,
  secretDeletionCtes,
} from '../secrets/deletion.js';
import type { AffectedNode } from '../secrets/meta.js';
import type { Actor, Services } from '../services.js';

export interface WorkspaceSummary {
  id: string;
  name: string;
  plan: Plan;
  role: Role;
}

export async function createWorkspace(
  svc: Services,
  actor: Actor,
  input: { name: string; plan: Plan },
): Promise<{ id: string; name: string; plan: Plan }> {
  const id = newId();
  // A new workspace: its rows are written in its own scope (the request named none, or another).
  await withDbScope({ workspaceId: id, userId: actor.userId }, () => insertWorkspace(svc, actor, id, input));
  return { id, name: input.name, plan: input.plan };
}

async function insertWorkspace(svc: Services, actor: Actor, id: string, input: { name: string; plan: Plan }) {
  await svc.db.transaction().execute(async (trx) => {
    await trx.insertInto('workspaces').values({ id, name: input.name, plan: input.plan }).execute();
    await trx
      .insertInto('memberships')
      .values({ workspace_id: id, user_id: actor.userId, role: 'owner' })
      .execute();
    await svc.keys.createFirstKey(trx, id);
    await recordAudit(trx, {
      workspaceId: id,
      actorId: actor.userId,
      action: 'workspace.created',
      targetType: 'workspace',
      targetId: id,
      targetName: input.name,
      details: { plan: input.plan },
    });
  });
}

/** The caller's workspaces: scoped to the user (row-level security shows a user their own memberships). */
export async function listWorkspaces(svc: Services, actor: Actor): Promise<WorkspaceSummary[]> {
  const query = svc.db
    .selectFrom('memberships as m')
    .innerJoin('workspaces as w', 'w.id', 'm.workspace_id')
    .select(['w.id', 'w.name', 'w.plan', 'm.role'])
    .where('m.user_id', '=', actor.userId)
    .orderBy('w.created_at')
    .orderBy('w.id');
  return withDbScope({ userId: actor.userId }, () => query.execute());
}

export async function getWorkspace(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string },
): Promise<WorkspaceSummary & { memberCount: number }> {
  const membership = await membershipOf(svc.db, input.workspaceId, actor.userId);
  const count = await svc.db
    .selectFrom('memberships')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('workspace_id', '=', input.workspaceId)
    .executeTakeFirstOrThrow();
  return {
    id: membership.workspaceId,
    name: membership.name,
    plan: membership.plan,
    role: membership.role,
    memberCount: Number(count.n),
  };
}

export async function listMembers(svc: Services, actor: Actor, input: { workspaceId: string }) {
  await membershipOf(svc.db, input.workspaceId, actor.userId);
  const rows = await svc.db
    .selectFrom('memberships as m')
    .innerJoin('users as u', 'u.id', 'm.user_id')
    .select(['u.id', 'u.email', 'u.name', 'm.role', 'm.joined_at'])
    .where('m.workspace_id', '=', input.workspaceId)
    .orderBy('m.joined_at')
    .orderBy('u.id')
    .execute();
  return rows.map((r) => ({
    userId: r.id,
    email: r.email,
    name: r.name,
    role: r.role,
    joinedAt: new Date(r.joined_at).toISOString(),
  }));
}

const ONLY_MANAGERS_INVITE = 'Only owners and admins can invite members';
const ONLY_OWNERS_INVITE_OWNERS = 'Only owners can invite owners';

export async function inviteMember(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; email: string; role: Role },
): Promise<{ token: string; expiresAt: string }> {
  const email = input.email.trim().toLowerCase();
  const { token, hash } = newToken();
  const expiresAt = new Date(Date.now() + svc.inviteTtlMs);
  const id = newId();
  // Checked and written under the workspace's membership lock: an inviter being removed or demoted at the same
  // moment either loses the right first (this call is refused) or retires this invite with their others.
  await svc.db.transaction().execute(async (trx) => {
    await lockWorkspaceMembership(trx, input.workspaceId);
    const membership = await membershipOf(trx, input.workspaceId, actor.userId);
    requirePermission(permissions.manageMembers(membership), ONLY_MANAGERS_INVITE);
    requirePermission(permissions.inviteWithRole(membership, input.role), ONLY_OWNERS_INVITE_OWNERS);
    if (membership.plan !== 'team') {
      throw new NotAllowedError(
        'A personal workspace has one member: create a team workspace to share secrets',
      );
    }
    const existing = await trx
      .selectFrom('memberships as m')
      .innerJoin('users as u', 'u.id', 'm.user_id')
      .select('u.id')
      .where('m.workspace_id', '=', input.workspaceId)
      .where('u.email', '=', email)
      .executeTakeFirst();
    if (existing) throw new ConflictError('This person is already a member of the workspace');
    await trx
      .insertInto('invites')
      .values({
        id,
        workspace_id: input.workspaceId,
        email,
        role: input.role,
        token_hash: hash,
        invited_by: actor.userId,
        expires_at: expiresAt,
      })
      .execute();
    await recordAudit(trx, {
      workspaceId: input.workspaceId,
      actorId: actor.userId,
      action: 'member.invited',
      targetType: 'invite',
      targetId: id,
      targetName: email,
      details: { role: input.role },
    });
  });
  return { token, expiresAt: expiresAt.toISOString() };
}

export interface PendingInvite {
  id: string;
  email: string;
  role: Role;
  /** Who made the invite, shaped like SecretMeta.createdBy. */
  invitedBy: { id: string; name: string; email: string };
  expiresAt: string;
}

const INVITE_NOT_FOUND = 'Invite (it may have expired, been used or been revoked)';

/** Pending invites (not accepted, revoked or expired) for owners and admins: never the token. */
export async function listInvites(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string },
): Promise<PendingInvite[]> {
  const membership = await membershipOf(svc.db, input.workspaceId, actor.userId);
  requirePermission(permissions.manageMembers(membership), 'Only owners and admins can see pending invites');
  const rows = await svc.db
    .selectFrom('invites as i')
    .innerJoin('users as u', 'u.id', 'i.invited_by')
    .select([
      'i.id',
      'i.email',
      'i.role',
      'i.expires_at',
      'u.id as inviter_id',
      'u.name',
      'u.email as inviter_email',
    ])
    .where('i.workspace_id', '=', input.workspaceId)
    .where('i.accepted_at', 'is', null)
    .where('i.revoked_at', 'is', null)
    .where('i.expires_at', '>', sql<Date>`now()`)
    .orderBy('i.created_at')
    .orderBy('i.id')
    .execute();
  return rows.map((r) => ({
    id: r.id,
    email: r.email,
    role: r.role,
    invitedBy: { id: r.inviter_id, name: r.name, email: r.inviter_email },
    expiresAt: new Date(r.expires_at).toISOString(),
  }));
}

/** Why a pending invite was retired: the `reason` of its `member.invite_revoked` audit event. */
type InviteRetirement =
  | 'revoked'
  | 'inviter_removed'
  | 'inviter_left'
  | 'inviter_demoted'
  | 'invitee_removed'
  | 'invitee_left';

/** Revokes a pending invite: owners and admins, but only owners revoke an invite to become an owner. */
export async function revokeInvite(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; inviteId: string },
): Promise<{ id: string }> {
  return svc.db.transaction().execute(async (trx) => {
    await lockWorkspaceMembership(trx, input.workspaceId);
    const membership = await membershipOf(trx, input.workspaceId, actor.userId);
    // The invite first: an id that is not a pending invite here is "not found" for every caller.
    const invite = await trx
      .selectFrom('invites')
      .select(['id', 'email', 'role'])
      .where('id', '=', input.inviteId)
      .where('workspace_id', '=', input.workspaceId)
      .where('accepted_at', 'is', null)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', sql<Date>`now()`)
      .forUpdate()
      .executeTakeFirst();
    if (!invite) throw new NotFoundError(INVITE_NOT_FOUND);
    requirePermission(permissions.manageMembers(membership), 'Only owners and admins can revoke invites');
    requirePermission(
      permissions.inviteWithRole(membership, invite.role),
      'Only owners can revoke an invite to become an owner',
    );
    await trx
      .updateTable('invites')
      .set({ revoked_at: new Date(), revoked_reason: 'revoked' satisfies InviteRetirement })
      .where('id', '=', invite.id)
      .execute();
    await recordAudit(trx, {
      workspaceId: input.workspaceId,
      actorId: actor.userId,
      action: 'member.invite_revoked',
      targetType: 'invite',
      targetId: invite.id,
      targetName: invite.email,
      details: { role: invite.role, reason: 'revoked' satisfies InviteRetirement },
    });
    return { id: invite.id };
  });
}

/** Revokes every pending invite `inviterId` made in the workspace, with one audit event per invite. */
async function retireInvitesMadeBy(
  trx: Transaction<Database>,
  actor: Actor,
  workspaceId: string,
  inviterId: string,
  reason: InviteRetirement,
): Promise<void> {
  const retired = await trx
    .updateTable('invites')
    .set({ revoked_at: new Date(), revoked_reason: reason })
    .where('workspace_id', '=', workspaceId)
    .where('invited_by', '=', inviterId)
    .where('accepted_at', 'is', null)
    .where('revoked_at', 'is', null)
    .returning(['id', 'email', 'role'])
    .execute();
  if (retired.length === 0) return;
  await recordAudit(
    trx,
    retired.map((invite) => ({
      workspaceId,
      actorId: actor.userId,
      action: 'member.invite_revoked' as const,
      targetType: 'invite' as const,
      targetId: invite.id,
      targetName: invite.email,
      details: { role: invite.role, reason },
    })),
  );
}

/** What an invite link's page shows on arrival, before anyone accepts (workspaces.inspectInvite). */
export interface InviteOverview {
  /** `pending` can be accepted; the others say why not, so the page offers no Accept button. */
  status: 'pending' | 'accepted' | 'revoked' | 'expired';
  workspaceName: string;
  /** The inviter's name only (their email stays with the workspace's members). */
  invitedBy: string;
  /** The invited address with most of its local part hidden ("a…@example.com"): enough to tell which of your addresses it is for. */
  email: string;
  role: Role;
  expiresAt: string;
  /** For a signed-in visitor: whether the invite is for their account's email; null when signed out. */
  forYou: boolean | null;
}

/** "alice@example.com" → "a…@example.com". */
function hiddenLocalPart(address: string): string {
  const at = address.lastIndexOf('@');
  return at <= 0 ? '…' : `${address.slice(0, 1)}…${address.slice(at)}`;
}

/**
 * Looks an invite up by its token, for the page its link opens: who invites to which workspace, and whether the
 * link still works. The token is the proof of being invited, as it is for accepting; an unknown token is
 * "not found". Owner-rights lookup (migration 0013), since the visitor is not a member.
 */
export async function inspectInvite(
  svc: Services,
  visitor: { email: string } | null,
  input: { token: string },
): Promise<InviteOverview> {
  const { rows } = await sql<{
    workspace_name: string;
    inviter_name: string;
    inviter_role: Role | null;
    email: string;
    role: Role;
    expires_at: Date;
    accepted_at: Date | null;
    revoked_at: Date | null;
  }>`select * from latchkey_invite_lookup(${hashToken(input.token)})`.execute(svc.db);
  const invite = rows[0];
  if (!invite) throw new NotFoundError(INVITE_NOT_FOUND);
  const expiresAt = new Date(invite.expires_at);
  // Same order as accepting: used, then revoked (also a maker who can no longer vouch for it), then expired.
  const status: InviteOverview['status'] = invite.accepted_at
    ? 'accepted'
    : invite.revoked_at ||
        !invite.inviter_role ||
        !rolePermissions.inviteWithRole(invite.inviter_role, invite.role)
      ? 'revoked'
      : expiresAt.getTime() <= Date.now()
        ? 'expired'
        : 'pending';
  return {
    status,
    workspaceName: invite.workspace_name,
    invitedBy: invite.inviter_name,
    email: hiddenLocalPart(invite.email),
    role: invite.role,
    expiresAt: expiresAt.toISOString(),
    forYou: visitor ? visitor.email.toLowerCase() === invite.email : null,
  };
}

/** Accepts an invite: one-time, unexpired, and only by the account with the invited email. */
export async function acceptInvite(
  svc: Services,
  actor: Actor,
  input: { token: string },
): Promise<{ workspaceId: string; role: Role }> {
  // The invite names the workspace: found by its token through an owner-rights function that returns only
  // the workspace id (migration 0005), then everything else runs in that workspace's scope.
  const tokenHash = hashToken(input.token);
  const { rows } = await sql<{ workspace_id: string | null }>`
    select latchkey_invite_workspace(${tokenHash}) as workspace_id`.execute(svc.db);
  const workspaceId = rows[0]?.workspace_id;
  if (!workspaceId) throw new NotFoundError(INVITE_NOT_FOUND);
  return withDbScope({ workspaceId, userId: actor.userId }, () =>
    joinByInvite(svc, actor, workspaceId, tokenHash),
  );
}

function joinByInvite(
  svc: Services,
  actor: Actor,
  workspaceId: string,
  tokenHash: string,
): Promise<{ workspaceId: string; role: Role }> {
  return svc.db.transaction().execute(async (trx) => {
    // The workspace lock first, as every membership change takes it: a removal or a revocation of this
    // invite's maker either committed before (the invite is gone) or waits until this join is done.
    await lockWorkspaceMembership(trx, workspaceId);
    const invite = await trx
      .selectFrom('invites')
      .selectAll()
      .where('workspace_id', '=', workspaceId)
      .where('token_hash', '=', tokenHash)
      .where('accepted_at', 'is', null)
      .where('revoked_at', 'is', null)
      .where('expires_at', '>', sql<Date>`now()`)
      .forUpdate()
      .executeTakeFirst();
    const user = await trx
      .selectFrom('users')
      .select(['email'])
      .where('id', '=', actor.userId)
      .executeTakeFirstOrThrow();
    if (!invite || invite.email !== user.email || !(await makerMayStillInvite(trx, invite)))
      throw new NotFoundError(INVITE_NOT_FOUND);
    const already = await trx
      .selectFrom('memberships')
      .select('role')
      .where('workspace_id', '=', invite.workspace_id)
      .where('user_id', '=', actor.userId)
      .executeTakeFirst();
    if (already) throw new ConflictError('You are already a member of this workspace');
    await trx.updateTable('invites').set({ accepted_at: new Date() }).where('id', '=', invite.id).execute();
    await trx
      .insertInto('memberships')
      .values({ workspace_id: invite.workspace_id, user_id: actor.userId, role: invite.role })
      .execute();
    await recordAudit(trx, {
      workspaceId: invite.workspace_id,
      actorId: actor.userId,
      action: 'member.joined',
      targetType: 'member',
      targetId: actor.userId,
      targetName: user.email,
      details: { role: invite.role },
    });
    return { workspaceId: invite.workspace_id, role: invite.role };
  });
}

/**
 * An invite admits no one its maker could not admit today: invites made before their maker was removed or
 * demoted (before retirement existed, or by any path that missed it) are refused like unknown ones.
 */
async function makerMayStillInvite(
  trx: Transaction<Database>,
  invite: { workspace_id: string; invited_by: string; role: Role },
): Promise<boolean> {
  const maker = await membershipOf(trx, invite.workspace_id, invite.invited_by).catch((error: unknown) => {
    if (error instanceof NotFoundError) return null;
    throw error;
  });
  return maker !== null && permissions.inviteWithRole(maker, invite.role);
}

async function targetMembership(trx: Transaction<Database>, workspaceId: string, userId: string) {
  const row = await trx
    .selectFrom('memberships as m')
    .innerJoin('users as u', 'u.id', 'm.user_id')
    .select(['m.role', 'u.email', 'u.name'])
    .where('m.workspace_id', '=', workspaceId)
    .where('m.user_id', '=', userId)
    .forUpdate()
    .executeTakeFirst();
  if (!row) throw new NotFoundError('Member');
  return row;
}

/** Owners of a workspace; called under `lockWorkspaceMembership`, so the count cannot change underneath. */
async function ownerCount(trx: Transaction<Database>, workspaceId: string): Promise<number> {
  const owners = await trx
    .selectFrom('memberships')
    .select('user_id')
    .where('workspace_id', '=', workspaceId)
    .where('role', '=', 'owner')
    .execute();
  return owners.length;
}

export async function setRole(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; userId: string; role: Role },
): Promise<{ userId: string; role: Role }> {
  return svc.db.transaction().execute(async (trx) => {
    await lockWorkspaceMembership(trx, input.workspaceId);
    const membership = await membershipOf(trx, input.workspaceId, actor.userId);
    // The target first: someone who is not a member here is "not found" for every caller, as in removeMember.
    const target = await targetMembership(trx, input.workspaceId, input.userId);
    requirePermission(permissions.manageMembers(membership), 'Only owners and admins can change roles');
    requirePermission(
      permissions.manageMemberWithRole(membership, target.role) &&
        permissions.manageMemberWithRole(membership, input.role),
      'Only owners can change an owner’s role or make someone an owner',
    );
    if (
      target.role === 'owner' &&
      input.role !== 'owner' &&
      (await ownerCount(trx, input.workspaceId)) <= 1
    ) {
      throw new NotAllowedError('The last owner cannot be demoted: make someone else an owner first');
    }
    if (target.role === input.role) return { userId: input.userId, role: input.role };
    await trx
      .updateTable('memberships')
      .set({ role: input.role })
      .where('workspace_id', '=', input.workspaceId)
      .where('user_id', '=', input.userId)
      .execute();
    await recordAudit(trx, {
      workspaceId: input.workspaceId,
      actorId: actor.userId,
      action: 'member.role_changed',
      targetType: 'member',
      targetId: input.userId,
      targetName: target.email,
      details: { from: target.role, to: input.role },
    });
    // Whoever loses rights loses the invites they made with them (re-invite from the new role if needed).
    if (isDemotion(target.role, input.role))
      await retireInvitesMadeBy(trx, actor, input.workspaceId, input.userId, 'inviter_demoted');
    return { userId: input.userId, role: input.role };
  });
}

/**
 * The member being removed, locked (FOR UPDATE), with the workspace's owner count in the same statement; called
 * under `lockWorkspaceMembership`, so the count cannot change underneath.
 */
async function removalTarget(trx: Transaction<Database>, workspaceId: string, userId: string) {
  const row = await trx
    .selectFrom('memberships as m')
    .innerJoin('users as u', 'u.id', 'm.user_id')
    .select(['m.role', 'u.email'])
    .select((eb) =>
      eb
        .selectFrom('memberships as o')
        .select((o) => o.fn.countAll<string>().as('n'))
        .where('o.workspace_id', '=', workspaceId)
        .where('o.role', '=', 'owner')
        .as('owners'),
    )
    .where('m.workspace_id', '=', workspaceId)
    .where('m.user_id', '=', userId)
    .forUpdate()
    .executeTakeFirst();
  if (!row) throw new NotFoundError('Member');
  return { role: row.role, email: row.email, owners: Number(row.owners) };
}

const ONLY_MANAGERS_REMOVE = 'Only owners and admins can remove members';
const ONLY_OWNERS_REMOVE_OWNERS = 'Only owners can remove an owner';

export async function removalPreview(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; userId: string },
): Promise<{ secrets: number; nodes: AffectedNode[] }> {
  const membership = await membershipOf(svc.db, input.workspaceId, actor.userId);
  const member = await svc.db
    .selectFrom('memberships')
    .select('role')
    .where('workspace_id', '=', input.workspaceId)
    .where('user_id', '=', input.userId)
    .executeTakeFirst();
  if (!member) throw new NotFoundError('Member');
  requirePermission(permissions.manageMembers(membership), ONLY_MANAGERS_REMOVE);
  requirePermission(permissions.manageMemberWithRole(membership, member.role), ONLY_OWNERS_REMOVE_OWNERS);
  // Exactly what removal deletes and flags: the same definition, as a read.
  const { rows } = await sql<SecretDeletionResult>`
    with ${secretDeletionCtes({ workspaceId: input.workspaceId, createdBy: input.userId }, sql`true`, 'preview')}
    select ${SECRET_DELETION_RESULT}`.execute(svc.db);
  const row = rows[0] as SecretDeletionResult;
  return { secrets: row.deleted_count, nodes: affectedNodesOf(row) };
}

/**
 * Ends a membership and deletes every secret that member created in the workspace, in one transaction:
 * either all of it happens (membership gone, secrets gone, nodes flagged, pending invites retired, audit
 * written) or none of it. Permissions are checked inside the transaction, under the workspace lock.
 *
 * A constant number of statements whatever the member had (src/perf/round-trips.test.ts): BEGIN, the
 * workspace lock, the caller's membership, the target's membership (locked, with the owner count), then ONE
 * set-based statement for all the work, and COMMIT.
 */
async function removeMemberAndTheirSecrets(
  svc: Services,
  actor: Actor,
  workspaceId: string,
  userId: string,
  authorize: (actorMembership: Membership, targetRole: Role) => void,
  action: 'member.removed' | 'member.left',
): Promise<{ deletedSecrets: number; affectedNodes: AffectedNode[] }> {
  return svc.db.transaction().execute(async (trx) => {
    await lockWorkspaceMembership(trx, workspaceId);
    const actorMembership = await membershipOf(trx, workspaceId, actor.userId);
    const target = await removalTarget(trx, workspaceId, userId);
    authorize(actorMembership, target.role);
    if (target.role === 'owner' && target.owners <= 1) {
      throw new NotAllowedError(
        'The last owner cannot leave or be removed: make someone else an owner first',
      );
    }
    // The invites they made (they can no longer vouch for anyone) and the invites to their address.
    const retiredAs: Record<'inviter' | 'invitee', InviteRetirement> =
      action === 'member.left'
        ? { inviter: 'inviter_left', invitee: 'invitee_left' }
        : { inviter: 'inviter_removed', invitee: 'invitee_removed' };
    const { rows } = await sql<SecretDeletionResult>`
      with ${secretDeletionCtes({ workspaceId, createdBy: userId })},
      ended as (
        delete from memberships where workspace_id = ${workspaceId} and user_id = ${userId}
      ),
      retired as (
        update invites
           set revoked_at = now(),
               revoked_reason = case when invited_by = ${userId} then ${retiredAs.inviter}::text
                                     else ${retiredAs.invitee}::text end
        where workspace_id = ${workspaceId} and accepted_at is null and revoked_at is null
          and (invited_by = ${userId} or email = ${target.email})
        returning id, email, role, invited_by
      ),
      retired_audit as (${auditInsert(
        {
          workspaceId,
          actorId: actor.userId,
          action: 'member.invite_revoked',
          targetType: 'invite',
          targetId: sql`r.id`,
          targetName: sql`r.email`,
          details: sql`jsonb_build_object('role', r.role, 'reason',
            case when r.invited_by = ${userId} then ${retiredAs.inviter}::text else ${retiredAs.invitee}::text end)`,
        },
        sql`retired r`,
      )}),
      audit as (${auditInsert({
        workspaceId,
        actorId: actor.userId,
        action,
        targetType: 'member',
        targetId: userId,
        targetName: target.email,
        details: sql`jsonb_build_object('deletedSecrets', (select count(*) from deleted),
                                        'affectedNodes', (select count(*) from flagged),
                                        'secrets', ${DELETED_SECRETS_JSONB},
                                        'nodes', ${FLAGGED_NODES_JSONB})`,
      })})
      select ${SECRET_DELETION_RESULT}`.execute(trx);
    const row = rows[0] as SecretDeletionResult;
    return { deletedSecrets: row.deleted_count, affectedNodes: affectedNodesOf(row) };
  });
}

export async function removeMember(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; userId: string },
) {
  return removeMemberAndTheirSecrets(
    svc,
    actor,
    input.workspaceId,
    input.userId,
    (membership, targetRole) => {
      requirePermission(permissions.manageMembers(membership), ONLY_MANAGERS_REMOVE);
      if (input.userId === actor.userId)
        throw new NotAllowedError('Use “leave workspace” to remove yourself');
      requirePermission(permissions.manageMemberWithRole(membership, targetRole), ONLY_OWNERS_REMOVE_OWNERS);
    },
    'member.removed',
  );
}

export async function leaveWorkspace(svc: Services, actor: Actor, input: { workspaceId: string }) {
  return removeMemberAndTheirSecrets(svc, actor, input.workspaceId, actor.userId, () => {}, 'member.left');
}
