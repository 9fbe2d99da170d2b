/**
 * Sign-in rate limiting per account and per client address (docs/security.md, docs/operations.md).
 *
 * Counters live in the database (`sign_in_attempts`), so every server instance behind a load balancer counts
 * against the same limit and a restart does not reset it. Each attempt is counted *before* the password is
 * checked (an atomic upsert), so parallel guesses cannot slip past the limit; a successful attempt gives its
 * count back (the account's counter is cleared, the address's decremented), so only failures accumulate.
 * Buckets are keyed by SHA-256 of the normalised email / address: the table holds neither.
 */
import { createHash } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/schema.js';
import { DomainError } from '../errors.js';

export interface SignInLimits {
  /** Attempts per account (email) per window. */
  perAccount: number;
  /** Attempts per client address per window. */
  perAddress: number;
  windowMs: number;
}

export const DEFAULT_SIGN_IN_LIMITS: SignInLimits = {
  perAccount: 10,
  perAddress: 50,
  windowMs: 15 * 60 * 1000,
};

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive whole number`);
  return value;
}

/** LATCHKEY_SIGNIN_MAX_PER_ACCOUNT, LATCHKEY_SIGNIN_MAX_PER_ADDRESS, LATCHKEY_SIGNIN_WINDOW_SECONDS. */
export function signInLimitsFromEnv(env: NodeJS.ProcessEnv): SignInLimits {
  return {
    perAccount: positiveInt(env, 'LATCHKEY_SIGNIN_MAX_PER_ACCOUNT', DEFAULT_SIGN_IN_LIMITS.perAccount),
    perAddress: positiveInt(env, 'LATCHKEY_SIGNIN_MAX_PER_ADDRESS', DEFAULT_SIGN_IN_LIMITS.perAddress),
    windowMs:
      positiveInt(env, 'LATCHKEY_SIGNIN_WINDOW_SECONDS', DEFAULT_SIGN_IN_LIMITS.windowMs / 1000) * 1000,
  };
}

export class TooManyAttemptsError extends DomainError {
  readonly kind = 'TOO_MANY_REQUESTS';
  constructor(readonly retryAfterSeconds: number) {
    const minutes = Math.max(1, Math.ceil(retryAfterSeconds / 60));
    super(
      `Too many sign-in attempts for this account or from this address. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.`,
    );
  }
}

interface SignInAttemptsTable {
  bucket: string;
  window_started_at: Date;
  attempts: number;
}

type LimiterDb = Kysely<Database & { sign_in_attempts: SignInAttemptsTable }>;

const digest = (value: string) => createHash('sha256').update(value).digest('hex');

export interface AttemptSubject {
  email: string;
  address?: string | undefined;
}

function buckets(subject: AttemptSubject, limits: SignInLimits): { key: string; limit: number }[] {
  const list = [{ key: `account:${digest(subject.email.trim().toLowerCase())}`, limit: limits.perAccount }];
  if (subject.address) list.push({ key: `address:${digest(subject.address)}`, limit: limits.perAddress });
  return list;
}

/**
 * Counts one attempt in every bucket of `subject`; throws TooManyAttemptsError when any bucket is over its
 * limit (the answer is the same whether the account exists or not). Returns a function that gives the attempt
 * back after a success.
 */
export async function countAttempt(
  db: Kysely<Database>,
  subject: AttemptSubject,
  limits: SignInLimits,
): Promise<{ succeeded(): Promise<void> }> {
  const limiter = db as unknown as LimiterDb;
  const windowMs = Math.round(limits.windowMs);
  let retryAfterMs = 0;
  const list = buckets(subject, limits);
  for (const { key, limit } of list) {
    const { rows } = await sql<{ attempts: number; retry_ms: string | number }>`
      insert into sign_in_attempts as a (bucket, window_started_at, attempts) values (${key}, now(), 1)
      on conflict (bucket) do update set
        attempts = case when a.window_started_at <= now() - ${windowMs}::int * interval '1 millisecond'
                        then 1 else a.attempts + 1 end,
        window_started_at = case when a.window_started_at <= now() - ${windowMs}::int * interval '1 millisecond'
                                 then now() else a.window_started_at end
      returning a.attempts,
        greatest(0, extract(epoch from (a.window_started_at + ${windowMs}::int * interval '1 millisecond' - now())) * 1000)::bigint::text as retry_ms`.execute(
      limiter,
    );
    const row = rows[0];
    if (row && row.attempts > limit) retryAfterMs = Math.max(retryAfterMs, Number(row.retry_ms));
  }
  // Now and then, drop counters whose window is long over (keeps the table small; no scheduler needed).
  if (Math.random() < 0.02) {
    await sql`delete from sign_in_attempts where window_started_at < now() - ${windowMs}::int * interval '2 millisecond'`.execute(
      limiter,
    );
  }
  if (retryAfterMs > 0) throw new TooManyAttemptsError(Math.ceil(retryAfterMs / 1000));
  return {
    async succeeded() {
      for (const { key } of list) {
        if (key.startsWith('account:')) {
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
