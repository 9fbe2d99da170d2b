import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownerDb } from '../testing/harness.js';
import {
  type HttpClient,
  type HttpTestServer,
  signUpOverHttp,
  startHttpServer,
  startTestHttpApp,
  trpcError,
} from '../testing/http-harness.js';

// Issue 6, item 7: access follows the database on every request. A removed member, or one whose role was
// lowered, loses access on their very next request (sessions already open included, on any instance);
// signing out or changing the password ends every session of the user.

let t: Awaited<ReturnType<typeof startTestHttpApp>>;
/** A second server instance on the same database (as behind a load balancer). */
let other: HttpTestServer;
beforeAll(async () => {
  t = await startTestHttpApp();
  other = await startHttpServer(t.app.svc);
});
afterAll(async () => {
  await other.close();
  await t.close();
});

type Person = Awaited<ReturnType<typeof signUpOverHttp>>;

/** The same person in another browser, on the other instance. */
async function elsewhere(person: Person): Promise<HttpClient> {
  const client = other.client();
  await client.trpc.auth.signIn.mutate({ email: person.email, password: person.password });
  return client;
}

/** A team with an owner, an admin and a member, all signed in over HTTP; each member has a secret. */
async function team() {
  const owner = await signUpOverHttp(t.http, 'Owner');
  const admin = await signUpOverHttp(t.http, 'Admin');
  const member = await signUpOverHttp(t.http, 'Member');
  const { id: workspaceId } = await owner.client.trpc.workspaces.create.mutate({
    name: 'Team',
    plan: 'team',
  });
  for (const [person, role] of [
    [admin, 'admin'],
    [member, 'member'],
  ] as const) {
    const { token } = await owner.client.trpc.workspaces.invite.mutate({
      workspaceId,
      email: person.email,
      role,
    });
    await person.client.trpc.workspaces.acceptInvite.mutate({ token });
  }
  const secretOf = async (person: Person, name: string) =>
    person.client.trpc.secrets.create.mutate({
      workspaceId,
      credentialType: 'slackBotToken',
      name,
      data: { token: `xoxb-fake-${name.replace(/\W/g, '')}` },
    });
  const ownerSecret = await secretOf(owner, 'Owner bot');
  const adminSecret = await secretOf(admin, 'Admin bot');
  const memberSecret = await secretOf(member, 'Member bot');
  return { workspaceId, owner, admin, member, ownerSecret, adminSecret, memberSecret };
}

const code = async (call: Promise<unknown>) => (await trpcError(call)).data?.code;

describe('a removed member', () => {
  it('loses access on the very next request, in every open session, on every instance', async () => {
    const { workspaceId, owner, member } = await team();
    const second = await elsewhere(member);
    // Both sessions work before the removal.
    expect((await member.client.trpc.secrets.list.query({ workspaceId })).items).toHaveLength(1);
    expect((await second.trpc.workflows.list.query({ workspaceId })).length).toBe(0);

    await owner.client.trpc.workspaces.removeMember.mutate({ workspaceId, userId: member.user.id });

    for (const client of [member.client, second]) {
      expect(await code(client.trpc.secrets.list.query({ workspaceId }))).toBe('NOT_FOUND');
      expect(await code(client.trpc.workspaces.get.query({ workspaceId }))).toBe('NOT_FOUND');
      expect(await code(client.trpc.secrets.selectable.query({ workspaceId, nodeType: 'slack' }))).toBe(
        'NOT_FOUND',
      );
      expect(
        await code(
          client.trpc.secrets.create.mutate({
            workspaceId,
            credentialType: 'slackBotToken',
            name: 'After removal',
            data: { token: 'xoxb-fake-after' },
          }),
        ),
      ).toBe('NOT_FOUND');
      expect(await code(client.trpc.workflows.create.mutate({ workspaceId, name: 'After removal' }))).toBe(
        'NOT_FOUND',
      );
      const me = await client.trpc.auth.me.query();
      expect(me?.workspaces.map((w) => w.id)).not.toContain(workspaceId);
    }
    // Still signed in: only the workspace is gone.
    expect(await member.client.trpc.auth.me.query()).not.toBeNull();
  });
});

