import { randomInt } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readConfig } from '../config.js';
import type { Role } from '../db/schema.js';
import { newToken } from '../identity/tokens.js';
import {
  auditEvents,
  fakeEmail,
  holdLocks,
  joinAs,
  type Person,
  rejection,
  waitForLockWaiters,
  whileAuditIsDown,
  workspaceState,
} from '../testing/fixtures.js';
import {
  clientFor,
  createTestApp,
  ownerDb,
  signedInUser,
  type TestApp,
  teamWorkspace,
  testBackend,
} from '../testing/harness.js';

// Issue 12, item 3: pending invites can be listed and revoked, and an invite never outlives its maker's right
// to make it (removal, leaving, demotion).

let app: TestApp;
beforeAll(async () => {
  app = await createTestApp();
});
afterAll(() => app.close());

const PASSWORD = 'correct horse battery staple';

/** An account on an address the inviter controls: the way a departing admin would keep a way back in. */
async function accountAt(email: string, name = 'Second Address') {
  const { caller } = clientFor(app.svc);
  const { user } = await caller.auth.signUp({ email, password: PASSWORD, name });
  return { caller, user, email };
}

async function pendingEmails(reader: Person, workspaceId: string): Promise<string[]> {
  return (await reader.caller.workspaces.invites({ workspaceId })).map((i) => i.email);
}

async function memberEmails(reader: Person, workspaceId: string): Promise<string[]> {
  return (await reader.caller.workspaces.members({ workspaceId })).map((m) => m.email);
}

async function inviteIdOf(reader: Person, workspaceId: string, email: string): Promise<string> {
  const found = (await reader.caller.workspaces.invites({ workspaceId })).find((i) => i.email === email);
  if (!found) throw new Error(`no pending invite for ${email}`);
  return found.id;
}

describe('workspaces.invites', () => {
  it('lists pending invites with their maker and expiry, for owners and admins, never the token', async () => {
    const { workspaceId, owner, admin } = await teamWorkspace(app.svc);
    const email = fakeEmail('pending');
    const invite = await admin.caller.workspaces.invite({ workspaceId, email, role: 'member' });
    for (const reader of [owner, admin]) {
      const invites = await reader.caller.workspaces.invites({ workspaceId });
      expect(invites).toEqual([
        {
          id: expect.any(String),
          email,
          role: 'member',
          invitedBy: { id: admin.user.id, name: admin.user.name, email: admin.email },
          expiresAt: invite.expiresAt,
        },
      ]);
      const text = JSON.stringify(invites);
      expect(text).not.toContain(invite.token);
      const { token_hash } = await ownerDb(app.svc)
        .selectFrom('invites')
        .select('token_hash')
        .where('workspace_id', '=', workspaceId)
        .where('email', '=', email)
        .executeTakeFirstOrThrow();
      expect(text).not.toContain(token_hash);
    }
  });

  it('an invite admits for LATCHKEY_INVITE_HOURS (seven days unless set); a malformed value is refused by name', async () => {
    expect(readConfig({}).inviteTtlMs).toBe(7 * 24 * 3600 * 1000);
    expect(readConfig({ LATCHKEY_INVITE_HOURS: '2' }).inviteTtlMs).toBe(2 * 3600 * 1000);
    for (const bad of ['0', '-3', 'two days', 'Infinity'])
      expect(() => readConfig({ LATCHKEY_INVITE_HOURS: bad })).toThrow(
        /LATCHKEY_INVITE_HOURS must be a positive number of hours/,
      );
    const { workspaceId, owner } = await teamWorkspace(app.svc);
    const defaultInvite = await owner.caller.workspaces.invite({
      workspaceId,
      email: fakeEmail('week'),
      role: 'member',
    });
    const made = Date.now();
    expect(Date.parse(defaultInvite.expiresAt) - made).toBeGreaterThan(7 * 24 * 3600 * 1000 - 60_000);
    const shortLived = clientFor({ ...app.svc, inviteTtlMs: 2 * 3600 * 1000 });
    shortLived.session.token = owner.session.token;
    const short = await shortLived.caller.workspaces.invite({
      workspaceId,
      email: fakeEmail('two'),
      role: 'member',
    });
    const left = Date.parse(short.expiresAt) - Date.now();
    expect(left).toBeLessThanOrEqual(2 * 3600 * 1000);
    expect(left).toBeGreaterThan(2 * 3600 * 1000 - 60_000);
  });

  it('leaves out accepted and expired invites', async () => {
    const { workspaceId, owner } = await teamWorkspace(app.svc);
    const guest = await signedInUser(app.svc, 'Gina Guest');
    const accepted = await owner.caller.workspaces.invite({
      workspaceId,
      email: guest.email,
      role: 'member',
    });
    await guest.caller.workspaces.acceptInvite({ token: accepted.token });
    const stale = fakeEmail('stale');
    await owner.caller.workspaces.invite({ workspaceId, email: stale, role: 'member' });
    await ownerDb(app.svc)
      .updateTable('invites')
      .set({ expires_at: new Date(Date.now() - 60_000) })
      .where('workspace_id', '=', workspaceId)
      .where('email', '=', stale)
      .execute();
    const fresh = fakeEmail('fresh');
    await owner.caller.workspaces.invite({ workspaceId, email: fresh, role: 'admin' });
    expect(await pendingEmails(owner, workspaceId)).toEqual([fresh]);
  });

  it('is FORBIDDEN to members and NOT_FOUND to people outside the workspace', async () => {
    const { workspaceId, owner, member } = await teamWorkspace(app.svc);
    await owner.caller.workspaces.invite({ workspaceId, email: fakeEmail('pending'), role: 'member' });
    const stranger = await signedInUser(app.svc, 'Sam Stranger');
    expect((await rejection(member.caller.workspaces.invites({ workspaceId }))).code).toBe('FORBIDDEN');
    expect((await rejection(stranger.caller.workspaces.invites({ workspaceId }))).code).toBe('NOT_FOUND');
  });
});

