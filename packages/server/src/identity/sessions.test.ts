import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { readConfig } from '../config.js';
import { ownerDb } from '../testing/harness.js';
import {
  type HttpClient,
  type HttpTestServer,
  postProcedure,
  signUpOverHttp,
  startHttpServer,
  startTestHttpApp,
  trpcError,
} from '../testing/http-harness.js';
import { SECURE_SESSION_COOKIE, SESSION_COOKIE } from '../trpc/trpc.js';
import { callerForSession, SESSION_TOUCH_MS } from './identity.js';
import { DEFAULT_SESSION_IDLE_HOURS, startExpirySweep, sweepExpired } from './session-expiry.js';
import { hashToken } from './tokens.js';

const sessionIdleMsOf = (env: NodeJS.ProcessEnv) => readConfig(env).sessionIdleMs;

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

// Issue 12, item 5: an idle timeout besides the absolute one, a sweep of what can no longer be used, and the
// https-only cookie prefix and HSTS.

/** Moves a session's clock: `column` set to now() minus `ago` (a PostgreSQL interval). */
async function age(token: string, column: 'last_seen_at' | 'expires_at', ago: string) {
  await sql`update sessions set ${sql.ref(column)} = now() - ${ago}::interval
            where token_hash = ${hashToken(token)}`.execute(ownerDb(t.app.svc));
}

async function lastSeen(token: string): Promise<Date | undefined> {
  const row = await ownerDb(t.app.svc)
    .selectFrom('sessions')
    .select('last_seen_at')
    .where('token_hash', '=', hashToken(token))
    .executeTakeFirst();
  return row ? new Date(row.last_seen_at) : undefined;
}

describe('the session idle timeout', () => {
  it('defaults to seven days and reads LATCHKEY_SESSION_IDLE_HOURS, refusing a malformed value by name', () => {
    expect(DEFAULT_SESSION_IDLE_HOURS).toBe(168);
    expect(sessionIdleMsOf({})).toBe(7 * 24 * 3600 * 1000);
    expect(sessionIdleMsOf({ LATCHKEY_SESSION_IDLE_HOURS: '12' })).toBe(12 * 3600 * 1000);
    for (const bad of ['0', '-1', 'a week', 'Infinity']) {
      expect(() => sessionIdleMsOf({ LATCHKEY_SESSION_IDLE_HOURS: bad })).toThrow(
        /^LATCHKEY_SESSION_IDLE_HOURS must be a positive number/,
      );
    }
    expect(t.app.svc.sessionIdleMs).toBe(7 * 24 * 3600 * 1000);
  });

  it('ends a session unused for longer than the idle timeout, long before its absolute end', async () => {
    const { client, workspaceId } = await signUpOverHttp(t.http, 'Idle');
    const token = client.sessionToken() as string;
    await age(token, 'last_seen_at', '7 days 1 minute');
    expect(await client.trpc.auth.me.query()).toBeNull();
    expect((await trpcError(client.trpc.secrets.list.query({ workspaceId }))).data?.code).toBe(
      'UNAUTHORIZED',
    );
  });

  it('keeps a session used within the idle timeout, and moves its activity on at most every few minutes', async () => {
    const { client, workspaceId } = await signUpOverHttp(t.http, 'Active');
    const token = client.sessionToken() as string;
    // Six days idle: still live; this request counts as activity and is written.
    await age(token, 'last_seen_at', '6 days');
    expect((await client.trpc.secrets.list.query({ workspaceId })).items).toEqual([]);
    const touched = (await lastSeen(token)) as Date;
    const { rows } = await sql<{ now: Date }>`select now() as now`.execute(ownerDb(t.app.svc));
    expect(new Date(rows[0]?.now as Date).getTime() - touched.getTime()).toBeLessThan(SESSION_TOUCH_MS);
    // Seen a minute ago: the next requests write nothing.
    await age(token, 'last_seen_at', '1 minute');
    const before = (await lastSeen(token)) as Date;
    await client.trpc.auth.me.query();
    await client.trpc.secrets.list.query({ workspaceId });
    expect(await lastSeen(token)).toEqual(before);
  });

  it('still ends a session at its absolute end however active it is', async () => {
    const { client } = await signUpOverHttp(t.http, 'Absolute');
    const token = client.sessionToken() as string;
    await age(token, 'expires_at', '1 second');
    expect(await callerForSession(t.app.svc, token)).toBeUndefined();
    expect(await client.trpc.auth.me.query()).toBeNull();
  });
});

