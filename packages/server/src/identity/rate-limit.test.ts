import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readConfig } from '../config.js';
import { ownerDb } from '../testing/harness.js';
import {
  type HttpTestServer,
  postProcedure,
  type RawResponse,
  signUpOverHttp,
  startHttpServer,
  startTestHttpApp,
} from '../testing/http-harness.js';
import { addressGroup, DEFAULT_SIGN_IN_LIMITS, DEFAULT_SIGN_UP_LIMITS, slowdownFor } from './rate-limit.js';

const signInLimitsOf = (env: NodeJS.ProcessEnv) => readConfig(env).signInLimits;
const signUpLimitsOf = (env: NodeJS.ProcessEnv) => readConfig(env).signUpLimits;

// Issue 6, item 10 and issue 12, items 2 and 4: sign-in is throttled per (account, address) and per address
// (database counters, shared by every instance) with the same answer for unknown and known accounts; failures
// on an account from everywhere only slow it down, so nobody can lock someone else out.

const LIMITS = {
  perAccount: 3,
  perAccountAndAddress: 3,
  perAddress: 6,
  windowMs: 15 * 60 * 1000,
  maxDelayMs: 20,
};
const PASSWORD = 'correct horse battery staple';

let t: Awaited<ReturnType<typeof startTestHttpApp>>;
/** Behind a (test) proxy on 127.0.0.1: X-Forwarded-For sets the client address. */
let proxied: HttpTestServer;
beforeAll(async () => {
  t = await startTestHttpApp();
  proxied = await startHttpServer(t.app.svc, { trustProxy: ['127.0.0.1'], signInLimits: LIMITS });
});
afterAll(async () => {
  await proxied.close();
  await t.close();
});

let addressCounter = 0;
/** A fresh client address (documentation range 198.51.100.0/24 and onwards). */
const freshAddress = () => {
  addressCounter += 1;
  return `198.51.${100 + Math.floor(addressCounter / 250)}.${addressCounter % 250}`;
};

function signIn(
  email: string,
  password: string,
  address: string,
  server: HttpTestServer = proxied,
): Promise<RawResponse> {
  return postProcedure(server, 'auth.signIn', JSON.stringify({ email, password }), {
    'content-type': 'application/json',
    'x-forwarded-for': address,
  });
}

const errorOf = (response: RawResponse) =>
  (response.json as { error: { message: string; data: { code: string; httpStatus: number } } }).error;

async function clearCounters() {
  await sql`delete from sign_in_attempts`.execute(ownerDb(t.app.svc));
}

