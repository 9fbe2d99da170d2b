/**
 * Encryption counts reserved in blocks per instance (issue 15 §4; the limit itself: keys/key-usage.ts).
 *
 * Like a database sequence's cache, each instance reserves counts of a data key in the database a block at a
 * time and hands them out from memory, so a write does not update the key's row. A block is reserved BEFORE
 * any of its counts is used, by one statement capped by what is left below the limit: the stored
 * `encryptions` is always at least the number of ciphertexts made under the key, and never above the limit.
 * An instance that stops (or crashes, or drops a block) loses at most the unused rest of one block per key.
 */
import { type Kysely, type RawBuilder, sql } from 'kysely';
import { LRUCache } from 'lru-cache';
import type { Database } from '../db/schema.js';

/**
 * 1,000 counts per block: one reservation per thousand writes of a workspace, and what an instance can waste
 * (a block per key when it stops) is negligible against a limit of 2^30 (a million stops per key).
 */
export const DEFAULT_ENCRYPTION_BLOCK = 1000;

/** A data key to count against: which one, and its limit (`Services.dataKeyMaxEncryptions`). */
export interface LimitedKey {
  workspaceId: string;
  version: number;
  limit: number;
}

/**
 * The workspace's newest data-key version, as a subquery: a key may take counts (`reserveEncryptions`) and
 * guard a write (`keyGuard`'s `newestOnly`) only while its version equals it. An indexed read, no lock.
 */
export function newestKeyVersion(workspaceId: string): RawBuilder<number> {
  return sql<number>`(select max(n.version) from workspace_keys n where n.workspace_id = ${workspaceId})`;
}

/**
 * Reserves up to `wanted` encryptions under the key in ONE statement, capped by what is left below its limit,
 * and only while the key is its workspace's newest version (a superseded key gets no more counts). Returns how
 * many were reserved: 0 when the key is at its limit (or superseded, or not visible in the caller's scope).
 *
 * `cur` locks the key's row (FOR NO KEY UPDATE): a concurrent reservation waits, and under READ COMMITTED the
 * locked row is re-read and `encryptions < limit` re-checked on its newest version, so `before` is the value
 * this update starts from and `after - before` is exactly what it added — never past the limit.
 */
export async function reserveEncryptions(
  db: Kysely<Database>,
  key: LimitedKey,
  wanted: number,
): Promise<number> {
  const { workspaceId, version, limit } = key;
  const { rows } = await sql<{ before: string | number | bigint; after: string | number | bigint }>`
    with cur as (
      select encryptions from workspace_keys
      where workspace_id = ${workspaceId} and version = ${version}::integer and encryptions < ${limit}::bigint
        and version = ${newestKeyVersion(workspaceId)}
      for no key update
    ),
    reserved as (
      update workspace_keys k set encryptions = cur.encryptions + least(${wanted}::bigint, ${limit}::bigint - cur.encryptions)
      from cur
      where k.workspace_id = ${workspaceId} and k.version = ${version}::integer
      returning k.encryptions
    )
    select cur.encryptions as before, reserved.encryptions as after from cur, reserved`.execute(db);
  const row = rows[0];
  // pg returns bigint as a string, PGlite as a number (or bigint): both convert exactly below 2^53.
  return row ? Number(row.after) - Number(row.before) : 0;
}

/** Counts of one data key this instance has reserved and not used yet. */
interface Block {
  version: number;
  left: number;
}

/** One count taken from a block; `giveBack` when the write that took it stored nothing. */
export interface TakenEncryption {
  giveBack(): void;
}

/**
 * The blocks of one instance (one per workspace: its newest key's), bounded like the key caches: a block
 * evicted from memory is a block wasted, which is safe.
 */
export class EncryptionBlocks {
  private readonly blocks: LRUCache<string, Block>;
  /** Reservations under way, by `workspace:version`: concurrent writers of one key share one. */
  private readonly reserving = new Map<string, Promise<number>>();

  constructor(
    readonly blockSize: number = DEFAULT_ENCRYPTION_BLOCK,
    maxWorkspaces = 10_000,
  ) {
    if (!Number.isInteger(blockSize) || blockSize < 1) {
      throw new Error('The encryption block size must be a whole number of at least 1');
    }
    this.blocks = new LRUCache({ max: maxWorkspaces });
  }

  /**
   * Takes one count of the key: from memory when this instance has one left, else from a new block reserved
   * now (shared by the writers waiting for it). `undefined`: the key is at its limit, or no longer the newest
   * version — the caller renews or re-reads the key (`withinDataKeyLimit`).
   */
  async take(db: Kysely<Database>, key: LimitedKey): Promise<TakenEncryption | undefined> {
    for (;;) {
      const block = this.blocks.get(key.workspaceId);
      if (block && block.version === key.version && block.left > 0) {
        block.left -= 1;
        return {
          giveBack: () => {
            block.left += 1;
          },
        };
      }
      // This instance reserved a newer version already: the key is superseded (a reservation would say so too).
      if (block && block.version > key.version) return undefined;
      if ((await this.reserve(db, key)) === 0) return undefined;
      // Loop: the writers that shared the reservation take from the new block; once it is empty, reserve again.
    }
  }

  private reserve(db: Kysely<Database>, key: LimitedKey): Promise<number> {
    const id = `${key.workspaceId}:${key.version}`;
    let pending = this.reserving.get(id);
    if (!pending) {
      pending = reserveEncryptions(db, key, this.blockSize)
        .then((reserved) => {
          if (reserved > 0) this.blocks.set(key.workspaceId, { version: key.version, left: reserved });
          return reserved;
        })
        .finally(() => this.reserving.delete(id));
      this.reserving.set(id, pending);
    }
    return pending;
  }

  /** Counts of the workspace's key this instance holds unused (tests and the bench). */
  unused(workspaceId: string): { version: number; left: number } | undefined {
    const block = this.blocks.peek(workspaceId);
    return block ? { ...block } : undefined;
  }
}
