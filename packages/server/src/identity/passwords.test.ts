import { describe, expect, it } from 'vitest';
import { readConfig } from '../config.js';
import { TEST_SCRYPT } from '../testing/harness.js';
import {
  hashPassword,
  OWASP_SCRYPT,
  PasswordHashingBusyError,
  PasswordHashQueue,
  passwordHashQueue,
  verifyPassword,
} from './passwords.js';

const hashQueueLimitsOf = (env: NodeJS.ProcessEnv, cpus?: number) =>
  readConfig(env, cpus === undefined ? {} : { cpus }).passwordHashQueue;

const PASSWORD = 'correct horse battery staple';

/** Replaces one base64 character of a `$`-separated part of a hash with another valid one. */
function tamperPart(hash: string, index: number): string {
  const parts = hash.split('$');
  const part = parts[index] as string;
  parts[index] = (part[0] === 'A' ? 'B' : 'A') + part.slice(1);
  return parts.join('$');
}

describe('password hashing', () => {
  // The OWASP cost takes about half a second per derivation: this test does three (one hash, two checks).
  it('hashes at the OWASP scrypt cost by default (N=2^17, r=8, p=1) and verifies', async () => {
    expect(OWASP_SCRYPT).toEqual({ log2N: 17, r: 8, p: 1 });
    const hash = await hashPassword(PASSWORD);
    expect(hash.startsWith('scrypt$17$8$1$')).toBe(true);
    const [, , , , salt, key] = hash.split('$');
    expect(Buffer.from(salt as string, 'base64')).toHaveLength(16);
    expect(Buffer.from(key as string, 'base64')).toHaveLength(32);
    expect(hash).not.toContain(PASSWORD);
    expect(await verifyPassword(PASSWORD, hash)).toBe(true);
    expect(await verifyPassword(`${PASSWORD}!`, hash)).toBe(false);
  });

  it('salts every hash: two hashes of the same password differ, and both verify', async () => {
    const first = await hashPassword(PASSWORD, TEST_SCRYPT);
    const second = await hashPassword(PASSWORD, TEST_SCRYPT);
    expect(first).not.toBe(second);
    expect(first.split('$')[4]).not.toBe(second.split('$')[4]);
    expect(await verifyPassword(PASSWORD, first)).toBe(true);
    expect(await verifyPassword(PASSWORD, second)).toBe(true);
  });

  it('records the cost it used, so a cheaper cost is recognisable and still verifies', async () => {
    const hash = await hashPassword(PASSWORD, TEST_SCRYPT);
    expect(hash.startsWith(`scrypt$${TEST_SCRYPT.log2N}$${TEST_SCRYPT.r}$${TEST_SCRYPT.p}$`)).toBe(true);
    expect(await verifyPassword(PASSWORD, hash)).toBe(true);
  });

  it('rejects a wrong password, an empty one, and one differing only in case', async () => {
    const hash = await hashPassword(PASSWORD, TEST_SCRYPT);
    expect(await verifyPassword('', hash)).toBe(false);
    expect(await verifyPassword(PASSWORD.toUpperCase(), hash)).toBe(false);
    expect(await verifyPassword(`${PASSWORD} `, hash)).toBe(false);
  });

  it('fails a tampered hash: changed key, changed salt, changed cost', async () => {
    const hash = await hashPassword(PASSWORD, TEST_SCRYPT);
    expect(await verifyPassword(PASSWORD, tamperPart(hash, 5))).toBe(false);
    expect(await verifyPassword(PASSWORD, tamperPart(hash, 4))).toBe(false);
    const cheaper = hash.replace(/^scrypt\$10\$/, 'scrypt$9$');
    expect(cheaper).not.toBe(hash);
    expect(await verifyPassword(PASSWORD, cheaper)).toBe(false);
    const shortKey = hash.replace(/\$[^$]+$/, (key) => key.slice(0, -8));
    expect(await verifyPassword(PASSWORD, shortKey)).toBe(false);
  });

  it.each([
    ['an empty string', ''],
    ['another scheme', 'bcrypt$2b$10$abcdefghijklmnopqrstuv'],
    ['a hash without salt and key', 'scrypt$10$8$1'],
    ['a hash with an empty key', 'scrypt$10$8$1$c2FsdHNhbHRzYWx0c2FsdA==$'],
    [
      'a non-numeric cost',
      'scrypt$ten$8$1$c2FsdHNhbHRzYWx0c2FsdA==$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U=',
    ],
  ])('never accepts a malformed stored hash (%s)', async (_what, stored) => {
    const verdict = await verifyPassword(PASSWORD, stored).catch(() => 'threw');
    expect(verdict === false || verdict === 'threw').toBe(true);
  });
});