describe('sign-in throttling', () => {
  it('lets the right password in from an address that has not failed, however many failures others made', async () => {
    await clearCounters();
    const { email } = await signUpOverHttp(proxied, 'Target');
    const attacker = freshAddress();
    for (let i = 0; i < LIMITS.perAccountAndAddress; i++) {
      expect((await signIn(email, `wrong password ${i}`, attacker)).status).toBe(401);
    }
    // The attacker's address is refused for this account…
    expect((await signIn(email, 'wrong password again', attacker)).status).toBe(429);
    // …and failures from many more addresses only slow the account down.
    for (let i = 0; i < 2 * LIMITS.perAccount; i++) {
      expect((await signIn(email, `spread guess ${i}`, freshAddress())).status).toBe(401);
    }
    const owner = await signIn(email, PASSWORD, freshAddress());
    expect(owner.status).toBe(200);
    expect(owner.headers.get('set-cookie')).toContain('latchkey_session=');
  });

  it('refuses an address that keeps failing on one account, for that account only, with Retry-After', async () => {
    await clearCounters();
    const { email } = await signUpOverHttp(proxied, 'Guessed');
    const { email: other } = await signUpOverHttp(proxied, 'Other');
    const address = freshAddress();
    for (let i = 0; i < LIMITS.perAccountAndAddress; i++) await signIn(email, 'wrong password', address);
    const limited = await signIn(email, PASSWORD, address);
    expect(limited.status).toBe(429);
    expect(errorOf(limited).data.code).toBe('TOO_MANY_REQUESTS');
    expect(errorOf(limited).message).toBe(
      'Too many sign-in attempts from this address. Try again in 15 minutes.',
    );
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(LIMITS.windowMs / 1000);
    expect(limited.headers.get('set-cookie')).toBeNull();
    expect((await signIn(other, PASSWORD, address)).status).toBe(200);
  });

  it('answers an unknown account exactly like a known one, before and after the limit', async () => {
    await clearCounters();
    const { email } = await signUpOverHttp(proxied, 'Known');
    const unknown = `nobody-${Date.now()}@example.test`;
    const [fromA, fromB] = [freshAddress(), freshAddress()];
    const answers: { known: string[]; unknown: string[] } = { known: [], unknown: [] };
    for (let i = 0; i <= LIMITS.perAccountAndAddress; i++) {
      const a = await signIn(email, 'wrong password!', fromA);
      const b = await signIn(unknown, 'wrong password!', fromB);
      answers.known.push(`${a.status} ${JSON.stringify(a.json)}`);
      answers.unknown.push(`${b.status} ${JSON.stringify(b.json)}`);
    }
    expect(answers.unknown).toEqual(answers.known);
    expect(answers.known.at(-1)).toMatch(/^429 /);
  });

  it('per address: many accounts tried from one address are stopped; other addresses still sign in', async () => {
    await clearCounters();
    const address = freshAddress();
    const victim = await signUpOverHttp(proxied, 'Victim');
    for (let i = 0; i < LIMITS.perAddress; i++) {
      const response = await signIn(`sprayed-${i}-${Date.now()}@example.test`, 'Winter2024!', address);
      expect(response.status).toBe(401);
    }
    expect((await signIn(victim.email, PASSWORD, address)).status).toBe(429);
    expect((await signIn(victim.email, PASSWORD, freshAddress())).status).toBe(200);
  });

  it('counts IPv6 clients by /64: new addresses in the same /64 do not get a fresh limit', async () => {
    await clearCounters();
    const victim = await signUpOverHttp(proxied, 'Six');
    for (let i = 0; i < LIMITS.perAddress; i++) {
      const address = `2001:db8:6:4::${(i + 1).toString(16)}`;
      expect((await signIn(`v6-${i}-${Date.now()}@example.test`, 'Winter2024!', address)).status).toBe(401);
    }
    expect((await signIn(victim.email, PASSWORD, '2001:db8:6:4:ffff:1:2:3')).status).toBe(429);
    expect((await signIn(victim.email, PASSWORD, '2001:db8:6:5::1')).status).toBe(200);
  });

  it('does not count successful sign-ins', async () => {
    await clearCounters();
    const { email } = await signUpOverHttp(proxied, 'Frequent');
    const address = freshAddress();
    for (let i = 0; i < LIMITS.perAddress + 3; i++) {
      expect((await signIn(email, PASSWORD, address)).status).toBe(200);
    }
    // A success clears this address's failures on the account (the address's own count keeps its failures).
    const typist = freshAddress();
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < LIMITS.perAccountAndAddress - 1; i++) {
        expect((await signIn(email, 'wrong password', typist)).status).toBe(401);
      }
      expect((await signIn(email, PASSWORD, typist)).status).toBe(200);
    }
  });

  it('counts parallel attempts exactly: never more than the limit get through', async () => {
    await clearCounters();
    const { email } = await signUpOverHttp(proxied, 'Parallel');
    const address = freshAddress();
    const responses = await Promise.all(
      Array.from({ length: 10 }, (_, i) => signIn(email, `parallel guess ${i}`, address)),
    );
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 401)).toHaveLength(LIMITS.perAccountAndAddress);
    expect(statuses.filter((s) => s === 429)).toHaveLength(10 - LIMITS.perAccountAndAddress);
  });

  it('lets an address in again once the window has passed', async () => {
    await clearCounters();
    const { email } = await signUpOverHttp(proxied, 'Patient');
    const address = freshAddress();
    for (let i = 0; i <= LIMITS.perAccountAndAddress; i++) await signIn(email, 'wrong password', address);
    expect((await signIn(email, PASSWORD, address)).status).toBe(429);
    await sql`update sign_in_attempts set window_started_at = now() - interval '16 minutes'`.execute(
      ownerDb(t.app.svc),
    );
    expect((await signIn(email, PASSWORD, address)).status).toBe(200);
  });

  it('stores neither emails nor addresses in the clear', async () => {
    const address = freshAddress();
    const { email } = await signUpOverHttp(proxied, 'Private');
    await clearCounters();
    await signIn(email, 'wrong password', address);
    const rows = await sql<{ bucket: string }>`select bucket from sign_in_attempts`.execute(
      ownerDb(t.app.svc),
    );
    expect(rows.rows.map((r) => r.bucket.split(':')[0]).sort()).toEqual([
      'account',
      'account-address',
      'address',
    ]);
    for (const { bucket } of rows.rows) {
      expect(bucket).toMatch(/^(account|account-address|address):[0-9a-f]{64}$/);
      expect(bucket).not.toContain(email);
      expect(bucket).not.toContain(address);
    }
  });

  it('counts wrong current passwords at a password change like sign-in failures from that address', async () => {
    await clearCounters();
    const person = await signUpOverHttp(proxied, 'Hijacked session');
    const address = freshAddress();
    const attempt = () =>
      postProcedure(
        person.client,
        'auth.changePassword',
        JSON.stringify({ currentPassword: 'guess guess guess', newPassword: 'a brand new passphrase' }),
        { 'content-type': 'application/json', 'x-forwarded-for': address },
      );
    for (let i = 0; i < LIMITS.perAccountAndAddress; i++) expect((await attempt()).status).toBe(400);
    expect((await attempt()).status).toBe(429);
    expect((await signIn(person.email, PASSWORD, address)).status).toBe(429);
    expect((await signIn(person.email, PASSWORD, freshAddress())).status).toBe(200);
  });

  it('ignores X-Forwarded-For from a peer that is not a listed proxy', async () => {
    await clearCounters();
    // The only trusted proxy is elsewhere: requests from 127.0.0.1 are counted as 127.0.0.1, whatever they claim.
    const direct = await startHttpServer(t.app.svc, { trustProxy: ['192.0.2.10'], signInLimits: LIMITS });
    try {
      const victim = await signUpOverHttp(direct, 'Direct');
      for (let i = 0; i < LIMITS.perAddress; i++) {
        await signIn(`forged-${i}-${Date.now()}@example.test`, 'Winter2024!', freshAddress(), direct);
      }
      expect((await signIn(victim.email, PASSWORD, freshAddress(), direct)).status).toBe(429);
    } finally {
      await direct.close();
    }
  });
});