describe('a lowered role', () => {
  it('an admin made a member loses the admin rights on the very next request', async () => {
    const { workspaceId, owner, admin, member, memberSecret, ownerSecret } = await team();
    const second = await elsewhere(admin);
    expect((await admin.client.trpc.secrets.list.query({ workspaceId })).items).toHaveLength(3);
    expect((await second.trpc.audit.list.query({ workspaceId })).items.length).toBeGreaterThan(0);

    await owner.client.trpc.workspaces.setRole.mutate({ workspaceId, userId: admin.user.id, role: 'member' });

    for (const client of [admin.client, second]) {
      const listed = await client.trpc.secrets.list.query({ workspaceId });
      expect(listed.items.map((s) => s.name)).toEqual(['Admin bot']);
      expect(await code(client.trpc.audit.list.query({ workspaceId }))).toBe('FORBIDDEN');
      expect(
        await code(
          client.trpc.workspaces.invite.mutate({ workspaceId, email: 'x@example.test', role: 'member' }),
        ),
      ).toBe('FORBIDDEN');
      expect(
        await code(client.trpc.workspaces.removeMember.mutate({ workspaceId, userId: member.user.id })),
      ).toBe('FORBIDDEN');
      expect(await code(client.trpc.secrets.delete.mutate({ workspaceId, secretId: memberSecret.id }))).toBe(
        'FORBIDDEN',
      );
      expect(
        await code(
          client.trpc.secrets.replace.mutate({
            workspaceId,
            secretId: ownerSecret.id,
            data: { token: 'xoxb-fake-takeover' },
          }),
        ),
      ).toBe('FORBIDDEN');
    }
    // Nothing of the others' changed.
    expect((await owner.client.trpc.secrets.list.query({ workspaceId })).items).toHaveLength(3);
  });

  it('an owner made an admin can no longer touch owners on the very next request', async () => {
    const { workspaceId, owner, admin } = await team();
    await owner.client.trpc.workspaces.setRole.mutate({ workspaceId, userId: admin.user.id, role: 'owner' });
    // The second owner demotes the first; the first's open session can no longer act as an owner.
    await admin.client.trpc.workspaces.setRole.mutate({ workspaceId, userId: owner.user.id, role: 'admin' });
    expect(
      await code(
        owner.client.trpc.workspaces.setRole.mutate({ workspaceId, userId: admin.user.id, role: 'member' }),
      ),
    ).toBe('FORBIDDEN');
    expect(
      await code(owner.client.trpc.workspaces.removeMember.mutate({ workspaceId, userId: admin.user.id })),
    ).toBe('FORBIDDEN');
  });
});

describe('signing out', () => {
  it('ends every session of the user, on every instance', async () => {
    const person = await signUpOverHttp(t.http, 'Many devices');
    const second = await elsewhere(person);
    const third = await elsewhere(person);
    const countSessions = async () =>
      (
        await ownerDb(t.app.svc)
          .selectFrom('sessions')
          .select('token_hash')
          .where('user_id', '=', person.user.id)
          .execute()
      ).length;
    expect(await countSessions()).toBe(3);
    await second.trpc.auth.signOut.mutate();
    expect(await countSessions()).toBe(0);
    for (const client of [person.client, second, third]) {
      expect(await client.trpc.auth.me.query()).toBeNull();
      expect(await code(client.trpc.workspaces.list.query())).toBe('UNAUTHORIZED');
    }
  });
});

describe('changing the password', () => {
  const NEW_PASSWORD = 'another long passphrase 42';

  it('needs the current password: a wrong one is a field error and changes nothing', async () => {
    const person = await signUpOverHttp(t.http, 'Careful');
    const second = await elsewhere(person);
    const error = await trpcError(
      person.client.trpc.auth.changePassword.mutate({
        currentPassword: 'not it at all',
        newPassword: NEW_PASSWORD,
      }),
    );
    expect(error.data?.code).toBe('BAD_REQUEST');
    expect(error.message).toBe('Some fields are not valid: currentPassword: Is not your current password');
    expect(error.message).not.toContain('not it at all');
    expect(await second.trpc.auth.me.query()).not.toBeNull();
    expect(await person.client.trpc.auth.me.query()).not.toBeNull();
    await other.client().trpc.auth.signIn.mutate({ email: person.email, password: person.password });
  });

  it.each([
    ['too short', 'short', /newPassword: Must be at least 10/],
    ['the same as the current one', 'correct horse battery staple', /newPassword: Must be different/],
  ])('refuses a new password that is %s', async (_name, newPassword, message) => {
    const person = await signUpOverHttp(t.http, 'Lazy');
    const error = await trpcError(
      person.client.trpc.auth.changePassword.mutate({ currentPassword: person.password, newPassword }),
    );
    expect(error.data?.code).toBe('BAD_REQUEST');
    expect(error.message).toMatch(message);
    expect(await person.client.trpc.auth.me.query()).not.toBeNull();
  });

  it('ends every session of the user and starts a fresh one for the caller', async () => {
    const person = await signUpOverHttp(t.http, 'Rotating');
    const second = await elsewhere(person);
    const oldToken = person.client.sessionToken() as string;
    const result = await person.client.trpc.auth.changePassword.mutate({
      currentPassword: person.password,
      newPassword: NEW_PASSWORD,
    });
    expect(result.user.id).toBe(person.user.id);
    const newToken = person.client.sessionToken() as string;
    expect(newToken).toBeTruthy();
    expect(newToken).not.toBe(oldToken);
    // The caller goes on, in the new session only.
    expect((await person.client.trpc.auth.me.query())?.user.id).toBe(person.user.id);
    const sessions = await ownerDb(t.app.svc)
      .selectFrom('sessions')
      .select('token_hash')
      .where('user_id', '=', person.user.id)
      .execute();
    expect(sessions).toHaveLength(1);
    // The other device and a copy of the old cookie are signed out.
    expect(await second.trpc.auth.me.query()).toBeNull();
    const replay = t.http.client();
    replay.setSessionToken(oldToken);
    expect(await code(replay.trpc.workspaces.list.query())).toBe('UNAUTHORIZED');
    // The old password no longer signs in; the new one does.
    expect(
      await code(other.client().trpc.auth.signIn.mutate({ email: person.email, password: person.password })),
    ).toBe('UNAUTHORIZED');
    await other.client().trpc.auth.signIn.mutate({ email: person.email, password: NEW_PASSWORD });
  });

  it('needs a session', async () => {
    expect(
      await code(
        t.http
          .client()
          .trpc.auth.changePassword.mutate({ currentPassword: 'whatever it is', newPassword: NEW_PASSWORD }),
      ),
    ).toBe('UNAUTHORIZED');
  });
});