describe('the password hashing queue', () => {
  /** A task that runs until `finish()` is called: no timing involved. */
  function heldTask(log: string[], name: string) {
    let finish!: () => void;
    const released = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const run = async () => {
      log.push(`start ${name}`);
      await released;
      log.push(`end ${name}`);
      return name;
    };
    return { run, finish };
  }

  it('runs at most `concurrency` derivations at once, then lets the waiting ones run in order', async () => {
    const queue = new PasswordHashQueue({ concurrency: 2, maxWaiting: 2 });
    const log: string[] = [];
    const tasks = ['a', 'b', 'c', 'd'].map((name) => heldTask(log, name));
    const results = tasks.map((task) => queue.run(task.run));
    await Promise.resolve();
    expect(log).toEqual(['start a', 'start b']);
    expect(queue.size).toEqual({ running: 2, waiting: 2 });
    tasks[1]?.finish();
    await results[1];
    await new Promise((resolve) => setImmediate(resolve));
    expect(log).toEqual(['start a', 'start b', 'end b', 'start c']);
    for (const task of tasks) task.finish();
    expect(await Promise.all(results)).toEqual(['a', 'b', 'c', 'd']);
    expect(queue.size).toEqual({ running: 0, waiting: 0 });
  });

  it('refuses at once with TOO_MANY_REQUESTS (and a retry hint) when the queue is full, without running the task', async () => {
    const queue = new PasswordHashQueue({ concurrency: 1, maxWaiting: 1 });
    const log: string[] = [];
    const running = heldTask(log, 'running');
    const waiting = heldTask(log, 'waiting');
    const first = queue.run(running.run);
    const second = queue.run(waiting.run);
    const refused = queue.run(async () => {
      log.push('refused task ran');
      return 'refused';
    });
    await expect(refused).rejects.toBeInstanceOf(PasswordHashingBusyError);
    expect(() => queue.refuseWhenFull()).toThrow(PasswordHashingBusyError);
    const error = (await refused.catch((e: unknown) => e)) as PasswordHashingBusyError;
    expect(error.kind).toBe('TOO_MANY_REQUESTS');
    expect(error.retryAfterSeconds).toBeGreaterThan(0);
    expect(error.message).toBe('The server is busy checking other passwords. Try again in a few seconds.');
    running.finish();
    waiting.finish();
    expect(await Promise.all([first, second])).toEqual(['running', 'waiting']);
    expect(() => queue.refuseWhenFull()).not.toThrow();
    expect(log).not.toContain('refused task ran');
  });

  it('frees its slot when a derivation fails', async () => {
    const queue = new PasswordHashQueue({ concurrency: 1, maxWaiting: 0 });
    await expect(queue.run(() => Promise.reject(new Error('derivation failed')))).rejects.toThrow(
      'derivation failed',
    );
    expect(await queue.run(async () => 'next')).toBe('next');
  });

  it('keeps password hashing below the libuv pool size by default, and refuses a setting that would fill it', () => {
    expect(hashQueueLimitsOf({}, 8)).toEqual({ concurrency: 2, maxWaiting: 16, maxWaitMs: 3000 });
    // Two CPUs: one hash at a time, so the event loop keeps a CPU.
    expect(hashQueueLimitsOf({}, 2).concurrency).toBe(1);
    expect(hashQueueLimitsOf({ UV_THREADPOOL_SIZE: '16' }, 32).concurrency).toBe(8);
    expect(
      hashQueueLimitsOf({
        LATCHKEY_PASSWORD_HASH_CONCURRENCY: '3',
        LATCHKEY_PASSWORD_HASH_QUEUE: '0',
        LATCHKEY_PASSWORD_HASH_MAX_WAIT_MS: '500',
      }),
    ).toEqual({ concurrency: 3, maxWaiting: 0, maxWaitMs: 500 });
    expect(() => hashQueueLimitsOf({ LATCHKEY_PASSWORD_HASH_CONCURRENCY: '4' })).toThrow(
      'LATCHKEY_PASSWORD_HASH_CONCURRENCY must be below the libuv thread pool size (UV_THREADPOOL_SIZE, 4)',
    );
    expect(() => hashQueueLimitsOf({ LATCHKEY_PASSWORD_HASH_CONCURRENCY: 'two' })).toThrow(
      'LATCHKEY_PASSWORD_HASH_CONCURRENCY must be a whole number of at least 1',
    );
  });

  it('is what hashPassword and verifyPassword go through', async () => {
    const queue = passwordHashQueue();
    const pending = hashPassword(PASSWORD, TEST_SCRYPT);
    expect(queue.size.running).toBeGreaterThan(0);
    expect(await verifyPassword(PASSWORD, await pending)).toBe(true);
    expect(queue.size).toEqual({ running: 0, waiting: 0 });
  });
});