describe('workspaces.inspectInvite (what the invite page shows on arrival)', () => {
  const anonymous = () => clientFor(app.svc).caller;

  it('names the workspace, who invited and the role; hides most of the address; says whether it is yours', async () => {
    const { workspaceId, admin } = await teamWorkspace(app.svc);
    const email = fakeEmail('arriving');
    const invite = await admin.caller.workspaces.invite({ workspaceId, email, role: 'member' });
    const overview = await anonymous().workspaces.inspectInvite({ token: invite.token });
    expect(overview).toEqual({
      status: 'pending',
      workspaceName: 'Acme',
      invitedBy: 'Adam Admin',
      email: `${email.slice(0, 1)}…${email.slice(email.indexOf('@'))}`,
      role: 'member',
      expiresAt: invite.expiresAt,
      forYou: null,
    });
    expect(JSON.stringify(overview)).not.toContain(email);
    expect(JSON.stringify(overview)).not.toContain(admin.email);
    const invitee = await accountAt(email);
    expect((await invitee.caller.workspaces.inspectInvite({ token: invite.token })).forYou).toBe(true);
    const someoneElse = await signedInUser(app.svc, 'Wrong Address');
    expect((await someoneElse.caller.workspaces.inspectInvite({ token: invite.token })).forYou).toBe(false);
  });

  it('says used, revoked, retired with its maker, or expired — the states in which accepting is refused', async () => {
    const { workspaceId, owner, admin } = await teamWorkspace(app.svc);
    const status = async (token: string) => (await anonymous().workspaces.inspectInvite({ token })).status;

    const usedEmail = fakeEmail('used');
    const used = await owner.caller.workspaces.invite({ workspaceId, email: usedEmail, role: 'member' });
    await (await accountAt(usedEmail)).caller.workspaces.acceptInvite({ token: used.token });
    expect(await status(used.token)).toBe('accepted');

    const revokedEmail = fakeEmail('revoked');
    const revoked = await owner.caller.workspaces.invite({
      workspaceId,
      email: revokedEmail,
      role: 'member',
    });
    await owner.caller.workspaces.revokeInvite({
      workspaceId,
      inviteId: await inviteIdOf(owner, workspaceId, revokedEmail),
    });
    expect(await status(revoked.token)).toBe('revoked');

    const retired = await admin.caller.workspaces.invite({
      workspaceId,
      email: fakeEmail('x'),
      role: 'member',
    });
    await owner.caller.workspaces.setRole({ workspaceId, userId: admin.user.id, role: 'member' });
    expect(await status(retired.token)).toBe('revoked');

    const staleEmail = fakeEmail('stale');
    const stale = await owner.caller.workspaces.invite({ workspaceId, email: staleEmail, role: 'member' });
    await ownerDb(app.svc)
      .updateTable('invites')
      .set({ expires_at: new Date(Date.now() - 60_000) })
      .where('workspace_id', '=', workspaceId)
      .where('email', '=', staleEmail)
      .execute();
    expect(await status(stale.token)).toBe('expired');
    // What the page says matches what accepting does.
    const staleInvitee = await accountAt(staleEmail);
    expect((await rejection(staleInvitee.caller.workspaces.acceptInvite({ token: stale.token }))).code).toBe(
      'NOT_FOUND',
    );
  });

  it('an unknown token is NOT_FOUND and an empty one a BAD_REQUEST', async () => {
    expect((await rejection(anonymous().workspaces.inspectInvite({ token: newToken().token }))).code).toBe(
      'NOT_FOUND',
    );
    expect((await rejection(anonymous().workspaces.inspectInvite({ token: '' }))).code).toBe('BAD_REQUEST');
  });
});

