import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { RetryLaterError } from './retry-later.js';

export interface ScryptCost {
  /** CPU/memory cost as a power of two: 17 → N = 131072, the OWASP recommendation with r=8, p=1. */
  log2N: number;
  r: number;
  p: number;
}

export const OWASP_SCRYPT: ScryptCost = { log2N: 17, r: 8, p: 1 };
const KEY_LENGTH = 32;

function derive(password: string, salt: Buffer, cost: ScryptCost): Promise<Buffer> {
  const N = 2 ** cost.log2N;
  // Node's default maxmem (32 MiB) is below what N=2^17, r=8 needs (128 * N * r bytes = 128 MiB).
  const maxmem = 128 * N * cost.r * 2;
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFKC'), salt, KEY_LENGTH, { N, r: cost.r, p: cost.p, maxmem }, (error, key) =>
      error ? reject(error) : resolve(key),
    );
  });
}

export interface HashQueueLimits {
  /**
   * Derivations running at once: below the libuv thread pool's size, so file reads and DNS keep a thread, and
   * below the number of CPUs, so the event loop keeps one.
   */
  concurrency: number;
  /** Derivations allowed to wait for a free slot; one more is refused at once. */
  maxWaiting: number;
  /**
   * The longest a derivation may expect to wait (queue length × the recent derivation time ÷ concurrency);
   * a request that would wait longer is refused at once. Unset: only `maxWaiting` bounds the wait.
   */
  maxWaitMs?: number | undefined;
}

/** The queue's bounds when LATCHKEY_PASSWORD_HASH_QUEUE / _MAX_WAIT_MS are not set (config.ts reads them). */
export const DEFAULT_HASH_QUEUE = { maxWaiting: 16, maxWaitMs: 3000 } as const;

/**
 * The default concurrency: half the libuv pool (`UV_THREADPOOL_SIZE`, 4 unless set) and one less than the CPUs,
 * at least 1, so password hashing never takes every pool thread or every CPU.
 */
export function defaultHashConcurrency(pool: number, cpus: number = availableParallelism()): number {
  return Math.max(1, Math.min(Math.floor(pool / 2), cpus - 1));
}

export class PasswordHashingBusyError extends RetryLaterError {
  constructor() {
    super('The server is busy checking other passwords. Try again in a few seconds.', 5);
  }
}

/**
 * A bounded queue for password derivations. scrypt runs on libuv's small thread pool, which static files, DNS
 * lookups (the runner's outbound calls) and zlib share: without a bound, a burst of sign-ups or sign-ins
 * holds every thread (and every CPU) for seconds and the whole server stalls. At most `concurrency`
 * derivations run; others wait their turn in order, as long as the line is short enough (`maxWaiting`,
 * `maxWaitMs`); past that a request is refused at once (`PasswordHashingBusyError`, 429) rather than queued
 * behind work it would wait too long for.
 */
export class PasswordHashQueue {
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  /** A moving average of recent derivation times (ms); undefined until one has finished. */
  private typicalMs: number | undefined;

  constructor(readonly limits: HashQueueLimits) {}

  get size(): { running: number; waiting: number } {
    return { running: this.running, waiting: this.waiting.length };
  }

  private wouldWaitTooLong(): boolean {
    if (this.waiting.length >= this.limits.maxWaiting) return true;
    const { maxWaitMs } = this.limits;
    if (maxWaitMs === undefined || this.typicalMs === undefined) return false;
    const expectedWaitMs = ((this.waiting.length + 1) * this.typicalMs) / this.limits.concurrency;
    return expectedWaitMs > maxWaitMs;
  }

  /**
   * Refuses now when a derivation could not start or queue: callers check before any other work (database
   * counters), so a flood that the queue refuses anyway costs next to nothing.
   */
  refuseWhenFull(): void {
    if (this.running >= this.limits.concurrency && this.wouldWaitTooLong())
      throw new PasswordHashingBusyError();
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.running >= this.limits.concurrency) {
      if (this.wouldWaitTooLong()) throw new PasswordHashingBusyError();
      // The slot is handed over by the finishing task (running stays counted), so no newcomer can jump the line.
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    } else {
      this.running += 1;
    }
    const started = performance.now();
    try {
      return await task();
    } finally {
      const took = performance.now() - started;
      this.typicalMs = this.typicalMs === undefined ? took : 0.8 * this.typicalMs + 0.2 * took;
      const next = this.waiting.shift();
      if (next) next();
      else this.running -= 1;
    }
  }
}

let sharedQueue: PasswordHashQueue | undefined;

/**
 * The process's queue (one libuv pool per process): the default limits until start-up configures it from the
 * configuration (config.ts, `configurePasswordHashQueue`).
 */
export function passwordHashQueue(): PasswordHashQueue {
  sharedQueue ??= new PasswordHashQueue({ concurrency: defaultHashConcurrency(4), ...DEFAULT_HASH_QUEUE });
  return sharedQueue;
}

/** Sets the process's queue limits (start-up, from the configuration); hashes already running finish as they are. */
export function configurePasswordHashQueue(limits: HashQueueLimits): void {
  sharedQueue = new PasswordHashQueue(limits);
}

/** `scrypt$<log2N>$<r>$<p>$<salt b64>$<hash b64>`: the cost travels with the hash, so it can be raised later. */
export async function hashPassword(password: string, cost: ScryptCost = OWASP_SCRYPT): Promise<string> {
  const salt = randomBytes(16);
  const key = await passwordHashQueue().run(() => derive(password, salt, cost));
  return ['scrypt', cost.log2N, cost.r, cost.p, salt.toString('base64'), key.toString('base64')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, log2N, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64');
  const actual = await passwordHashQueue().run(() =>
    derive(password, Buffer.from(salt, 'base64'), { log2N: Number(log2N), r: Number(r), p: Number(p) }),
  );
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}
