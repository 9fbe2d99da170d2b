/**
 * Encryptions per data key (issue 6, item 3; docs/security.md "Encryption").
 *
 * Every secret envelope is AES-256-GCM with a fresh random 96-bit nonce. NIST SP 800-38D (§8.3) caps the number
 * of encryptions under one key with random nonces at 2^32, where the chance of a repeated nonce — fatal for
 * GCM — is about n²/2^97 = 2^-33. Each workspace data key therefore counts its encryptions
 * (`workspace_keys.encryptions`) and stops encrypting at a configurable limit, by default 2^30: a quarter of the
 * NIST bound (collision chance about 2^-37), with room for what the count cannot see — keys older than the
 * counter start at the number of secrets they encrypt (migration 0004), a lower bound.
 *
 * The count is taken in the SAME statement that stores the ciphertext, guarded by the limit (`countEncryption`):
 * a key at its limit makes the write store nothing. The caller then adds the next data-key version (at most one
 * per exhausted version, whatever the number of writers: the primary key (workspace_id, version) decides) and
 * encrypts again with it (`withinDataKeyLimit`, below). So no key ever counts above the limit.
 */
import { type RawBuilder, sql } from 'kysely';
import type { Services } from '../services.js';
import { type ActiveDataKey, addDataKeyVersion } from './workspace-keys.js';

export const DATA_KEY_LIMIT_VARIABLE = 'LATCHKEY_DATA_KEY_MAX_ENCRYPTIONS';
/** 2^30: a quarter of NIST SP 800-38D's 2^32 bound for random 96-bit nonces. */
export const DEFAULT_DATA_KEY_MAX_ENCRYPTIONS = 2 ** 30;
/** The NIST bound itself: a configured limit above it would defeat the purpose, so it is refused. */
export const MAX_DATA_KEY_MAX_ENCRYPTIONS = 2 ** 32;

const LIMIT_RULE = `a whole number from 1 to ${MAX_DATA_KEY_MAX_ENCRYPTIONS} (2^32, NIST SP 800-38D's bound for AES-GCM with random nonces); default ${DEFAULT_DATA_KEY_MAX_ENCRYPTIONS}`;

/** Checks a configured limit; `source` names where it came from in the error. */
export function checkDataKeyMaxEncryptions(value: unknown, source = 'dataKeyMaxEncryptions'): number {
  if (
    typeof value !== 'number' ||
    !Number.isInteger(value) ||
    value < 1 ||
    value > MAX_DATA_KEY_MAX_ENCRYPTIONS
  ) {
    throw new Error(`${source} must be ${LIMIT_RULE}`);
  }
  return value;
}

/** `workspace_keys.encryptions` as a number (pg: string; PGlite: number, or bigint for huge values). */
export function encryptionCount(value: string | number | bigint | null | undefined): number {
  return value === null || value === undefined ? 0 : Number(value);
}

/**
 * A CTE `<name>` that counts one encryption under data key (`workspaceId`, `version`) if — and only if — the
 * key is below `limit` (and `onlyIf`, a SQL condition, holds). It returns the version (one row) when it counted,
 * no row when the key is at its limit; the write it belongs to selects from it, so it stores nothing then.
 * The row lock it takes serialises the writers of one key (`encryptions < limit` is re-checked after waiting),
 * so concurrent writers can never push a key past its limit.
 */
export function countEncryption(
  name: string,
  key: { workspaceId: string; version: number; limit: number; newestOnly?: boolean },
  onlyIf: RawBuilder<unknown> = sql`true`,
): RawBuilder<unknown> {
  // newestOnly: the key came from memory and may have been superseded by another instance's rotation; then the
  // write stores nothing, exactly as for a key at its limit, and is retried with the newest key.
  const newest = key.newestOnly
    ? sql`and version = (select max(n.version) from workspace_keys n where n.workspace_id = ${key.workspaceId})`
    : sql``;
  return sql`${sql.id(name)} as (
    update workspace_keys set encryptions = encryptions + 1
    where workspace_id = ${key.workspaceId} and version = ${key.version}::integer
      and encryptions < ${key.limit}::bigint and ${onlyIf} ${newest}
    returning version
  )`;
}

/** What a write attempt returns when the data key it was given is at its limit (its write stored nothing). */
export const KEY_EXHAUSTED = Symbol('data key exhausted');

/**
 * Runs `attempt` — encrypt with the key it is given, then one write counted by `countEncryption` — with `first`.
 * While the key it used is at its limit (the attempt returns KEY_EXHAUSTED: its write stored nothing), adds the
 * next data-key version and runs it again with the workspace's newest key. With a realistic limit one retry is
 * enough; the bound only matters when a tiny limit is used up by concurrent writers between a renewal and a retry.
 */
export async function withinDataKeyLimit<T>(
  svc: Pick<Services, 'db' | 'keys'>,
  workspaceId: string,
  first: ActiveDataKey,
  attempt: (key: ActiveDataKey) => Promise<T | typeof KEY_EXHAUSTED>,
): Promise<T> {
  const maxAttempts = 8;
  let key = first;
  for (let n = 1; ; n++) {
    const result = await attempt(key);
    if (result !== KEY_EXHAUSTED) return result;
    if (n >= maxAttempts) {
      throw new Error(
        `The workspace's data keys reached their encryption limit ${n} times during one write; try again.`,
      );
    }
    key = await renewExhaustedDataKey(svc, workspaceId, key.version);
  }
}

/**
 * Adds data-key version `exhausted + 1` unless it exists already (another writer or server renewed it first:
 * then nothing is added and nothing fails), and returns the workspace's newest key.
 */
async function renewExhaustedDataKey(
  svc: Pick<Services, 'db' | 'keys'>,
  workspaceId: string,
  exhausted: number,
): Promise<ActiveDataKey> {
  await addDataKeyVersion(svc.db, svc.keys.provider, workspaceId, { after: exhausted });
  return svc.keys.active(svc.db, workspaceId);
}
