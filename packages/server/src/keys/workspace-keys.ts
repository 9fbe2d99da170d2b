import type { KeyObject } from 'node:crypto';
import { type Kysely, sql, type Transaction } from 'kysely';
import { LRUCache } from 'lru-cache';
import { recordAudit } from '../audit/audit.js';
import { generateDataKey, type KeyProvider } from '../crypto/index.js';
import type { Database } from '../db/schema.js';
import { isUniqueViolation, NotFoundError } from '../errors.js';
import { DEFAULT_ENCRYPTION_BLOCK, EncryptionBlocks } from './encryption-blocks.js';

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
   * (another instance rotated): writes that use it store only while it is still the newest version
   * (`keyGuard`'s `newestOnly`), so a stale key stores nothing and is replaced (`withinDataKeyLimit`).
   */
  private readonly newest: LRUCache<string, ActiveDataKey>;
  /** Encryption counts this instance reserved per workspace key and has not used yet (keys/encryption-blocks.ts). */
  readonly encryptions: EncryptionBlocks;

  /**
   * The master-key provider (data-key rotation wraps new versions with it), the caches' bounds, and how many
   * encryption counts one reservation takes.
   */
  constructor(
    readonly provider: KeyProvider,
    limits: DataKeyCacheLimits = DEFAULT_DATA_KEY_CACHE_LIMITS,
    encryptionBlock = DEFAULT_ENCRYPTION_BLOCK,
  ) {
    this.encryptions = new EncryptionBlocks(encryptionBlock, limits.max);
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

  /** The newest data key this instance last saw for the workspace, if any (no database read). */
  lastActive(workspaceId: string): ActiveDataKey | undefined {
    return this.newest.get(workspaceId);
  }

  private rememberActive(workspaceId: string, key: ActiveDataKey): void {
    const known = this.newest.get(workspaceId);
    if (!known || known.version <= key.version) this.newest.set(workspaceId, key);
  }

  /** The key new secrets of a workspace are encrypted with: its highest version, read now. */
  async active(db: Kysely<Database>, workspaceId: string): Promise<ActiveDataKey> {
    const active = await this.readActive(db, workspaceId);
    if (!active) throw new Error('The workspace has no data key');
    return active;
  }

  /**
   * The key to encrypt a new secret with, from memory when this instance has seen the workspace's newest key
   * (no statement), else read. It may be stale (another instance rotated): a write that uses it stores only
   * while it is still the newest version (`keyGuard`'s `newestOnly`), else stores nothing
   * and is retried with the newest key (`withinDataKeyLimit`). A workspace whose keys the caller's scope does not
   * show (not a member) is "not found".
   */
  async newestForWrite(db: Kysely<Database>, workspaceId: string): Promise<ActiveDataKey> {
    const active = this.newest.get(workspaceId) ?? (await this.readActive(db, workspaceId));
    if (!active) throw new NotFoundError('Workspace');
    return active;
  }

  private async readActive(db: Kysely<Database>, workspaceId: string): Promise<ActiveDataKey | undefined> {
    const row = await db
      .selectFrom('workspace_keys')
      .select(['version', 'master_key_id', 'wrapped_key'])
      .where('workspace_id', '=', workspaceId)
      .orderBy('version', 'desc')
      .limit(1)
      .executeTakeFirst();
    if (!row) return undefined;
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

/** A rotation cannot start: the message says what to do (it never contains key material). */
export class KeyRotationError extends Error {
  override name = 'KeyRotationError';
}

export interface AddDataKeyVersionOptions {
  /**
   * Renew this exhausted version (keys/key-usage.ts): add exactly version `after + 1`, unless it exists already —
   * then another writer or server renewed it first, and this call adds nothing (`created: false`) and does not
   * fail. Without it, a new highest version is always added (operator rotation).
   */
  after?: number;
}

/**
 * Adds a new data-key version to a workspace, wrapped with the active master key; from then on new and
 * replaced secrets are encrypted with it (`WorkspaceKeys.active` picks the highest version). Writes one
 * `workspace.data_key_rotated` audit event in the same transaction (with `reason: 'encryption-limit'` when it
 * renews an exhausted key).
 */
export async function addDataKeyVersion(
  db: Kysely<Database>,
  provider: KeyProvider,
  workspaceId: string,
  options: AddDataKeyVersionOptions = {},
): Promise<{ version: number; created: boolean }> {
  const { after } = options;
  for (let attempt = 0; ; attempt++) {
    try {
      return await db.transaction().execute(async (trx) => {
        // FOR NO KEY UPDATE serialises rotations of one workspace without blocking secret inserts.
        const workspace = await trx
          .selectFrom('workspaces')
          .select('id')
          .where('id', '=', workspaceId)
          .forNoKeyUpdate()
          .executeTakeFirst();
        if (!workspace) throw new KeyRotationError(`There is no workspace ${workspaceId}.`);
        let version: number;
        if (after === undefined) {
          const latest = await trx
            .selectFrom('workspace_keys')
            .select((eb) => eb.fn.max('version').as('version'))
            .where('workspace_id', '=', workspaceId)
            .executeTakeFirst();
          version = Number(latest?.version ?? 0) + 1;
        } else {
          version = after + 1;
          // Renewed already (the usual case for all but the first of many writers): no key to wrap.
          const exists = await trx
            .selectFrom('workspace_keys')
            .select('version')
            .where('workspace_id', '=', workspaceId)
            .where('version', '=', version)
            .executeTakeFirst();
          if (exists) return { version, created: false };
        }
        const dataKey = generateDataKey();
        try {
          const { keyId, wrapped } = await provider.wrapDataKey(dataKey, workspaceId);
          const insert = trx
            .insertInto('workspace_keys')
            .values({ workspace_id: workspaceId, version, master_key_id: keyId, wrapped_key: wrapped });
          if (after === undefined) await insert.execute();
          else {
            // The primary key (workspace_id, version) is the arbiter between renewals of the same version.
            const inserted = await insert
              .onConflict((oc) => oc.columns(['workspace_id', 'version']).doNothing())
              .returning('version')
              .executeTakeFirst();
            if (!inserted) return { version, created: false };
          }
          await recordAudit(trx, {
            workspaceId,
            actorId: null,
            action: 'workspace.data_key_rotated',
            targetType: 'workspace',
            targetId: workspaceId,
            details:
              after === undefined
                ? { version, masterKeyId: keyId }
                : { version, masterKeyId: keyId, reason: 'encryption-limit' },
          });
        } finally {
          dataKey.fill(0);
        }
        return { version, created: true };
      });
    } catch (error) {
      if (isUniqueViolation(error) && after === undefined && attempt < 3) continue;
      throw error;
    }
  }
}
