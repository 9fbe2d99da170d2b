import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownerDb } from '../testing/harness.js';
import {
  type HttpTestServer,
  postProcedure,
  type RawResponse,
  signUpOverHttp,
  startHttpServer,
  startTestHttpApp,
} from '../testing/http-harness.js';
import { DEFAULT_SIGN_IN_LIMITS, signInLimitsFromEnv } from './rate-limit.js';

// Issue 6, item 10: sign-in is rate-limited per account and per address (database counters, shared by every
// instance), with the same answer for unknown and known accounts; successes do not count.

const LIMITS = { perAccount: 3, perAddress: 6, windowMs: 15 * 60 * 1000 };
const PASSWORD = 'correct horse battery staple';

let t: Awaited<ReturnType<typeof startTestHttpApp>>;
/** Behind a (test) proxy: X-Forwarded-For sets the client address. */
let proxied: HttpTestServer;
beforeAll(async () => {
  t = await startTestHttpApp();
  proxied = await startHttpServer(t.app.svc, { trustProxy: true, signInLimits: LIMITS });
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

function signIn(email: string, password: string, address: string): Promise<RawResponse> {
  return postProcedure(proxied, 'auth.signIn', JSON.stringify({ email, password }), {
    'content-type': 'application/json',
    'x-forwarded-for': address,
  });
}

const errorOf = (response: RawResponse) =>
  (response.json as { error: { message: string; data: { code: string; httpStatus: number } } }).error;

async function clearCounters() {
  await sql`delete from sign_in_attempts`.execute(ownerDb(t.app.svc));
}

describe('sign-in rate limiting', () => {
  it('per account: after the limit of failures even the right password gets 429, from any address', async () => {
    await clearCounters();
    const { email } = await signUpOverHttp(proxied, 'Target');
    for (let i = 0; i < LIMITS.perAccount; i++) {
      const response = await signIn(email, `wrong password ${i}`, freshAddress());
      expect(response.status).toBe(401);
    }
    const limited = await signIn(email, PASSWORD, freshAddress());
    expect(limited.status).toBe(429);
    expect(errorOf(limited).data.code).toBe('TOO_MANY_REQUESTS');
    expect(errorOf(limited).message).toMatch(
      /^Too many sign-in attempts for this account or from this address\. Try again in 15 minutes\.$/,
    );
    expect(limited.headers.get('set-cookie')).toBeNull();
    // Another account is not affected.
    const { email: bystander } = await signUpOverHttp(proxied, 'Bystander');
    expect((await signIn(bystander, PASSWORD, freshAddress())).status).toBe(200);
  });

  it('answers an unknown account exactly like a known one, before and after the limit', async () => {
    await clearCounters();
    const { email } = await signUpOverHttp(proxied, 'Known');
    const unknown = `nobody-${Date.now()}@example.test`;
    const answers: { known: string[]; unknown: string[] } = { known: [], unknown: [] };
    for (let i = 0; i <= LIMITS.perAccount; i++) {
      const a = await signIn(email, 'wrong password!', freshAddress());
      const b = await signIn(unknown, 'wrong password!', freshAddress());
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

  it('does not count successful sign-ins', async () => {
    await clearCounters();
    const { email } = await signUpOverHttp(proxied, 'Frequent');
    const address = freshAddress();
    for (let i = 0; i < LIMITS.perAddress + 3; i++) {
      expect((await signIn(email, PASSWORD, address)).status).toBe(200);
    }
    // A success clears the account's failures.
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < LIMITS.perAccount - 1; i++) {
        expect((await signIn(email, 'wrong password', freshAddress())).status).toBe(401);
      }
      expect((await signIn(email, PASSWORD, freshAddress())).status).toBe(200);
    }
  });

  it('counts parallel attempts exactly: never more than the limit get through', async () => {
    await clearCounters();
    const { email } = await signUpOverHttp(proxied, 'Parallel');
    const responses = await Promise.all(
      Array.from({ length: 10 }, (_, i) => signIn(email, `parallel guess ${i}`, freshAddress())),
    );
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 401)).toHaveLength(LIMITS.perAccount);
    expect(statuses.filter((s) => s === 429)).toHaveLength(10 - LIMITS.perAccount);
  });

  it('lets an account in again once the window has passed', async () => {
    await clearCounters();
    const { email } = await signUpOverHttp(proxied, 'Patient');
    for (let i = 0; i <= LIMITS.perAccount; i++) await signIn(email, 'wrong password', freshAddress());
    expect((await signIn(email, PASSWORD, freshAddress())).status).toBe(429);
    await sql`update sign_in_attempts set window_started_at = now() - interval '16 minutes'`.execute(
      ownerDb(t.app.svc),
    );
    expect((await signIn(email, PASSWORD, freshAddress())).status).toBe(200);
  });

  it('stores neither emails nor addresses in the clear', async () => {
    await clearCounters();
    const address = freshAddress();
    const { email } = await signUpOverHttp(proxied, 'Private');
    await signIn(email, 'wrong password', address);
    const rows = await sql<{ bucket: string }>`select bucket from sign_in_attempts`.execute(
      ownerDb(t.app.svc),
    );
    expect(rows.rows.length).toBe(2);
    for (const { bucket } of rows.rows) {
      expect(bucket).toMatch(/^(account|address):[0-9a-f]{64}$/);
      expect(bucket).not.toContain(email);
      expect(bucket).not.toContain(address);
    }
  });

  it('counts wrong current passwords at a password change against the same account limit', async () => {
    await clearCounters();
    const person = await signUpOverHttp(proxied, 'Hijacked session');
    const attempt = () =>
      postProcedure(
        person.client,
        'auth.changePassword',
        JSON.stringify({ currentPassword: 'guess guess guess', newPassword: 'a brand new passphrase' }),
        { 'content-type': 'application/json', 'x-forwarded-for': freshAddress() },
      );
    for (let i = 0; i < LIMITS.perAccount; i++) expect((await attempt()).status).toBe(400);
    expect((await attempt()).status).toBe(429);
    expect((await signIn(person.email, PASSWORD, freshAddress())).status).toBe(429);
  });
});

describe('rate limit settings', () => {
  it('default to 10 per account and 50 per address per 15 minutes', () => {
    expect(signInLimitsFromEnv({})).toEqual(DEFAULT_SIGN_IN_LIMITS);
    expect(DEFAULT_SIGN_IN_LIMITS).toEqual({ perAccount: 10, perAddress: 50, windowMs: 900_000 });
  });

  it('are read from LATCHKEY_SIGNIN_*', () => {
    expect(
      signInLimitsFromEnv({
        LATCHKEY_SIGNIN_MAX_PER_ACCOUNT: '5',
        LATCHKEY_SIGNIN_MAX_PER_ADDRESS: '20',
        LATCHKEY_SIGNIN_WINDOW_SECONDS: '60',
      }),
    ).toEqual({ perAccount: 5, perAddress: 20, windowMs: 60_000 });
  });

  it.each(['0', '-1', '1.5', 'ten'])('refuse %j, naming the variable', (value) => {
    expect(() => signInLimitsFromEnv({ LATCHKEY_SIGNIN_MAX_PER_ACCOUNT: value })).toThrow(
      'LATCHKEY_SIGNIN_MAX_PER_ACCOUNT must be a positive whole number',
    );
  });
});
