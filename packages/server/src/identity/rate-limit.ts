/**
 * Sign-in and sign-up throttling (docs/security.md, docs/operations.md).
 *
 * Counters live in the database (`sign_in_attempts`), so every server instance behind a load balancer counts
 * against the same limits and a restart does not reset them. Each attempt is counted *before* the password is
 * checked (an atomic upsert), so parallel guesses cannot slip past a limit. Buckets are keyed by SHA-256 of the
 * normalised email / address: the table holds neither.
 *
 * Sign-in has three buckets, so that nobody can lock someone else out:
 * - (account, client address): past `perAccountAndAddress` the address is refused for that account (429);
 * - client address: past `perAddress` the address is refused for every account (429; password spraying);
 * - account, from every address: past `perAccount` each further attempt is *slowed* — a delay that doubles
 *   with every attempt, up to `maxDelayMs` — never refused, so the right password from an address that has not
 *   failed still gets in however many guesses others made.
 * A successful attempt gives its count back (the pair's and the account's counters are cleared, the address's
 * decremented), so only failures accumulate.
 *
 * Client addresses are grouped before counting (`addressGroup`): an IPv6 client usually holds a whole /64.
 */
import { createHash } from 'node:crypto';
import { plural } from '@latchkey/core/words';
import ipaddr from 'ipaddr.js';
import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/schema.js';
import { RetryLaterError } from './retry-later.js';

export interface SignInLimits {
  /** Attempts per account (email) per window, from all addresses, after which attempts are slowed. */
  perAccount: number;
  /** Attempts per client address per window (any accounts), after which the address is refused. */
  perAddress: number;
  /** Attempts per (account, client address) per window, after which that address is refused for that account. */
  perAccountAndAddress?: number | undefined;
  windowMs: number;
  /** The longest delay a slowed attempt waits (default 10 s); the first waits 250 ms, each next one twice as long. */
  maxDelayMs?: number | undefined;
}

export const DEFAULT_SIGN_IN_LIMITS = {
  perAccount: 10,
  perAddress: 50,
  perAccountAndAddress: 10,
  windowMs: 15 * 60 * 1000,
  maxDelayMs: 10_000,
} satisfies SignInLimits;

export interface SignUpLimits {
  /** Sign-ups per client address per window. */
  perAddress: number;
  /** Sign-ups in total (every address, every instance) per window. */
  total: number;
  windowMs: number;
}

export const DEFAULT_SIGN_UP_LIMITS: SignUpLimits = {
  perAddress: 20,
  total: 300,
  windowMs: 15 * 60 * 1000,
};

const FIRST_DELAY_MS = 250;

const inMinutes = (seconds: number) => {
  const minutes = Math.max(1, Math.ceil(seconds / 60));
  return plural(minutes, 'minute');
};

export class TooManyAttemptsError extends RetryLaterError {
  constructor(retryAfterSeconds: number) {
    super(
      `Too many sign-in attempts from this address. Try again in ${inMinutes(retryAfterSeconds)}.`,
      retryAfterSeconds,
    );
  }
}

export class TooManySignUpsError extends RetryLaterError {
  constructor(retryAfterSeconds: number) {
    super(
      `Too many new accounts right now. Try again in ${inMinutes(retryAfterSeconds)}.`,
      retryAfterSeconds,
    );
  }
}

/**
 * The group a client address is counted under: an IPv4 address as itself (IPv4-mapped IPv6 included), an IPv6
 * address as its /64 — one subscriber or host usually holds a whole /64, so counting single IPv6 addresses
 * would give each client 2^64 fresh addresses. Anything unparsable is counted as given.
 */
export function addressGroup(address: string): string {
  if (!ipaddr.isValid(address)) return address;
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  }
  if (parsed.kind() === 'ipv4') return parsed.toString();
  const parts = (parsed as ipaddr.IPv6).parts.slice(0, 4);
  return `${new ipaddr.IPv6([...parts, 0, 0, 0, 0]).toNormalizedString()}/64`;
}

interface SignInAttemptsTable {
  bucket: string;
  window_started_at: Date;
  attempts: number;
}

type LimiterDb = Kysely<Database & { sign_in_attempts: SignInAttemptsTable }>;

const digest = (value: string) => createHash('sha256').update(value).digest('hex');
const normalisedEmail = (email: string) => email.trim().toLowerCase();

/**
 * Adds one to `bucket` (a fresh window when the last one is over) and returns the count including this one
 * and the milliseconds until the window ends.
 */