describe('the expiry sweep', () => {
  const ownerOfApp = () => ownerDb(t.app.svc);
  async function exists(token: string) {
    return (await lastSeen(token)) !== undefined;
  }
  async function attempt(bucket: string, ago: string) {
    await sql`insert into sign_in_attempts (bucket, window_started_at, attempts)
              values (${bucket}, now() - ${ago}::interval, 3)`.execute(ownerOfApp());
  }
  async function attemptExists(bucket: string) {
    const { rows } = await sql`select 1 from sign_in_attempts where bucket = ${bucket}`.execute(ownerOfApp());
    return rows.length === 1;
  }

  it('deletes sessions past their end or idle too long, and sign-in counters past their window; keeps the rest', async () => {
    const expired = (await signUpOverHttp(t.http, 'Expired')).client.sessionToken() as string;
    const idle = (await signUpOverHttp(t.http, 'Idle')).client.sessionToken() as string;
    const live = (await signUpOverHttp(t.http, 'Live')).client.sessionToken() as string;
    await age(expired, 'expires_at', '1 minute');
    await age(idle, 'last_seen_at', '8 days');
    const tag = Math.random().toString(36).slice(2);
    await attempt(`sweep-old-${tag}`, '16 minutes');
    await attempt(`sweep-current-${tag}`, '1 minute');

    const swept = await sweepExpired(t.app.svc, 15 * 60 * 1000);
    expect(swept.sessions).toBeGreaterThanOrEqual(2);
    expect(swept.signInAttempts).toBeGreaterThanOrEqual(1);
    expect(await exists(expired)).toBe(false);
    expect(await exists(idle)).toBe(false);
    expect(await exists(live)).toBe(true);
    expect(await attemptExists(`sweep-old-${tag}`)).toBe(false);
    expect(await attemptExists(`sweep-current-${tag}`)).toBe(true);
  });

  it('runs on its own interval until stopped', async () => {
    const token = (await signUpOverHttp(t.http, 'Swept')).client.sessionToken() as string;
    await age(token, 'expires_at', '1 minute');
    const errors: unknown[] = [];
    const sweep = startExpirySweep(t.app.svc, {
      attemptWindowMs: 15 * 60 * 1000,
      intervalMs: 20,
      onError: (error) => errors.push(error),
    });
    try {
      await vi.waitFor(async () => expect(await exists(token)).toBe(false), {
        timeout: 20_000,
        interval: 50,
      });
    } finally {
      await sweep.stop();
    }
    expect(errors).toEqual([]);
    // Stopped: an expired session made now stays until the next sweep.
    const after = (await signUpOverHttp(t.http, 'After')).client.sessionToken() as string;
    await age(after, 'expires_at', '1 minute');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await exists(after)).toBe(true);
  });
});

