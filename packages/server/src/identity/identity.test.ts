import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownerDb } from '../testing/harness.js';
import { postProcedure, signUpOverHttp, startTestHttpApp, trpcError } from '../testing/http-harness.js';
import { SIGN_UP_NOT_SIGNED_IN } from './identity.js';
import { hashToken } from './tokens.js';

/** The user of a sign-up that must have created an account. */
function created<T>(answer: { user: T | null }): T {
  if (!answer.user) throw new Error('expected the sign-up to create an account');
  return answer.user;
}

let t: Awaited<ReturnType<typeof startTestHttpApp>>;
beforeAll(async () => {
  t = await startTestHttpApp();
});
afterAll(() => t.close());

let counter = 0;
function uniqueEmail(prefix = 'person'): string {
  counter += 1;
  return `${prefix}-${counter}-${Date.now().toString(36)}@example.test`;
}

const PASSWORD = 'correct horse battery staple';

describe('sign-up', () => {
  it('answers an email that already has an account neutrally: no session, nothing created, the account untouched', async () => {
    const email = uniqueEmail();
    await t.http.client().trpc.auth.signUp.mutate({ email, password: PASSWORD, name: 'First' });
    const users = await ownerDb(t.app.svc).selectFrom('users').select('id').execute();
    const workspaces = await ownerDb(t.app.svc).selectFrom('workspaces').select('id').execute();

    const second = t.http.client();
    const answer = await second.trpc.auth.signUp.mutate({
      email,
      password: 'another password 123',
      name: 'Second',
    });
    expect(answer).toEqual({ user: null, message: SIGN_UP_NOT_SIGNED_IN });
    expect(second.sessionToken()).toBeUndefined();
    expect(await ownerDb(t.app.svc).selectFrom('users').select('id').execute()).toHaveLength(users.length);
    expect(await ownerDb(t.app.svc).selectFrom('workspaces').select('id').execute()).toHaveLength(
      workspaces.length,
    );
    // The owner's password still works; the one sent at sign-up does not.
    expect((await t.http.client().trpc.auth.signIn.mutate({ email, password: PASSWORD })).user.email).toBe(
      email,
    );
    expect(
      (await trpcError(t.http.client().trpc.auth.signIn.mutate({ email, password: 'another password 123' })))
        .data?.code,
    ).toBe('UNAUTHORIZED');
  });

  it('answers a taken email with the same status as a new one (no CONFLICT that would confirm the account)', async () => {
    const email = uniqueEmail();
    const body = (name: string) => JSON.stringify({ email, password: PASSWORD, name });
    const first = await postProcedure(t.http, 'auth.signUp', body('First'));
    const again = await postProcedure(t.http, 'auth.signUp', body('Again'));
    expect(first.status).toBe(200);
    expect(again.status).toBe(200);
    expect(again.text).not.toContain('exists');
    expect(again.headers.get('set-cookie')).toBeNull();
  });

  it('treats emails case-insensitively: stored lower-case, signs in in any case, conflicts in any case', async () => {
    const email = uniqueEmail('Mixed.Case');
    const mixed = email.replace('@example.test', '@Example.TEST');
    const client = t.http.client();
    const user = created(
      await client.trpc.auth.signUp.mutate({
        email: mixed,
        password: PASSWORD,
        name: 'Casey',
      }),
    );
    expect(user.email).toBe(email.toLowerCase());
    const stored = await ownerDb(t.app.svc)
      .selectFrom('users')
      .select('email')
      .where('id', '=', user.id)
      .executeTakeFirstOrThrow();
    expect(stored.email).toBe(email.toLowerCase());

    for (const variant of [email.toLowerCase(), email.toUpperCase(), mixed]) {
      const other = t.http.client();
      const signedIn = await other.trpc.auth.signIn.mutate({ email: variant, password: PASSWORD });
      expect(signedIn.user.id).toBe(user.id);
    }
    const duplicate = await t.http
      .client()
      .trpc.auth.signUp.mutate({ email: email.toUpperCase(), password: PASSWORD, name: 'Casey 2' });
    expect(duplicate.user).toBeNull();
  });

  it('refuses a password shorter than 10 characters with a field issue, not echoing it', async () => {
    const error = await trpcError(
      t.http.client().trpc.auth.signUp.mutate({ email: uniqueEmail(), password: 'short-pw', name: 'Shorty' }),
    );
    expect(error.data?.code).toBe('BAD_REQUEST');
    expect(error.data?.issues).toContainEqual({ path: ['password'], message: expect.stringContaining('10') });
    expect(error.message).not.toContain('short-pw');
  });
});

describe('sign-in', () => {
  it('answers an unknown email and a wrong password with the same code and message', async () => {
    const { email } = await signUpOverHttp(t.http);
    const unknown = await trpcError(
      t.http.client().trpc.auth.signIn.mutate({ email: uniqueEmail('nobody'), password: PASSWORD }),
    );
    const wrong = await trpcError(
      t.http.client().trpc.auth.signIn.mutate({ email, password: 'not the password' }),
    );
    expect(unknown.data?.code).toBe('UNAUTHORIZED');
    expect(wrong.data?.code).toBe('UNAUTHORIZED');
    expect(unknown.data?.httpStatus).toBe(wrong.data?.httpStatus);
    expect(unknown.message).toBe(wrong.message);
    expect(unknown.message).toBe('Email or password is incorrect');
    expect(unknown.shape).toEqual(wrong.shape);
  });

  it('sets no session cookie when sign-in fails, and keeps the current one', async () => {
    const { client, email } = await signUpOverHttp(t.http);
    const before = client.sessionToken();
    await trpcError(client.trpc.auth.signIn.mutate({ email, password: 'not the password' }));
    expect(client.sessionToken()).toBe(before);
    expect((await client.trpc.auth.me.query())?.user.email).toBe(email);
  });
});

