import { createHash, randomBytes } from 'node:crypto';

/** A random bearer token (sessions, invites) and the hash that is stored in its place. */
export function newToken(): { token: string; hash: string } {
  const token = randomBytes(32).toString('base64url');
  return { token, hash: hashToken(token) };
}

/**
 * Tokens are looked up by their SHA-256: the lookup compares hashes, not the token, so timing reveals
 * nothing usable, and a copy of the database holds no usable token.
 */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function newId(): string {
  return crypto.randomUUID();
}