describe('the session cookie and HSTS over https', () => {
  let https: HttpTestServer;
  beforeAll(async () => {
    https = await startHttpServer(t.app.svc, { trustProxy: '127.0.0.1' });
  });
  afterAll(() => https.close());
  const viaTls = { 'content-type': 'application/json', 'x-forwarded-proto': 'https' };

  async function signUp(headers: Record<string, string>) {
    return postProcedure(
      https,
      'auth.signUp',
      JSON.stringify({
        email: `cookie-${Math.random().toString(36).slice(2)}@example.test`,
        password: 'correct horse battery staple',
        name: 'Cookie',
      }),
      headers,
    );
  }
  const setCookies = (response: { headers: Headers }) => response.headers.getSetCookie();

  it('over https: a __Host- cookie (Secure, Path=/, no Domain) and Strict-Transport-Security', async () => {
    const response = await signUp(viaTls);
    expect(response.status).toBe(200);
    const [cookie, ...others] = setCookies(response);
    expect(others).toEqual([]);
    expect(cookie?.startsWith(`${SECURE_SESSION_COOKIE}=`)).toBe(true);
    const attributes = (cookie ?? '')
      .split(';')
      .slice(1)
      .map((a) => a.trim().toLowerCase());
    expect(attributes).toEqual(expect.arrayContaining(['secure', 'path=/', 'httponly', 'samesite=lax']));
    expect(attributes.some((a) => a.startsWith('domain'))).toBe(false);
    expect(response.headers.get('strict-transport-security')).toMatch(/^max-age=31536000/);
    // The session works with that cookie, over https…
    const token = decodeURIComponent((cookie as string).split(';')[0]?.split('=')[1] as string);
    const me = await https.fetch('/trpc/auth.me', {
      headers: { ...viaTls, cookie: `${SECURE_SESSION_COOKIE}=${token}` },
    });
    expect((me.json as { result: { data: unknown } }).result.data).not.toBeNull();
    expect(me.headers.get('strict-transport-security')).toMatch(/^max-age=31536000/);
    // …and a plain cookie of the same name, which a sibling subdomain or an http page could have set, counts
    // for nothing there.
    const tossed = await https.fetch('/trpc/auth.me', {
      headers: { ...viaTls, cookie: `${SESSION_COOKIE}=${token}` },
    });
    expect((tossed.json as { result: { data: unknown } }).result.data).toBeNull();
  });

  it('over plain http: the unprefixed cookie (no Secure) and no HSTS', async () => {
    const response = await signUp({ 'content-type': 'application/json' });
    expect(response.status).toBe(200);
    const [cookie] = setCookies(response);
    expect(cookie?.startsWith(`${SESSION_COOKIE}=`)).toBe(true);
    expect(cookie?.toLowerCase()).not.toContain('secure');
    expect(response.headers.get('strict-transport-security')).toBeNull();
    expect((await t.http.fetch('/healthz')).headers.get('strict-transport-security')).toBeNull();
  });

  it('with secure cookies configured (TLS ends at a proxy), the same __Host- cookie and HSTS', async () => {
    const forced = await startHttpServer(t.app.svc, { secureCookies: true });
    try {
      const response = await postProcedure(
        forced,
        'auth.signUp',
        JSON.stringify({
          email: `forced-${Math.random().toString(36).slice(2)}@example.test`,
          password: 'correct horse battery staple',
          name: 'Forced',
        }),
      );
      expect(setCookies(response)[0]?.startsWith(`${SECURE_SESSION_COOKIE}=`)).toBe(true);
      expect(response.headers.get('strict-transport-security')).toMatch(/^max-age=31536000/);
    } finally {
      await forced.close();
    }
  });

  it('signing out over https clears the __Host- cookie', async () => {
    const response = await signUp(viaTls);
    const cookie = setCookies(response)[0] as string;
    const token = decodeURIComponent(cookie.split(';')[0]?.split('=')[1] as string);
    const out = await postProcedure(https, 'auth.signOut', '{}', {
      ...viaTls,
      cookie: `${SECURE_SESSION_COOKIE}=${token}`,
    });
    expect(out.status).toBe(200);
    const cleared = setCookies(out)[0] ?? '';
    expect(cleared.startsWith(`${SECURE_SESSION_COOKIE}=;`)).toBe(true);
    expect(cleared.toLowerCase()).toContain('secure');
  });
});
