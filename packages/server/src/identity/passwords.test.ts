import { describe, expect, it } from 'vitest';
import { TEST_SCRYPT } from '../testing/harness.js';
import { hashPassword, OWASP_SCRYPT, verifyPassword } from './passwords.js';

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