describe('workspaces.revokeInvite', () => {
  it('makes the invite admit no one, and writes one member.invite_revoked event', async () => {
    const { workspaceId, owner, admin } = await teamWorkspace(app.svc);
    const email = fakeEmail('revoked');
    const invite = await owner.caller.workspaces.invite({ workspaceId, email, role: 'admin' });
    const inviteId = await inviteIdOf(admin, workspaceId, email);
    expect(await admin.caller.workspaces.revokeInvite({ workspaceId, inviteId })).toEqual({ id: inviteId });
    expect(await pendingEmails(owner, workspaceId)).toEqual([]);

    const invitee = await accountAt(email);
    expect((await rejection(invitee.caller.workspaces.acceptInvite({ token: invite.token }))).code).toBe(
      'NOT_FOUND',
    );
    expect(await memberEmails(owner, workspaceId)).not.toContain(email);

    const events = await auditEvents(owner, workspaceId, 'member.invite_revoked');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      actor: { id: admin.user.id },
      targetType: 'invite',
      targetId: inviteId,
      targetName: email,
      details: { role: 'admin', reason: 'revoked' },
    });
    expect(JSON.stringify(events)).not.toContain(invite.token);
    // Revoked is no longer pending: a second revocation finds nothing.
    expect((await rejection(admin.caller.workspaces.revokeInvite({ workspaceId, inviteId }))).code).toBe(
      'NOT_FOUND',
    );
  });

  it('an admin cannot revoke an invite to become an owner, as they cannot make one; an owner can', async () => {
    const { workspaceId, owner, admin } = await teamWorkspace(app.svc);
    const email = fakeEmail('future-owner');
    await owner.caller.workspaces.invite({ workspaceId, email, role: 'owner' });
    const inviteId = await inviteIdOf(owner, workspaceId, email);
    const before = await workspaceState(app.svc, owner, workspaceId);
    const refused = await rejection(admin.caller.workspaces.revokeInvite({ workspaceId, inviteId }));
    expect(refused.code).toBe('FORBIDDEN');
    expect(await workspaceState(app.svc, owner, workspaceId)).toEqual(before);
    await owner.caller.workspaces.revokeInvite({ workspaceId, inviteId });
    expect(await pendingEmails(owner, workspaceId)).toEqual([]);
  });

  it('is FORBIDDEN to members and changes nothing', async () => {
    const { workspaceId, owner, member } = await teamWorkspace(app.svc);
    const email = fakeEmail('pending');
    await owner.caller.workspaces.invite({ workspaceId, email, role: 'member' });
    const inviteId = await inviteIdOf(owner, workspaceId, email);
    const before = await workspaceState(app.svc, owner, workspaceId);
    expect((await rejection(member.caller.workspaces.revokeInvite({ workspaceId, inviteId }))).code).toBe(
      'FORBIDDEN',
    );
    expect(await workspaceState(app.svc, owner, workspaceId)).toEqual(before);
  });

  it('is all or nothing: when the audit write fails, the invite stays pending and valid', async () => {
    const { workspaceId, owner } = await teamWorkspace(app.svc);
    const email = fakeEmail('kept');
    const invite = await owner.caller.workspaces.invite({ workspaceId, email, role: 'member' });
    const inviteId = await inviteIdOf(owner, workspaceId, email);
    const error = await whileAuditIsDown(app.svc, () =>
      rejection(owner.caller.workspaces.revokeInvite({ workspaceId, inviteId })),
    );
    expect(error.code).toBe('INTERNAL_SERVER_ERROR');
    expect(await pendingEmails(owner, workspaceId)).toEqual([email]);
    const invitee = await accountAt(email);
    await invitee.caller.workspaces.acceptInvite({ token: invite.token });
    expect(await memberEmails(owner, workspaceId)).toContain(email);
  });

  it("another workspace's invite id is NOT_FOUND and that invite stays valid", async () => {
    const a = await teamWorkspace(app.svc);
    const b = await teamWorkspace(app.svc);
    const email = fakeEmail('b-invitee');
    const invite = await b.owner.caller.workspaces.invite({
      workspaceId: b.workspaceId,
      email,
      role: 'member',
    });
    const inviteId = await inviteIdOf(b.owner, b.workspaceId, email);
    const refused = await rejection(
      a.owner.caller.workspaces.revokeInvite({ workspaceId: a.workspaceId, inviteId }),
    );
    expect(refused.code).toBe('NOT_FOUND');
    const invitee = await accountAt(email);
    await invitee.caller.workspaces.acceptInvite({ token: invite.token });
    expect(await memberEmails(b.owner, b.workspaceId)).toContain(email);
  });
});