describe('auth.me', () => {
  it('answers null when signed out', async () => {
    expect(await t.http.client().trpc.auth.me.query()).toBeNull();
  });

  it('answers the user and the personal workspace created at sign-up', async () => {
    const client = t.http.client();
    const email = uniqueEmail();
    const user = created(
      await client.trpc.auth.signUp.mutate({
        email,
        password: PASSWORD,
        name: '  Pat Person  ',
      }),
    );
    const me = await client.trpc.auth.me.query();
    expect(me).toEqual({
      user: { id: user.id, email, name: 'Pat Person' },
      workspaces: [
        { id: expect.any(String), name: "Pat Person's workspace", plan: 'personal', role: 'owner' },
      ],
    });
    const members = await client.trpc.workspaces.members.query({
      workspaceId: me?.workspaces[0]?.id as string,
    });
    expect(members.map((m) => m.userId)).toEqual([user.id]);
  });

  it('accepts an invite sent to the same email in another case', async () => {
    const owner = await signUpOverHttp(t.http, 'Inviter');
    const invitee = await signUpOverHttp(t.http, 'Invitee');
    const team = await owner.client.trpc.workspaces.create.mutate({ name: 'Case team', plan: 'team' });
    const invite = await owner.client.trpc.workspaces.invite.mutate({
      workspaceId: team.id,
      email: invitee.email.toUpperCase(),
      role: 'admin',
    });
    await invitee.client.trpc.workspaces.acceptInvite.mutate({ token: invite.token });
    const me = await invitee.client.trpc.auth.me.query();
    expect(me?.workspaces.find((w) => w.id === team.id)?.role).toBe('admin');
  });

  it('lists a team workspace once its invite is accepted', async () => {
    const owner = await signUpOverHttp(t.http, 'Owner');
    const member = await signUpOverHttp(t.http, 'Member');
    const team = await owner.client.trpc.workspaces.create.mutate({ name: 'Team', plan: 'team' });
    const invite = await owner.client.trpc.workspaces.invite.mutate({
      workspaceId: team.id,
      email: member.email,
      role: 'member',
    });
    await member.client.trpc.workspaces.acceptInvite.mutate({ token: invite.token });
    const me = await member.client.trpc.auth.me.query();
    expect(me?.workspaces.map((w) => [w.name, w.plan, w.role])).toEqual([
      ["Member's workspace", 'personal', 'owner'],
      ['Team', 'team', 'member'],
    ]);
  });
});

describe('sessions', () => {
  it('refuses an expired session', async () => {
    const { client, workspaceId } = await signUpOverHttp(t.http);
    const token = client.sessionToken() as string;
    await ownerDb(t.app.svc)
      .updateTable('sessions')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where('token_hash', '=', hashToken(token))
      .execute();
    expect(await client.trpc.auth.me.query()).toBeNull();
    const error = await trpcError(client.trpc.secrets.list.query({ workspaceId }));
    expect(error.data?.code).toBe('UNAUTHORIZED');
    expect(error.data?.httpStatus).toBe(401);
  });

  it('accepts a session until it expires (the server clock decides, not the cookie)', async () => {
    const { client } = await signUpOverHttp(t.http);
    const token = client.sessionToken() as string;
    await ownerDb(t.app.svc)
      .updateTable('sessions')
      .set({ expires_at: sql<Date>`now() + interval '1 minute'` })
      .where('token_hash', '=', hashToken(token))
      .execute();
    expect(await client.trpc.auth.me.query()).not.toBeNull();
  });

  it('stores only hashes: the raw cookie token appears nowhere in the sessions table', async () => {
    const { client, user } = await signUpOverHttp(t.http);
    const token = client.sessionToken() as string;
    const rows = await sql<{ row: string }>`select s::text as row from sessions s`.execute(
      ownerDb(t.app.svc),
    );
    expect(rows.rows.length).toBeGreaterThan(0);
    for (const { row } of rows.rows) {
      expect(row).not.toContain(token);
      expect(row).not.toContain(Buffer.from(token, 'base64url').toString('hex'));
    }
    const mine = await ownerDb(t.app.svc)
      .selectFrom('sessions')
      .selectAll()
      .where('user_id', '=', user.id)
      .execute();
    expect(mine).toHaveLength(1);
    expect(mine[0]?.token_hash).toBe(hashToken(token));
    expect(mine[0]?.token_hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('signs out everywhere: every session of the user ends, and nobody else’s (issue 6, item 7)', async () => {
    const { client: first, email, password } = await signUpOverHttp(t.http);
    const second = t.http.client();
    await second.trpc.auth.signIn.mutate({ email, password });
    const { client: bystander } = await signUpOverHttp(t.http);
    await first.trpc.auth.signOut.mutate();
    expect(await first.trpc.auth.me.query()).toBeNull();
    expect(await second.trpc.auth.me.query()).toBeNull();
    expect((await trpcError(second.trpc.workspaces.list.query())).data?.code).toBe('UNAUTHORIZED');
    expect(await bystander.trpc.auth.me.query()).not.toBeNull();
  });

  it('answers sign-out without a session with ok', async () => {
    expect(await t.http.client().trpc.auth.signOut.mutate()).toEqual({ ok: true });
  });
});
