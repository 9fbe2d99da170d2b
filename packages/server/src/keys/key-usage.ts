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
 * Counts are reserved in the database BEFORE they are used, a block at a time per instance, as database
 * sequences cache values (issue 15 §4; keys/encryption-blocks.ts): one statement adds min(block, limit −
 * encryptions) to a key's `encryptions` while it is below the limit, and the instance hands those counts out
 * from memory, so a write does not update the key's row. The stored count is therefore always at least the
 * number of ciphertexts made under the key and never above the limit, across any number of instances; what an
 * instance reserved and did not use when it stops or crashes (at most one block per key) is wasted, never
 * reused. A key with no count left (the reservation updates no row) is followed by the next data-key version
 * (at most one per exhausted version, whatever the number of writers: the primary key (workspace_id, version)
 * decides), and the value is encrypted again with it (`withinDataKeyLimit`, below). So no key ever encrypts
 * more often than the limit.
 */
import { type RawBuilder, sql } from 'kysely';
import { DomainError } from '../errors.js';
import type { Services } from '../services.js';
import { newestKeyVersion } from './encryption-blocks.js';
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

/** The data key a write stores under (`keyGuard`). */
export interface WriteKey {
  workspaceId: string;
  version: number;
  /** The key came from memory (`WorkspaceKeys.newestForWrite`) and may have been superseded: see `keyGuard`. */
  newestOnly?: boolean;
}

/**
 * A CTE `<name>` returning the key's version (one row) when the write may store under it — `onlyIf`, a SQL
 * condition, holds and, with `newestOnly`, the key is still its workspace's newest version — and no row
 * otherwise; the write selects from it, so it stores nothing then and is retried with the newest key. Its
 * encryption was counted before (`withinDataKeyLimit`), so it does not touch the key's row.
 *
 * Why the newest check is in every write's statement and not only in the reservation of a block: a block
 * outlives the rotation that supersedes its key (another instance's `keys rotate-data-keys`, or a renewal), so a
 * check at reservation time alone would let up to a block of later writes store under the old key. The check
 * here is an indexed read of max(version), no row update. It reads the statement's snapshot (READ COMMITTED),
 * exactly as the counting UPDATE did before blocks: a write whose statement started before a rotation's new
 * version committed may still store under the old version; if it commits after the rotation's re-encryption
 * passed it, that secret stays readable (old versions are kept), `keys status` counts it among the secrets on
 * older data keys, and `latchkey keys rotate-data-keys --since <time of the run>` re-encrypts it. The limit
 * does not depend on this check: the encryption was counted either way.
 */
export function keyGuard(
  name: string,
  key: WriteKey,
  onlyIf: RawBuilder<unknown> = sql`true`,
): RawBuilder<unknown> {
  const newest = key.newestOnly
    ? sql`and ${key.version}::integer = ${newestKeyVersion(key.workspaceId)}`
    : sql``;
  return sql`${sql.id(name)} as (select ${key.version}::integer as version where ${onlyIf} ${newest})`;
}

/** What a write attempt returns when its key may not be used (`keyGuard` returned no row: it stored nothing). */
export const KEY_EXHAUSTED = Symbol('data key exhausted');

/**
 * Runs `attempt` — encrypt with the key it is given, then one write guarded by `keyGuard` — with `first`, after
 * taking one encryption count of that key (from this instance's block, or a block reserved now). While the key
 * has no count left, or the attempt returns KEY_EXHAUSTED (its write stored nothing: the key was superseded),
 * adds the next data-key version unless it exists and runs it again with the workspace's newest key. With a
 * realistic limit one retry is enough; the bound only matters when a tiny limit is used up by concurrent writers
 * between a renewal and a retry. A count whose write certainly stored nothing (the attempt refused it: a
 * domain error, or KEY_EXHAUSTED) goes back to the block; after any other failure it is wasted, which is safe.
 */
export async function withinDataKeyLimit<T>(
  svc: Pick<Services, 'db' | 'keys' | 'dataKeyMaxEncryptions'>,
  workspaceId: string,
  first: ActiveDataKey,
  attempt: (key: ActiveDataKey) => Promise<T | typeof KEY_EXHAUSTED>,
): Promise<T> {
  const maxAttempts = 8;
  let key = first;
  for (let n = 1; ; n++) {
    const limited = { workspaceId, version: key.version, limit: svc.dataKeyMaxEncryptions };
    const taken = await svc.keys.encryptions.take(svc.db, limited);
    if (taken) {
      let result: T | typeof KEY_EXHAUSTED;
      try {
        result = await attempt(key);
      } catch (error) {
        if (error instanceof DomainError) taken.giveBack();
        throw error;
      }
      if (result !== KEY_EXHAUSTED) return result;
      taken.giveBack();
    }
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
