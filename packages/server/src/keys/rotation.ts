/**
 * Key rotation (DESIGN.md §5, docs/operations.md "Key rotation"):
 *
 * - master-key rotation re-wraps every workspace data key with the active master key, one workspace per short
 *   transaction, so a row is always wrapped either by the old key or by the new one: a run killed at any point
 *   is finished by running it again, and a server that holds both keys serves throughout;
 * - data-key rotation adds a new data-key version to a workspace (new secrets use the highest version) and
 *   re-encrypts the workspace's older secrets in small batches, each batch one transaction, resumable;
 * - the envelope upgrade re-encrypts envelopes written before public fields were bound (format 1) in the
 *   current format, binding the public fields stored at that moment (crypto/envelope.ts): at every start-up,
 *   and by `latchkey keys upgrade-envelopes`;
 * - a data key that reaches its encryption limit is followed by a new version at once, by the write that found
 *   it exhausted (`withinDataKeyLimit`, keys/key-usage.ts).
 *
 * Nothing here logs or returns key material or secret values.
 */
import { type Kysely, sql } from 'kysely';
import {
  DataKeyUnwrapError,
  DecryptionError,
  decryptSecretFields,
  ENVELOPE_FORMAT_VERSION,
  encryptSecretFields,
  type KeyProvider,
  UnknownMasterKeyError,
} from '../crypto/index.js';
import type { Database } from '../db/schema.js';
import { withDbScope } from '../db/scope.js';
import { reserveEncryptions } from './encryption-blocks.js';
import { DEFAULT_DATA_KEY_MAX_ENCRYPTIONS, encryptionCount } from './key-usage.js';
import { addDataKeyVersion, KeyRotationError, type WorkspaceKeys } from './workspace-keys.js';

async function hasKeyTables(db: Kysely<Database>): Promise<boolean> {
  const exists = await sql<{
    table: string | null;
  }>`select to_regclass('workspace_keys')::text as table`.execute(db);
  return Boolean(exists.rows[0]?.table);
}

async function requireKeyTables(db: Kysely<Database>): Promise<void> {
  if (!(await hasKeyTables(db))) {
    throw new KeyRotationError(
      'The database has no Latchkey tables yet: start the server once (or run `pnpm migrate`) first.',
    );
  }
}

/** Master key ids that stored data keys are wrapped with and that `provider` does not hold. */
async function unknownMasterKeyIds(db: Kysely<Database>, provider: KeyProvider): Promise<string[]> {
  const rows = await db.selectFrom('workspace_keys').select('master_key_id').distinct().execute();
  return rows
    .map((r) => r.master_key_id)
    .filter((id) => !provider.knows(id))
    .sort();
}

function reasonOf(error: unknown): string {
  // Our own errors (UnknownMasterKeyError, DataKeyUnwrapError, DecryptionError) never carry key material;
  // anything else is named by its class only.
  if (
    error instanceof Error &&
    ['UnknownMasterKeyError', 'DataKeyUnwrapError', 'DecryptionError', 'KeyRotationError'].includes(
      error.name,
    )
  ) {
    return error.message;
  }
  return `unexpected ${error instanceof Error ? error.name : typeof error}`;
}

// ---------------------------------------------------------------------------------------------------------
// Status

export interface MasterKeyUsage {
  id: string;
  /** 'active': new data keys are wrapped with it; 'previous': loaded for unwrapping only; 'missing': not loaded. */
  loaded: 'active' | 'previous' | 'missing';
  workspaces: number;
  dataKeys: number;
}

export interface KeyStatus {
  activeKeyId: string;
  workspaces: number;
  dataKeys: number;
  /** Every master key id in use by stored data keys, and every loaded one. */
  masterKeys: MasterKeyUsage[];
  secrets: number;
  /** Secrets encrypted with a data-key version older than their workspace's newest. */
  secretsOnOlderDataKeys: number;
  /** Secrets whose envelope does not bind their public fields yet (format 1): the upgrade rewrites them. */
  unboundEnvelopes: number;
  /** Workspaces with more than one data-key version. */
  workspacesWithSeveralDataKeys: number;
  /**
   * The active (highest-version) data key with the most encryptions, over all workspaces: it is the one
   * closest to the encryption limit (null without any data key).
   */
  mostUsedActiveDataKey: { workspaceId: string; version: number; encryptions: number } | null;
}

