import type { KeyObject } from 'node:crypto';
import { type Kysely, sql, type Transaction } from 'kysely';
import { LRUCache } from 'lru-cache';
import { generateDataKey, type KeyProvider } from '../crypto/index.js';
import type { Database } from '../db/schema.js';

export interface ActiveDataKey {
  version: number;
  key: KeyObject;
}

/** Bounds of the in-memory caches of unwrapped data keys (each cache holds at most `max` entries). */
export interface DataKeyCacheLimits {
  max: number;
  /** Milliseconds an unwrapped key is kept after it was unwrapped (reading it does not extend this). */
  ttlMs: number;
  /** Tests: a clock to move past the TTL without waiting (production uses `performance.now()`). */
  clock?: { now: () => number };
}

/**
 * 10,000 entries is far more workspaces than one instance serves in an hour, so the hot path stays one KMS
 * round trip per key per hour, while memory stays bounded (a KeyObject and its cache key are well under 1 KB)
 * however many workspaces a long-running instance touches. The hour limits how long an unwrapped data key
 * stays in memory (it is unwrapped again after that, not kept alive by use).
 */
export const DEFAULT_DATA_KEY_CACHE_LIMITS: DataKeyCacheLimits = { max: 10_000, ttlMs: 60 * 60 * 1000 };

/**
 * Workspace data keys: one random AES-256 key per workspace (and per version), stored only wrapped by the
 * master key. Unwrapped keys are kept in memory as KeyObjects (a KMS round trip per secret would put the
 * KMS on every request's path), in LRU caches bounded in size and age (lru-cache, `DataKeyCacheLimits`);
 * secret plaintext itself is never cached.
 */
export class WorkspaceKeys {
  /**
   * Unwrapped keys by `workspace:version`, with the wrapping they were unwrapped from: `unwrap` of a different
   * wrapping (re-wrapped by master-key rotation, or altered) asks the provider again; `forVersion` needs none.
   */
  private readonly byVersion: LRUCache<string, { wrapping: string; key: KeyObject }>;
  /**
   * The newest data key this instance has seen per workspace, so a create can skip reading it. It may be stale
   * (another instance rotated): writes that use it count the encryption only while it is still the newest
   * version (`countEncryption`'s `newestOnly`), so a stale key stores nothing and is replaced (`withinDataKeyLimit`).
   */
  private readonly newest: LRUCache<string, ActiveDataKey>;

  /** The master-key provider (data-key rotation wraps new versions with it). */
  constructor(
    readonly provider: KeyProvider,
    limits: DataKeyCacheLimits = DEFAULT_DATA_KEY_CACHE_LIMITS,
  ) {
    const options = {
      max: limits.max,
      ttl: limits.ttlMs,
      // A given clock is read on every check (lru-cache otherwise reuses a reading for 1 ms of real time).
      ...(limits.clock ? { perf: limits.clock, ttlResolution: 0 } : {}),
    };
    this.byVersion = new LRUCache(options);
    this.newest = new LRUCache(options);
  }

  async createFirstKey(trx: Transaction<Database>, workspaceId: string): Promise<void> {
    const dataKey = generateDataKey();
    try {
      const { keyId, wrapped } = await this.provider.wrapDataKey(dataKey, workspaceId);
      await trx
        .insertInto('workspace_keys')
        .values({ workspace_id: workspaceId, version: 1, master_key_id: keyId, wrapped_key: wrapped })
        .execute();
    } finally {
      dataKey.fill(0);
    }
  }

  /** The key new secrets of a workspace are encrypted with: its highest version. */
  /** The newest data key this instance last saw for the workspace, if any (no database read). */
  lastActive(workspaceId: string): ActiveDataKey | undefined {
    return this.newest.get(workspaceId);
  }

  rememberActive(workspaceId: string, key: ActiveDataKey): void {
    const known = this.newest.get(workspaceId);
    if (!known || known.version <= key.version) this.newest.set(workspaceId, key);
  }

  async active(db: Kysely<Database>, workspaceId: string): Promise<ActiveDataKey> {
    const row = await db
      .selectFrom('workspace_keys')
      .select(['version', 'master_key_id', 'wrapped_key'])
      .where('workspace_id', '=', workspaceId)
      .orderBy('version', 'desc')
      .limit(1)
      .executeTakeFirstOrThrow();
    const active = { version: row.version, key: await this.unwrap(workspaceId, row) };
    this.rememberActive(workspaceId, active);
    return active;
  }

  /** Unwraps a stored data key (from a row read together with the secret, so resolving is one query). */
  async unwrap(
    workspaceId: string,
    row: { version: number; master_key_id: string; wrapped_key: Uint8Array },
  ): Promise<KeyObject> {
    const wrapped = Buffer.from(row.wrapped_key);
    const versionKey = `${workspaceId}:${row.version}`;
    const wrapping = `${row.master_key_id}:${wrapped.toString('base64')}`;
    const cached = this.byVersion.get(versionKey);
    if (cached?.wrapping === wrapping) return cached.key;
    const key = await this.provider.unwrapDataKey(row.master_key_id, wrapped, workspaceId);
    this.byVersion.set(versionKey, { wrapping, key });
    return key;
  }

  /**
   * The data key of one version of a workspace: from memory when this instance has unwrapped it already
   * (no database read), else read and unwrapped. A version's key material never changes — master-key
   * rotation re-wraps the same key, data-key rotation adds a version — so caching it by version is exact.
   */
  async forVersion(db: Kysely<Database>, workspaceId: string, version: number): Promise<KeyObject> {
    const cached = this.byVersion.get(`${workspaceId}:${version}`);
    if (cached) return cached.key;
    const row = await db
      .selectFrom('workspace_keys')
      .select(['version', 'master_key_id', 'wrapped_key'])
      .where('workspace_id', '=', workspaceId)
      .where('version', '=', version)
      .executeTakeFirstOrThrow();
    return this.unwrap(workspaceId, row);
  }

  /** Master key ids that stored data keys were wrapped with and that the provider does not hold. */
  async unknownMasterKeyIds(db: Kysely<Database>): Promise<string[]> {
    // A database that was never migrated has no keys to check yet. Once migrated, an owner-rights function
    // lists the key ids (row-level security hides other workspaces' keys from the application's role).
    const exists = await sql<{ table: string | null; fn: string | null }>`
      select to_regclass('workspace_keys')::text as table,
             to_regprocedure('latchkey_master_key_ids()')::text as fn`.execute(db);
    if (!exists.rows[0]?.table) return [];
    const rows = exists.rows[0].fn
      ? (await sql<{ master_key_id: string }>`select latchkey_master_key_ids() as master_key_id`.execute(db))
          .rows
      : await db.selectFrom('workspace_keys').select('master_key_id').distinct().execute();
    return rows.map((r) => r.master_key_id).filter((id) => !this.provider.knows(id));
  }
}