async function countIn(
  db: LimiterDb,
  bucket: string,
  windowMs: number,
): Promise<{ attempts: number; retryAfterMs: number }> {
  const window = Math.round(windowMs);
  const { rows } = await sql<{ attempts: number; retry_ms: string | number }>`
    insert into sign_in_attempts as a (bucket, window_started_at, attempts) values (${bucket}, now(), 1)
    on conflict (bucket) do update set
      attempts = case when a.window_started_at <= now() - ${window}::int * interval '1 millisecond'
                      then 1 else a.attempts + 1 end,
      window_started_at = case when a.window_started_at <= now() - ${window}::int * interval '1 millisecond'
                               then now() else a.window_started_at end
    returning a.attempts,
      greatest(0, extract(epoch from (a.window_started_at + ${window}::int * interval '1 millisecond' - now())) * 1000)::bigint::text as retry_ms`.execute(
    db,
  );
  const row = rows[0];
  return { attempts: Number(row?.attempts ?? 1), retryAfterMs: Number(row?.retry_ms ?? windowMs) };
}

const wholeSeconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

export interface AttemptSubject {
  email: string;
  address?: string | undefined;
}

/** How a counted sign-in attempt goes on: wait `delayMs` first, then call `succeeded()` after a success. */
export interface CountedAttempt {
  delayMs: number;
  succeeded(): Promise<void>;
}

/**
 * The delay of the attempt that brings an account to `attempts` in the window: none up to the limit, then
 * 250 ms doubling with each attempt, at most `maxDelayMs`.
 */
export function slowdownFor(attempts: number, limits: SignInLimits): number {
  const over = attempts - limits.perAccount;
  if (over <= 0) return 0;
  const max = limits.maxDelayMs ?? DEFAULT_SIGN_IN_LIMITS.maxDelayMs;
  return Math.min(max, FIRST_DELAY_MS * 2 ** Math.min(over - 1, 30));
}

/**
 * Counts one sign-in attempt. Throws TooManyAttemptsError when the (account, address) pair or the address is
 * over its limit (the answer is the same whether the account exists or not; a refused attempt does not count
 * against the account). Otherwise returns how long to slow the attempt down, and a function that gives the
 * attempt back after a success.
 */
export async function countAttempt(
  db: Kysely<Database>,
  subject: AttemptSubject,
  limits: SignInLimits,
): Promise<CountedAttempt> {
  const limiter = db as unknown as LimiterDb;
  const email = normalisedEmail(subject.email);
  const accountKey = `account:${digest(email)}`;
  const group = subject.address ? addressGroup(subject.address) : undefined;
  const addressKeys = group
    ? [
        {
          key: `account-address:${digest(`${email}\n${group}`)}`,
          limit: limits.perAccountAndAddress ?? limits.perAccount,
        },
        { key: `address:${digest(group)}`, limit: limits.perAddress },
      ]
    : [];
  let retryAfterMs = 0;
  for (const { key, limit } of addressKeys) {
    const counted = await countIn(limiter, key, limits.windowMs);
    if (counted.attempts > limit) retryAfterMs = Math.max(retryAfterMs, counted.retryAfterMs);
  }
  if (retryAfterMs > 0) throw new TooManyAttemptsError(wholeSeconds(retryAfterMs));
  const account = await countIn(limiter, accountKey, limits.windowMs);
  return {
    delayMs: slowdownFor(account.attempts, limits),
    async succeeded() {
      for (const { key } of [{ key: accountKey }, ...addressKeys]) {
        if (!key.startsWith('address:')) {
          await limiter.deleteFrom('sign_in_attempts').where('bucket', '=', key).execute();
        } else {
          await limiter
            .updateTable('sign_in_attempts')
            .set((eb) => ({ attempts: sql<number>`greatest(${eb.ref('attempts')} - 1, 0)` }))
            .where('bucket', '=', key)
            .execute();
        }
      }
    },
  };
}

/**
 * Counts one sign-up from `address` and in total; throws TooManySignUpsError past either limit (an address
 * over its own limit is refused without using up the total). Sign-ups are never given back: each one costs a
 * password hash and creates an account.
 */
export async function countSignUp(
  db: Kysely<Database>,
  address: string | undefined,
  limits: SignUpLimits,
): Promise<void> {
  const limiter = db as unknown as LimiterDb;
  if (address) {
    const fromAddress = await countIn(
      limiter,
      `sign-up-address:${digest(addressGroup(address))}`,
      limits.windowMs,
    );
    if (fromAddress.attempts > limits.perAddress) {
      throw new TooManySignUpsError(wholeSeconds(fromAddress.retryAfterMs));
    }
  }
  const total = await countIn(limiter, 'sign-up-total', limits.windowMs);
  if (total.attempts > limits.total) throw new TooManySignUpsError(wholeSeconds(total.retryAfterMs));
}

/** Waits `ms` (a slowed sign-in attempt), without holding a database connection or a pool thread. */
export function slowDown(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}