export async function keyStatus(
  db: Kysely<Database>,
  provider: KeyProvider & { keyIds?: string[] },
): Promise<KeyStatus> {
  await requireKeyTables(db);
  const usage = await db
    .selectFrom('workspace_keys')
    .select((eb) => [
      'master_key_id',
      eb.fn.count<string>('workspace_id').distinct().as('workspaces'),
      eb.fn.countAll<string>().as('data_keys'),
    ])
    .groupBy('master_key_id')
    .execute();
  const totals = await db
    .selectFrom('workspace_keys')
    .select((eb) => [
      eb.fn.count<string>('workspace_id').distinct().as('workspaces'),
      eb.fn.countAll<string>().as('data_keys'),
    ])
    .executeTakeFirstOrThrow();
  const secrets = await sql<{ total: string; older: string; unbound: string }>`
    select count(*)::text as total,
           count(*) filter (where s.key_version < latest.version)::text as older,
           count(*) filter (where ${unboundEnvelope('s')})::text as unbound
    from secrets s
    join (select workspace_id, max(version) as version from workspace_keys group by workspace_id) latest
      on latest.workspace_id = s.workspace_id`.execute(db);
  const several = await sql<{ n: string }>`
    select count(*)::text as n from (
      select workspace_id from workspace_keys group by workspace_id having count(*) > 1
    ) w`.execute(db);
  const mostUsed = await sql<{ workspace_id: string; version: number; encryptions: string | number }>`
    select k.workspace_id, k.version, k.encryptions from workspace_keys k
    join (select workspace_id, max(version) as version from workspace_keys group by workspace_id) latest
      on latest.workspace_id = k.workspace_id and latest.version = k.version
    order by k.encryptions desc, k.workspace_id
    limit 1`.execute(db);
  const top = mostUsed.rows[0];

  const ids = new Set<string>([
    provider.activeKeyId,
    ...(provider.keyIds ?? []),
    ...usage.map((u) => u.master_key_id),
  ]);
  const masterKeys: MasterKeyUsage[] = [...ids].map((id) => {
    const row = usage.find((u) => u.master_key_id === id);
    return {
      id,
      loaded: id === provider.activeKeyId ? 'active' : provider.knows(id) ? 'previous' : 'missing',
      workspaces: Number(row?.workspaces ?? 0),
      dataKeys: Number(row?.data_keys ?? 0),
    };
  });
  const order = { active: 0, previous: 1, missing: 2 };
  masterKeys.sort((a, b) => order[a.loaded] - order[b.loaded] || a.id.localeCompare(b.id));
  return {
    activeKeyId: provider.activeKeyId,
    workspaces: Number(totals.workspaces),
    dataKeys: Number(totals.data_keys),
    masterKeys,
    secrets: Number(secrets.rows[0]?.total ?? 0),
    secretsOnOlderDataKeys: Number(secrets.rows[0]?.older ?? 0),
    unboundEnvelopes: Number(secrets.rows[0]?.unbound ?? 0),
    workspacesWithSeveralDataKeys: Number(several.rows[0]?.n ?? 0),
    mostUsedActiveDataKey: top
      ? { workspaceId: top.workspace_id, version: top.version, encryptions: encryptionCount(top.encryptions) }
      : null,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Master-key rotation: re-wrap every data key with the active master key

export interface RewrapProgress {
  /** Workspaces handled so far in this run, and how many needed re-wrapping when the run started. */
  done: number;
  total: number;
  workspaceId: string;
  outcome: 'rewrapped' | 'current' | 'failed';
  /** Data keys (versions) re-wrapped in this workspace. */
  dataKeys: number;
  reason?: string;
}

export interface RewrapReport {
  activeKeyId: string;
  /** Workspaces with data keys when the run started. */
  workspaces: number;
  /** Workspaces whose data keys this run re-wrapped, and how many data keys that was. */
  rewrapped: number;
  dataKeysRewrapped: number;
  /** Workspaces that needed nothing (already wrapped with the active key, or finished by another run). */
  alreadyCurrent: number;
  failed: { workspaceId: string; reason: string }[];
  /** Master key ids still in use after the run (only the active one once every workspace succeeded). */
  masterKeyIdsInUse: string[];
}

export interface RewrapOptions {
  onProgress?: (progress: RewrapProgress) => void;
  /** Workspaces read per page (each workspace is still its own transaction). */
  pageSize?: number;
  /** Test hook: called after each workspace's transaction committed (a throw stops the run there, like a kill). */
  afterWorkspace?: (workspaceId: string) => void | Promise<void>;
}

/**
 * Re-wraps every workspace data key that is not wrapped with `provider.activeKeyId`. Refuses to start (writing
 * nothing) while some data key is wrapped with a master key the provider does not hold.
 */
export async function rewrapDataKeys(
  db: Kysely<Database>,
  provider: KeyProvider,
  options: RewrapOptions = {},
): Promise<RewrapReport> {
  await requireKeyTables(db);
  const active = provider.activeKeyId;
  const unknown = await unknownMasterKeyIds(db, provider);
  if (unknown.length) {
    throw new KeyRotationError(
      `Data keys are wrapped with master key ${unknown.join(', ')}, which is not loaded (active: ${active}). ` +
        'Put the old key in LATCHKEY_PREVIOUS_MASTER_KEYS and run the command again. Nothing was changed.',
    );
  }
  const counts = await db
    .selectFrom('workspace_keys')
    .select((eb) => [
      eb.fn.count<string>('workspace_id').distinct().as('all'),
      sql<string>`count(distinct workspace_id) filter (where master_key_id <> ${active})`.as('stale'),
    ])
    .executeTakeFirstOrThrow();
  const report: RewrapReport = {
    activeKeyId: active,
    workspaces: Number(counts.all),
    rewrapped: 0,
    dataKeysRewrapped: 0,
    alreadyCurrent: Number(counts.all) - Number(counts.stale),
    failed: [],
    masterKeyIdsInUse: [],
  };
  const total = Number(counts.stale);
  const pageSize = options.pageSize ?? 100;
  let done = 0;
  let cursor = '';
  for (;;) {
    const page = await db
      .selectFrom('workspace_keys')
      .select('workspace_id')
      .distinct()
      .where('master_key_id', '<>', active)
      .where('workspace_id', '>', cursor)
      .orderBy('workspace_id')
      .limit(pageSize)
      .execute();
    if (page.length === 0) break;
    for (const { workspace_id: workspaceId } of page) {
      cursor = workspaceId;
      let outcome: RewrapProgress['outcome'];
      let dataKeys = 0;
      let reason: string | undefined;
      try {
        dataKeys = await rewrapWorkspace(db, provider, workspaceId);
        outcome = dataKeys > 0 ? 'rewrapped' : 'current';
      } catch (error) {
        outcome = 'failed';
        reason = reasonOf(error);
      }
      done += 1;
      if (outcome === 'rewrapped') {
        report.rewrapped += 1;
        report.dataKeysRewrapped += dataKeys;
      } else if (outcome === 'current') report.alreadyCurrent += 1;
      else report.failed.push({ workspaceId, reason: reason as string });
      options.onProgress?.({
        done,
        total: Math.max(total, done),
        workspaceId,
        outcome,
        dataKeys,
        ...(reason ? { reason } : {}),
      });
      await options.afterWorkspace?.(workspaceId);
    }
  }
  const inUse = await db.selectFrom('workspace_keys').select('master_key_id').distinct().execute();
  report.masterKeyIdsInUse = inUse.map((r) => r.master_key_id).sort();
  return report;
}

/** Re-wraps one workspace's stale data keys in one short transaction; returns how many it re-wrapped. */
async function rewrapWorkspace(db: Kysely<Database>, provider: KeyProvider, workspaceId: string) {
  return db.transaction().execute(async (trx) => {
    const rows = await trx
      .selectFrom('workspace_keys')
      .select(['version', 'master_key_id', 'wrapped_key'])
      .where('workspace_id', '=', workspaceId)
      .where('master_key_id', '<>', provider.activeKeyId)
      .orderBy('version')
      .forUpdate()
      .execute();
    for (const row of rows) {
      const dataKey = await provider.unwrapDataKey(
        row.master_key_id,
        Buffer.from(row.wrapped_key),
        workspaceId,
      );
      const raw = dataKey.export();
      let rewrapped: { keyId: string; wrapped: Buffer };
      try {
        rewrapped = await provider.wrapDataKey(raw, workspaceId);
      } finally {
        raw.fill(0);
      }
      await trx
        .updateTable('workspace_keys')
        .set({ master_key_id: rewrapped.keyId, wrapped_key: rewrapped.wrapped })
        .where('workspace_id', '=', workspaceId)
        .where('version', '=', row.version)
        .where('master_key_id', '=', row.master_key_id)
        .execute();
    }
    return rows.length;
  });
}

// ---------------------------------------------------------------------------------------------------------
// Data-key rotation (adding a version: `addDataKeyVersion`, keys/workspace-keys.ts)

export interface ReencryptReport {
  workspaceId: string;
  /**
   * The newest data-key version, which the secrets were re-encrypted with (the last one, if the run filled a
   * version up to the encryption limit and went on with the next).
   */
  version: number;
  reencrypted: number;
  /** How many of those were format-1 envelopes, now bound to their public fields. */
  upgraded: number;
  failed: { secretId: string; reason: string }[];
}

export interface ReencryptOptions {
  batchSize?: number;
  /** Encryptions allowed per data key (`Services.dataKeyMaxEncryptions`); default 2^30 (keys/key-usage.ts). */
  maxEncryptions?: number;
  onBatch?: (progress: { workspaceId: string; reencrypted: number }) => void;
  /** Test hook: called after each batch's transaction committed. */
  afterBatch?: () => void | Promise<void>;
}

/**
 * Re-encrypts every secret of a workspace that is not in the current form — encrypted with an older data-key
 * version, or in an envelope that does not bind its public fields (format 1) — with the newest version, in the
 * current format. A format-1 envelope is bound to the public fields stored at that moment: this is the one
 * place that reads format 1 (docs/security.md "Encryption"); a format-2 envelope whose public fields were
 * rewritten does not decrypt, so it is reported as failed and left as it is, never re-bound.
 * Each batch is one transaction holding its secrets' rows (FOR UPDATE), so a replace running at the same time
 * is either seen (and its new value re-encrypted) or waits; a killed run leaves every secret readable under one
 * version or the other, and running again finishes the rest.
 *
 * Each re-encryption counts against the newest key's encryption limit. A batch first locks the newest key's row
 * (a writer's reservation of a block locks it in a statement of its own, holding no secret row, so this cannot
 * deadlock with a replace), takes no more secrets than the key has encryptions left, and reserves exactly one
 * count per secret it took (keys/encryption-blocks.ts), in its own transaction: the counts and the ciphertexts
 * commit together. A secret that fails to decrypt wastes its count, which is safe. A key at its limit is
 * followed by a new version (`addDataKeyVersion` with `after`) and the run goes on with that one.
 */
export async function reencryptSecrets(
  db: Kysely<Database>,
  keys: WorkspaceKeys,
  workspaceId: string,
  options: ReencryptOptions = {},
): Promise<ReencryptReport> {
  const batchSize = options.batchSize ?? 50;
  const limit = options.maxEncryptions ?? DEFAULT_DATA_KEY_MAX_ENCRYPTIONS;
  const report: ReencryptReport = { workspaceId, version: 0, reencrypted: 0, upgraded: 0, failed: [] };
  let cursor = '';
  for (;;) {
    const batch = await db.transaction().execute(async (trx) => {
      const latest = await trx
        .selectFrom('workspace_keys')
        .select(['version', 'master_key_id', 'wrapped_key', 'encryptions'])
        .where('workspace_id', '=', workspaceId)
        .orderBy('version', 'desc')
        .limit(1)
        .forNoKeyUpdate()
        .executeTakeFirst();
      if (!latest) return { handled: 0, reencrypted: 0, upgraded: 0, version: 0 };
      const left = limit - encryptionCount(latest.encryptions);
      if (left <= 0) {
        return { handled: 0, reencrypted: 0, upgraded: 0, version: latest.version, exhausted: true };
      }
      const rows = await trx
        .selectFrom('secrets as s')
        .innerJoin('workspace_keys as k', (join) =>
          join.onRef('k.workspace_id', '=', 's.workspace_id').onRef('k.version', '=', 's.key_version'),
        )
        .select([
          's.id',
          's.credential_type',
          's.public_fields',
          's.ciphertext',
          'k.version',
          'k.master_key_id',
          'k.wrapped_key',
        ])
        .where('s.workspace_id', '=', workspaceId)
        .where((eb) => eb.or([eb('s.key_version', '<', latest.version), unboundEnvelope('s')]))
        .where('s.id', '>', cursor)
        .orderBy('s.id')
        .limit(Math.min(batchSize, left))
        .forUpdate('s')
        .execute();
      if (rows.length === 0) return { handled: 0, reencrypted: 0, upgraded: 0, version: latest.version };
      // Under the lock above nothing else can count under this key, so all of them are reserved — unless another
      // rotation added a newer version meanwhile: then this batch stores nothing and the next one uses that.
      const key = { workspaceId, version: latest.version, limit };
      if ((await reserveEncryptions(trx, key, rows.length)) !== rows.length) {
        return { handled: 0, reencrypted: 0, upgraded: 0, version: latest.version, superseded: true };
      }
      const newKey = await keys.unwrap(workspaceId, latest);
      let reencrypted = 0;
      let upgraded = 0;
      for (const row of rows) {
        const binding = {
          workspaceId,
          secretId: row.id,
          credentialType: row.credential_type,
          publicFields: row.public_fields,
        };
        const envelope = Buffer.from(row.ciphertext);
        let fields: Record<string, string>;
        try {
          // A format-2 envelope must match the stored public fields; a format-1 one is bound to them now.
          fields = decryptSecretFields(await keys.unwrap(workspaceId, row), binding, envelope, {
            acceptUnbound: true,
          });
        } catch (error) {
          const expected =
            error instanceof DecryptionError ||
            error instanceof DataKeyUnwrapError ||
            error instanceof UnknownMasterKeyError;
          if (!expected) throw error;
          report.failed.push({ secretId: row.id, reason: reasonOf(error) });
          cursor = row.id;
          continue;
        }
        const ciphertext = encryptSecretFields(newKey, latest.version, binding, fields);
        for (const name of Object.keys(fields)) fields[name] = '';
        await trx
          .updateTable('secrets')
          .set({ ciphertext, key_version: latest.version })
          .where('id', '=', row.id)
          .where('workspace_id', '=', workspaceId)
          .execute();
        cursor = row.id;
        reencrypted += 1;
        if (envelope[0] !== ENVELOPE_FORMAT_VERSION) upgraded += 1;
      }
      return { handled: rows.length, reencrypted, upgraded, version: latest.version };
    });
    report.version = batch.version;
    if (batch.exhausted) {
      await addDataKeyVersion(db, keys.provider, workspaceId, { after: batch.version });
      continue;
    }
    if (batch.superseded) continue;
    if (batch.handled === 0) break;
    report.reencrypted += batch.reencrypted;
    report.upgraded += batch.upgraded;
    options.onBatch?.({ workspaceId, reencrypted: report.reencrypted });
    await options.afterBatch?.();
  }
  return report;
}

// ---------------------------------------------------------------------------------------------------------
// Envelope upgrade: bind the public fields of envelopes written before they were bound (format 1)

/** A secret's envelope is format 1 (its first byte; the partial index of migration 0007 covers this test). */
function unboundEnvelope(secrets: string) {
  return sql<boolean>`get_byte(${sql.ref(`${secrets}.ciphertext`)}, 0) = 1`;
}

export interface EnvelopeUpgradeReport {
  /** Workspaces that held format-1 envelopes when the run started. */
  workspaces: number;
  /** Envelopes rewritten in the current format, bound to their public fields. */
  upgraded: number;
  /** Secrets re-encrypted along the way because they were on an older data-key version. */
  reencrypted: number;
  failed: { workspaceId: string; secretId?: string; reason: string }[];
}

export interface EnvelopeUpgradeOptions {
  /** Encryptions allowed per data key (`Services.dataKeyMaxEncryptions`). */
  maxEncryptions?: number;
  /**
   * Run each workspace's batches in that workspace's row-level-security scope: for the application's connection
   * (the server at start-up). The operator commands run on the owner's connection, which the policies do not bind.
   */
  scopeEachWorkspace?: boolean;
  onWorkspace?: (result: ReencryptReport) => void;
}

/**
 * Rewrites every format-1 envelope in the current format, binding the public fields stored now (the trust-on-
 * upgrade moment: docs/security.md "Encryption"), workspace by workspace with `reencryptSecrets` (batches under
 * row locks, resumable). Which workspaces hold one comes from an owner-rights function (migration 0007), so the
 * application's role can run this at start-up; with none left that is one indexed read.
 */
export async function upgradeUnboundEnvelopes(
  db: Kysely<Database>,
  keys: WorkspaceKeys,
  options: EnvelopeUpgradeOptions = {},
): Promise<EnvelopeUpgradeReport> {
  const { rows } = await sql<{
    workspace_id: string;
  }>`select workspace_id from latchkey_unbound_envelope_workspaces() as w(workspace_id) order by 1`.execute(
    db,
  );
  const report: EnvelopeUpgradeReport = { workspaces: rows.length, upgraded: 0, reencrypted: 0, failed: [] };
  for (const { workspace_id: workspaceId } of rows) {
    const upgrade = () =>
      reencryptSecrets(db, keys, workspaceId, {
        ...(options.maxEncryptions === undefined ? {} : { maxEncryptions: options.maxEncryptions }),
      });
    try {
      const result = await (options.scopeEachWorkspace ? withDbScope({ workspaceId }, upgrade) : upgrade());
      report.upgraded += result.upgraded;
      report.reencrypted += result.reencrypted - result.upgraded;
      for (const failure of result.failed) report.failed.push({ workspaceId, ...failure });
      options.onWorkspace?.(result);
    } catch (error) {
      report.failed.push({ workspaceId, reason: reasonOf(error) });
    }
  }
  return report;
}

/** What an upgrade run did that an operator should read (ids and counts only, never a value). */
export function envelopeUpgradeWarnings(report: EnvelopeUpgradeReport): string[] {
  const messages: string[] = [];
  if (report.upgraded > 0) {
    messages.push(
      `Bound the public fields of ${report.upgraded} secret envelope(s) written in format 1 (docs/security.md ` +
        '"Encryption"). After the first start of this version none should be left: if this repeats, format-1 ' +
        'envelopes were written to the database since (an older server still running, or a restored copy).',
    );
  }
  for (const failure of report.failed) {
    messages.push(
      `Could not upgrade the envelope of ${failure.secretId ? `secret ${failure.secretId}` : 'the secrets'} in ` +
        `workspace ${failure.workspaceId}; it cannot be used until its value is replaced. ${failure.reason}`,
    );
  }
  return messages;
}

/** Every workspace id, in order. */
export async function allWorkspaceIds(db: Kysely<Database>): Promise<string[]> {
  const rows = await db.selectFrom('workspaces').select('id').orderBy('id').execute();
  return rows.map((r) => r.id);
}