describe('sign-up throttling', () => {
  const signUp = (server: HttpTestServer, address: string) =>
    postProcedure(
      server,
      'auth.signUp',
      JSON.stringify({
        email: `sign-up-${++addressCounter}-${Date.now()}@example.test`,
        password: PASSWORD,
        name: 'Newcomer',
      }),
      { 'content-type': 'application/json', 'x-forwarded-for': address },
    );
  const userCount = async () => (await ownerDb(t.app.svc).selectFrom('users').select('id').execute()).length;

  it('refuses sign-ups past the limit per address with 429 and Retry-After, creating nothing', async () => {
    await clearCounters();
    const server = await startHttpServer(t.app.svc, {
      trustProxy: ['127.0.0.1'],
      signUpLimits: { perAddress: 2, total: 1000, windowMs: 60 * 60 * 1000 },
    });
    try {
      const address = freshAddress();
      expect((await signUp(server, address)).status).toBe(200);
      expect((await signUp(server, address)).status).toBe(200);
      const before = await userCount();
      const refused = await signUp(server, address);
      expect(refused.status).toBe(429);
      expect(errorOf(refused).data.code).toBe('TOO_MANY_REQUESTS');
      expect(errorOf(refused).message).toBe('Too many new accounts right now. Try again in 60 minutes.');
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(Number(refused.headers.get('retry-after'))).toBeLessThanOrEqual(3600);
      expect(refused.headers.get('set-cookie')).toBeNull();
      expect(await userCount()).toBe(before);
      // Another address is not affected.
      expect((await signUp(server, freshAddress())).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('refuses sign-ups past the total limit, from any address', async () => {
    await clearCounters();
    const server = await startHttpServer(t.app.svc, {
      trustProxy: ['127.0.0.1'],
      signUpLimits: { perAddress: 1000, total: 3, windowMs: 60 * 60 * 1000 },
    });
    try {
      for (let i = 0; i < 3; i++) expect((await signUp(server, freshAddress())).status).toBe(200);
      const before = await userCount();
      const refused = await signUp(server, freshAddress());
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).not.toBeNull();
      expect(await userCount()).toBe(before);
    } finally {
      await server.close();
    }
  });
});

describe('throttling rules', () => {
  it('slows an account past its limit by a doubling delay, capped, and never before the limit', () => {
    const limits = { ...LIMITS, perAccount: 10, maxDelayMs: 10_000 };
    expect([9, 10, 11, 12, 13, 20, 60].map((n) => slowdownFor(n, limits))).toEqual([
      0, 0, 250, 500, 1000, 10_000, 10_000,
    ]);
  });

  it('groups IPv6 addresses by /64 and IPv4-mapped addresses as IPv4', () => {
    expect(addressGroup('2001:db8:1:2:3:4:5:6')).toBe(addressGroup('2001:db8:1:2::9'));
    expect(addressGroup('2001:db8:1:2::9')).toBe('2001:db8:1:2:0:0:0:0/64');
    expect(addressGroup('2001:db8:1:3::9')).not.toBe(addressGroup('2001:db8:1:2::9'));
    expect(addressGroup('::ffff:198.51.100.7')).toBe('198.51.100.7');
    expect(addressGroup('198.51.100.7')).toBe('198.51.100.7');
  });
});

describe('throttling settings', () => {
  it('default to slowing after 10 per account, refusing after 10 per account and address and 50 per address, per 15 minutes', () => {
    expect(signInLimitsOf({})).toEqual(DEFAULT_SIGN_IN_LIMITS);
    expect(DEFAULT_SIGN_IN_LIMITS).toEqual({
      perAccount: 10,
      perAccountAndAddress: 10,
      perAddress: 50,
      windowMs: 900_000,
      maxDelayMs: 10_000,
    });
    expect(signUpLimitsOf({})).toEqual(DEFAULT_SIGN_UP_LIMITS);
    expect(DEFAULT_SIGN_UP_LIMITS).toEqual({ perAddress: 20, total: 300, windowMs: 900_000 });
  });

  it('are read from LATCHKEY_SIGNIN_* and LATCHKEY_SIGNUP_*', () => {
    expect(
      signInLimitsOf({
        LATCHKEY_SIGNIN_MAX_PER_ACCOUNT: '5',
        LATCHKEY_SIGNIN_MAX_PER_ADDRESS: '20',
        LATCHKEY_SIGNIN_MAX_PER_ACCOUNT_ADDRESS: '4',
        LATCHKEY_SIGNIN_WINDOW_SECONDS: '60',
        LATCHKEY_SIGNIN_MAX_DELAY_SECONDS: '3',
      }),
    ).toEqual({ perAccount: 5, perAddress: 20, perAccountAndAddress: 4, windowMs: 60_000, maxDelayMs: 3000 });
    expect(
      signUpLimitsOf({
        LATCHKEY_SIGNUP_MAX_PER_ADDRESS: '3',
        LATCHKEY_SIGNUP_MAX_TOTAL: '40',
        LATCHKEY_SIGNUP_WINDOW_SECONDS: '600',
      }),
    ).toEqual({ perAddress: 3, total: 40, windowMs: 600_000 });
  });

  it.each(['0', '-1', '1.5', 'ten'])('refuse %j, naming the variable', (value) => {
    expect(() => signInLimitsOf({ LATCHKEY_SIGNIN_MAX_PER_ACCOUNT: value })).toThrow(
      'LATCHKEY_SIGNIN_MAX_PER_ACCOUNT must be a positive whole number',
    );
    expect(() => signUpLimitsOf({ LATCHKEY_SIGNUP_MAX_TOTAL: value })).toThrow(
      'LATCHKEY_SIGNUP_MAX_TOTAL must be a positive whole number',
    );
  });
});