describe('an invite does not outlive its maker’s right to make it', () => {
  /** The admin invites an address they control, as admin; `lose` then takes their rights away. */
  async function adminWithBackdoor(
    lose: (team: Awaited<ReturnType<typeof teamWorkspace>>) => Promise<unknown>,
  ) {
    const team = await teamWorkspace(app.svc);
    const { workspaceId, owner, admin } = team;
    const backdoor = fakeEmail('admins-other-address');
    const invite = await admin.caller.workspaces.invite({ workspaceId, email: backdoor, role: 'admin' });
    // An invite from the owner to someone else: not the admin's to lose.
    const colleague = fakeEmail('colleague');
    await owner.caller.workspaces.invite({ workspaceId, email: colleague, role: 'member' });
    await lose(team);
    const other = await accountAt(backdoor, 'Adam Again');
    const refused = await rejection(other.caller.workspaces.acceptInvite({ token: invite.token }));
    return { ...team, backdoor, colleague, refused, other };
  }

  it('removing the admin retires the invites they made (accepting is NOT_FOUND), audited', async () => {
    const t = await adminWithBackdoor(({ workspaceId, owner, admin }) =>
      owner.caller.workspaces.removeMember({ workspaceId, userId: admin.user.id }),
    );
    expect(t.refused.code).toBe('NOT_FOUND');
    expect(await memberEmails(t.owner, t.workspaceId)).not.toContain(t.backdoor);
    expect(await pendingEmails(t.owner, t.workspaceId)).toEqual([t.colleague]);
    expect(await auditEvents(t.owner, t.workspaceId, 'member.invite_revoked')).toEqual([
      expect.objectContaining({
        actor: expect.objectContaining({ id: t.owner.user.id }),
        targetName: t.backdoor,
        details: { role: 'admin', reason: 'inviter_removed' },
      }),
    ]);
  });

  it('demoting the admin to member retires the invites they made, audited', async () => {
    const t = await adminWithBackdoor(({ workspaceId, owner, admin }) =>
      owner.caller.workspaces.setRole({ workspaceId, userId: admin.user.id, role: 'member' }),
    );
    expect(t.refused.code).toBe('NOT_FOUND');
    expect(await memberEmails(t.owner, t.workspaceId)).not.toContain(t.backdoor);
    expect(await pendingEmails(t.owner, t.workspaceId)).toEqual([t.colleague]);
    expect(await auditEvents(t.owner, t.workspaceId, 'member.invite_revoked')).toEqual([
      expect.objectContaining({
        targetName: t.backdoor,
        details: { role: 'admin', reason: 'inviter_demoted' },
      }),
    ]);
  });

  it('an admin who leaves takes the invites they made with them', async () => {
    const t = await adminWithBackdoor(({ workspaceId, admin }) =>
      admin.caller.workspaces.leave({ workspaceId }),
    );
    expect(t.refused.code).toBe('NOT_FOUND');
    expect(await pendingEmails(t.owner, t.workspaceId)).toEqual([t.colleague]);
    expect(await auditEvents(t.owner, t.workspaceId, 'member.invite_revoked')).toEqual([
      expect.objectContaining({ targetName: t.backdoor, details: { role: 'admin', reason: 'inviter_left' } }),
    ]);
  });

  it('an owner stepping down to admin retires their invites too', async () => {
    const { workspaceId, owner } = await teamWorkspace(app.svc);
    const coOwner = await joinAs(app.svc, owner, workspaceId, 'owner', 'Cora Co-owner');
    const email = fakeEmail('invited-by-cora');
    const invite = await coOwner.caller.workspaces.invite({ workspaceId, email, role: 'member' });
    await owner.caller.workspaces.setRole({ workspaceId, userId: coOwner.user.id, role: 'admin' });
    const invitee = await accountAt(email);
    expect((await rejection(invitee.caller.workspaces.acceptInvite({ token: invite.token }))).code).toBe(
      'NOT_FOUND',
    );
  });

  it('a promotion or an unchanged role keeps the invites', async () => {
    const { workspaceId, owner, admin } = await teamWorkspace(app.svc);
    const email = fakeEmail('still-welcome');
    const invite = await admin.caller.workspaces.invite({ workspaceId, email, role: 'member' });
    await owner.caller.workspaces.setRole({ workspaceId, userId: admin.user.id, role: 'admin' });
    await owner.caller.workspaces.setRole({ workspaceId, userId: admin.user.id, role: 'owner' });
    const invitee = await accountAt(email);
    await invitee.caller.workspaces.acceptInvite({ token: invite.token });
    expect(await memberEmails(owner, workspaceId)).toContain(email);
  });

  it.each([
    ['no longer a member', null],
    ['now a member', 'member'],
    ['an admin, for an owner invite', 'admin'],
  ] as const)(
    'an invite that escaped retirement is refused when its maker is %s',
    async (_label, makerRole) => {
      const { workspaceId, owner, admin } = await teamWorkspace(app.svc);
      // An invite row from before retirement existed: made by the admin, who then lost the right to make it.
      if (makerRole === null)
        await owner.caller.workspaces.removeMember({ workspaceId, userId: admin.user.id });
      else await owner.caller.workspaces.setRole({ workspaceId, userId: admin.user.id, role: makerRole });
      const email = fakeEmail('escaped');
      const { token, hash } = newToken();
      const role: Role = makerRole === 'admin' ? 'owner' : 'admin';
      await ownerDb(app.svc)
        .insertInto('invites')
        .values({
          id: crypto.randomUUID(),
          workspace_id: workspaceId,
          email,
          role,
          token_hash: hash,
          invited_by: admin.user.id,
          expires_at: new Date(Date.now() + 3_600_000),
        })
        .execute();
      const invitee = await accountAt(email);
      expect((await rejection(invitee.caller.workspaces.acceptInvite({ token }))).code).toBe('NOT_FOUND');
      expect(await memberEmails(owner, workspaceId)).not.toContain(email);
    },
  );
});

// PGlite serves one connection at a time, so this interleaving can only be forced on PostgreSQL: the test is
// defined there only. A trigger holds the invite's insert (on an advisory lock the test holds) after the
// inviter's permission check passed; the inviter's removal is started meanwhile.
if (testBackend() === 'postgres') {
  describe('an invite made while its maker is being removed', () => {
    it('is retired with the maker’s other invites, not left behind', async () => {
      const { workspaceId, owner, admin } = await teamWorkspace(app.svc);
      const email = fakeEmail('slipped-in');
      const lockKey = randomInt(1, 2 ** 31 - 1);
      await sql
        .raw(
          `create function hold_invite_insert() returns trigger language plpgsql as $$ begin if new.email = '${email}' then perform pg_advisory_xact_lock(${lockKey}); end if; return new; end $$`,
        )
        .execute(ownerDb(app.svc));
      await sql
        .raw(
          'create trigger hold_invite_insert before insert on invites for each row execute function hold_invite_insert()',
        )
        .execute(ownerDb(app.svc));
      let token = '';
      const gate = await holdLocks(app.svc, (trx) =>
        sql`select pg_advisory_xact_lock(${lockKey})`.execute(trx),
      );
      try {
        const inviting = admin.caller.workspaces
          .invite({ workspaceId, email, role: 'admin' })
          .then((invite) => {
            token = invite.token;
          });
        await gate.waitForWaiters(1); // the permission check has passed; the insert waits
        const removing = owner.caller.workspaces.removeMember({ workspaceId, userId: admin.user.id });
        // The removal either queues behind the inviting transaction (it must) or, were it not serialised with
        // it, finishes first and misses the invite still being written.
        await Promise.race([removing, waitForLockWaiters(app.svc, 2)]);
        await gate.release();
        await inviting;
        await removing;
      } finally {
        await gate.release();
        await sql.raw('drop trigger if exists hold_invite_insert on invites').execute(ownerDb(app.svc));
        await sql.raw('drop function if exists hold_invite_insert()').execute(ownerDb(app.svc));
      }
      expect(await pendingEmails(owner, workspaceId)).not.toContain(email);
      const invitee = await accountAt(email);
      expect((await rejection(invitee.caller.workspaces.acceptInvite({ token }))).code).toBe('NOT_FOUND');
    });
  });
}
