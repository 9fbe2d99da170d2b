/**
 * `latchkey` operator commands (docs/operations.md): key status, master-key rotation, data-key rotation, the
 * envelope upgrade; and `import n8n` (cli/import.ts, docs/import.md), which opens the database the way the server
 * starts (the application's role, row-level security, migrations when the owner's connection is configured).
 *
 * They open the database and the master keys exactly as the server does (DATABASE_URL / LATCHKEY_DATA_DIR,
 * LATCHKEY_MASTER_KEY[_FILE], LATCHKEY_PREVIOUS_MASTER_KEYS), never generate a key, and never print key material
 * or secret values; the `keys` commands never migrate.
 */
import { existsSync } from 'node:fs';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { plural } from '@latchkey/core/words';
import { sql } from 'kysely';
import { StartupError } from '../app.js';
import { type Config, ConfigError, readConfig } from '../config.js';
import { LocalKeyProvider, loadMasterKeys, MasterKeyError } from '../crypto/index.js';
import { type DatabaseHandle, databaseTarget, openDatabase } from '../db/connect.js';
import { DATA_KEY_LIMIT_VARIABLE } from '../keys/key-usage.js';
import {
  allWorkspaceIds,
  keyStatus,
  reencryptSecrets,
  rewrapDataKeys,
  upgradeUnboundEnvelopes,
} from '../keys/rotation.js';
import { addDataKeyVersion, KeyRotationError, WorkspaceKeys } from '../keys/workspace-keys.js';
import { IMPORT_USAGE, ImportRefused, ImportUsageError, importCommand } from './import.js';

export interface CliIo {
  env: NodeJS.ProcessEnv;
  out(line: string): void;
  err(line: string): void;
  /** An open database to use instead of the one the environment names (tests). Not closed by the CLI. */
  database?: DatabaseHandle;
  /** Master keys to use instead of the environment's (tests). */
  keyProvider?: LocalKeyProvider;
}

export const USAGE = `Usage: latchkey <command>

Commands:
  keys status
      Which master key ids the stored data keys are wrapped with (and how many), which are loaded, and how
      many secrets are still encrypted with an older data-key version, and the most encryptions any active
      data key has made, against the limit (LATCHKEY_DATA_KEY_MAX_ENCRYPTIONS) at which it is replaced.
  keys rotate
      Re-wraps every workspace data key with the active master key (LATCHKEY_MASTER_KEY), reading the old
      one from LATCHKEY_PREVIOUS_MASTER_KEYS. Online, one workspace per short transaction; safe to interrupt
      and to run again. Ends with a report; exits 1 if any workspace failed.
  keys rotate-data-keys [--workspace ID] [--since TIME]
      Gives every workspace (or one) a new data-key version, which new secrets use, and re-encrypts the
      existing secrets with it in small batches. --since TIME (ISO 8601, printed at the start of every run)
      resumes an interrupted run: workspaces that already got a data key at or after TIME are not given
      another one, and the remaining secrets are re-encrypted.
  keys upgrade-envelopes
      Rewrites every secret envelope that does not bind its public fields yet (format 1) in the current
      format, binding the public fields stored now; the server does the same at every start. Safe to
      interrupt and to run again. Exits 1 if any envelope could not be upgraded.

${IMPORT_USAGE}

Environment: DATABASE_URL (or LATCHKEY_DATA_DIR for the embedded store), LATCHKEY_DATABASE_SCHEMA,
LATCHKEY_MASTER_KEY or LATCHKEY_MASTER_KEY_FILE, LATCHKEY_PREVIOUS_MASTER_KEYS, LATCHKEY_KEY_DIR,
LATCHKEY_DATA_KEY_MAX_ENCRYPTIONS.
The embedded store (PGlite) can be opened by one process at a time: stop the server first.`;

class UsageError extends Error {}

/** The flags `keys rotate-data-keys` takes; the other commands take none. */
const ROTATE_DATA_KEYS_FLAGS = {
  workspace: { type: 'string' },
  since: { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

type RotateDataKeysFlags = { workspace?: string; since?: string };

/** Node's parser refuses unknown flags, stray arguments and a flag without its value, naming the flag. */
function parseFlags(args: string[], options: ParseArgsConfig['options']): Record<string, string> {
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({ args, options, strict: true, allowPositionals: false }));
  } catch (error) {
    // Bounded: a stray argument is echoed back, and it may be something pasted by mistake.
    throw new UsageError(error instanceof Error ? error.message.slice(0, 300) : String(error));
  }
  const flags: Record<string, string> = {};
  for (const [name, value] of Object.entries(values)) {
    if (value === '') throw new UsageError(`--${name} needs a value`);
    flags[name] = String(value);
  }
  return flags;
}

/** The connection key maintenance runs on: the owner's (row-level security would hide other workspaces). */
const maintenance = (database: DatabaseHandle) => database.owner ?? database.db;

/** `used` as a percentage of `limit`, readable at both ends (a count of 1 against 2^30 is not "0%"). */
function share(used: number, limit: number): string {
  const percent = (100 * used) / limit;
  if (used === 0) return '0%';
  if (percent < 0.01) return '<0.01%';
  return `${percent >= 10 ? percent.toFixed(1) : percent.toFixed(2)}%`;
}

/** The master keys the environment names (never generated: a command must not invent the server's key). */
function keyProviderFromEnv(config: Config, io: CliIo): LocalKeyProvider {
  const embedded = !config.databaseUrl;
  return new LocalKeyProvider(
    loadMasterKeys({
      env: config.masterKeyVariables,
      embedded,
      keyDir: config.keyDir,
      dataDir: embedded ? config.dataDir : undefined,
      generate: false,
      warn: (message) => io.err(`warning: ${message}`),
    }),
  );
}

/** The embedded store must exist already: a command never creates an empty one. */
function requireEmbeddedStore(config: Config): void {
  if (!config.databaseUrl && !existsSync(config.dataDir)) {
    throw new KeyRotationError(
      `There is no embedded database at ${config.dataDir}: set LATCHKEY_DATA_DIR to the server's data directory, or DATABASE_URL.`,
    );
  }
}

async function openFromEnv(
  io: CliIo,
): Promise<{ database: DatabaseHandle; provider: LocalKeyProvider; owned: boolean; maxEncryptions: number }> {
  const config = readConfig(io.env);
  const maxEncryptions = config.dataKeyMaxEncryptions;
  const provider = io.keyProvider ?? keyProviderFromEnv(config, io);
  if (io.database) return { database: io.database, provider, owned: false, maxEncryptions };
  requireEmbeddedStore(config);
  // Key maintenance spans every workspace: it runs as the tables' owner, whom row-level security does not bind.
  const database = await openDatabase(databaseTarget(config, 'owner', 2));
  return { database, provider, owned: true, maxEncryptions };
}

async function status(
  database: DatabaseHandle,
  provider: LocalKeyProvider,
  io: CliIo,
  limit: number,
): Promise<number> {
  const s = await keyStatus(maintenance(database), provider);
  io.out(`Active master key: ${s.activeKeyId}`);
  io.out(`Workspaces: ${s.workspaces}, data keys: ${s.dataKeys}, secrets: ${s.secrets}`);
  io.out('Master keys:');
  const width = Math.max(...s.masterKeys.map((k) => k.id.length));
  for (const key of s.masterKeys) {
    const note =
      key.loaded === 'previous' && key.dataKeys > 0
        ? ' (run `latchkey keys rotate` to move these to the active key)'
        : key.loaded === 'previous'
          ? ' (unused: it can be removed from LATCHKEY_PREVIOUS_MASTER_KEYS)'
          : key.loaded === 'missing'
            ? ' (NOT LOADED: put it in LATCHKEY_PREVIOUS_MASTER_KEYS)'
            : '';
    io.out(
      `  ${key.id.padEnd(width)}  ${key.loaded.padEnd(8)}  ${plural(key.workspaces, 'workspace')}, ${plural(key.dataKeys, 'data key')}${note}`,
    );
  }
  io.out(
    `Secrets on an older data-key version: ${s.secretsOnOlderDataKeys}` +
      (s.secretsOnOlderDataKeys > 0
        ? ' (finish with `latchkey keys rotate-data-keys --since <time of the last run>`)'
        : ''),
  );
  io.out(
    `Envelopes not binding their public fields (format 1): ${s.unboundEnvelopes}` +
      (s.unboundEnvelopes > 0 ? ' (run `latchkey keys upgrade-envelopes`, or start the server)' : ''),
  );
  const top = s.mostUsedActiveDataKey;
  if (top) {
    io.out(
      `Encryptions per active data key: at most ${top.encryptions} (${share(top.encryptions, limit)} of the ` +
        `limit ${limit}, ${DATA_KEY_LIMIT_VARIABLE}; workspace ${top.workspaceId}, version ${top.version}). ` +
        'A key that reaches the limit is replaced by a new version automatically.',
    );
  }
  return s.masterKeys.some((k) => k.loaded === 'missing' && k.dataKeys > 0) ? 1 : 0;
}

async function rotate(database: DatabaseHandle, provider: LocalKeyProvider, io: CliIo): Promise<number> {
  const previous = provider.keyIds.filter((id) => id !== provider.activeKeyId);
  io.out(
    `Re-wrapping workspace data keys with master key ${provider.activeKeyId}` +
      (previous.length ? ` (also loaded: ${previous.join(', ')})` : ' (no previous keys loaded)'),
  );
  let announced = false;
  const report = await rewrapDataKeys(maintenance(database), provider, {
    onProgress(p) {
      if (!announced) {
        io.out(`${plural(p.total, 'workspace')} to re-wrap`);
        announced = true;
      }
      const step = Math.max(1, Math.floor(p.total / 100));
      if (p.outcome === 'failed') io.err(`[${p.done}/${p.total}] ${p.workspaceId}: FAILED: ${p.reason}`);
      else if (p.done % step === 0 || p.done === p.total) {
        io.out(
          `[${p.done}/${p.total}] ${p.workspaceId}: ${p.outcome === 'rewrapped' ? `re-wrapped ${plural(p.dataKeys, 'data key')}` : 'already current'}`,
        );
      }
    },
  });
  if (!announced) io.out('Nothing to re-wrap.');
  io.out('Report:');
  io.out(`  workspaces re-wrapped:   ${report.rewrapped} (${plural(report.dataKeysRewrapped, 'data key')})`);
  io.out(`  already current:         ${report.alreadyCurrent}`);
  io.out(`  failed:                  ${report.failed.length}`);
  for (const failure of report.failed) io.out(`    ${failure.workspaceId}: ${failure.reason}`);
  io.out(`  master keys in use now:  ${report.masterKeyIdsInUse.join(', ') || '(none)'}`);
  if (report.failed.length) {
    io.out('Some workspaces failed: fix the cause and run `latchkey keys rotate` again (it resumes).');
    return 1;
  }
  const stale = previous.filter((id) => !report.masterKeyIdsInUse.includes(id));
  if (stale.length) {
    io.out(
      `Every data key is wrapped with ${provider.activeKeyId}. Once every server runs with it as LATCHKEY_MASTER_KEY, ` +
        `remove ${stale.join(', ')} from LATCHKEY_PREVIOUS_MASTER_KEYS.`,
    );
  }
  return 0;
}

async function rotateDataKeys(
  database: DatabaseHandle,
  provider: LocalKeyProvider,
  io: CliIo,
  flags: RotateDataKeysFlags,
  maxEncryptions: number,
): Promise<number> {
  let since: Date | undefined;
  if (flags.since !== undefined) {
    since = new Date(flags.since);
    if (Number.isNaN(since.getTime())) throw new UsageError('--since must be an ISO 8601 time');
  }
  const db = maintenance(database);
  const clock = await sql<{ now: Date | string }>`select now() as now`.execute(db);
  const started = new Date(clock.rows[0]?.now ?? Date.now());
  const resumeFrom = since ?? started;
  io.out(
    `Rotating data keys. If this run is interrupted, finish it with: latchkey keys rotate-data-keys` +
      `${flags.workspace ? ` --workspace ${flags.workspace}` : ''} --since ${resumeFrom.toISOString()}`,
  );
  const keys = new WorkspaceKeys(provider);
  let targets: string[];
  if (flags.workspace) {
    const exists = await db
      .selectFrom('workspaces')
      .select('id')
      .where('id', '=', flags.workspace)
      .executeTakeFirst();
    if (!exists) throw new KeyRotationError(`There is no workspace ${flags.workspace}.`);
    targets = [flags.workspace];
  } else {
    targets = await allWorkspaceIds(db);
  }
  let rotated = 0;
  let skipped = 0;
  let reencrypted = 0;
  const failed: string[] = [];
  let index = 0;
  for (const workspaceId of targets) {
    index += 1;
    try {
      let version: number | undefined;
      const newest = await db
        .selectFrom('workspace_keys')
        .select(['version', 'created_at'])
        .where('workspace_id', '=', workspaceId)
        .orderBy('version', 'desc')
        .limit(1)
        .executeTakeFirst();
      if (since && newest && new Date(newest.created_at) >= since) {
        skipped += 1;
      } else {
        version = (await addDataKeyVersion(db, provider, workspaceId)).version;
        rotated += 1;
      }
      const result = await reencryptSecrets(db, keys, workspaceId, { maxEncryptions });
      reencrypted += result.reencrypted;
      for (const f of result.failed) failed.push(`${workspaceId} secret ${f.secretId}: ${f.reason}`);
      io.out(
        `[${index}/${targets.length}] ${workspaceId}: ${version ? `new data key version ${version}` : 'already rotated'}, ` +
          `${plural(result.reencrypted, 'secret')} re-encrypted with version ${result.version}` +
          (result.failed.length ? `, ${result.failed.length} FAILED` : ''),
      );
    } catch (error) {
      const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      failed.push(`${workspaceId}: ${reason}`);
      io.err(`[${index}/${targets.length}] ${workspaceId}: FAILED: ${reason}`);
    }
  }
  io.out('Report:');
  io.out(`  workspaces given a new data key: ${rotated}`);
  io.out(`  already rotated since ${resumeFrom.toISOString()}: ${skipped}`);
  io.out(`  secrets re-encrypted:            ${reencrypted}`);
  io.out(`  failed:                          ${failed.length}`);
  for (const f of failed) io.out(`    ${f}`);
  return failed.length ? 1 : 0;
}

async function upgradeEnvelopes(
  database: DatabaseHandle,
  provider: LocalKeyProvider,
  io: CliIo,
  maxEncryptions: number,
): Promise<number> {
  const keys = new WorkspaceKeys(provider);
  const report = await upgradeUnboundEnvelopes(maintenance(database), keys, {
    maxEncryptions,
    onWorkspace(result) {
      io.out(
        `${result.workspaceId}: ${plural(result.upgraded, 'envelope')} upgraded` +
          (result.failed.length ? `, ${result.failed.length} FAILED` : ''),
      );
    },
  });
  io.out('Report:');
  io.out(`  workspaces with format-1 envelopes: ${report.workspaces}`);
  io.out(`  envelopes upgraded:                 ${report.upgraded}`);
  io.out(`  failed:                             ${report.failed.length}`);
  for (const f of report.failed) {
    io.out(`    ${f.workspaceId}${f.secretId ? ` secret ${f.secretId}` : ''}: ${f.reason}`);
  }
  return report.failed.length ? 1 : 0;
}

/** Runs one command; returns the exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [group, command, ...rest] = argv;
  if (!group || group === 'help' || group === '--help' || group === '-h') {
    io.out(USAGE);
    return group ? 0 : 2;
  }
  if (group === 'import') return runImport(command, rest, io);
  const known = ['status', 'rotate', 'rotate-data-keys', 'upgrade-envelopes'];
  if (group !== 'keys' || !command || !known.includes(command)) {
    io.err(`Unknown command: ${[group, command].filter(Boolean).join(' ').slice(0, 60)}`);
    io.err(USAGE);
    return 2;
  }
  let opened: Awaited<ReturnType<typeof openFromEnv>> | undefined;
  try {
    const flags = parseFlags(rest, command === 'rotate-data-keys' ? ROTATE_DATA_KEYS_FLAGS : {});
    opened = await openFromEnv(io);
    const { database, provider, maxEncryptions } = opened;
    if (command === 'status') return await status(database, provider, io, maxEncryptions);
    if (command === 'rotate') return await rotate(database, provider, io);
    if (command === 'upgrade-envelopes')
      return await upgradeEnvelopes(database, provider, io, maxEncryptions);
    return await rotateDataKeys(database, provider, io, flags, maxEncryptions);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(error.message);
      io.err(USAGE);
      return 2;
    }
    if (
      error instanceof MasterKeyError ||
      error instanceof KeyRotationError ||
      error instanceof ConfigError
    ) {
      io.err(error.message);
      return 1;
    }
    io.err(
      `latchkey ${group} ${command} failed: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
    );
    return 1;
  } finally {
    if (opened?.owned) await opened.database.close();
  }
}

/** `latchkey import n8n …` (cli/import.ts). */
async function runImport(source: string | undefined, args: string[], io: CliIo): Promise<number> {
  if (source !== 'n8n') {
    io.err(`Unknown command: ${['import', source].filter(Boolean).join(' ').slice(0, 60)}`);
    io.err(USAGE);
    return 2;
  }
  try {
    return await importCommand(args, io, {
      config: readConfig,
      provider: (config) => keyProviderFromEnv(config, io),
      requireEmbeddedStore,
    });
  } catch (error) {
    if (error instanceof ImportUsageError) {
      io.err(error.message);
      io.err(USAGE);
      return 2;
    }
    if (
      error instanceof ImportRefused ||
      error instanceof MasterKeyError ||
      error instanceof KeyRotationError ||
      error instanceof ConfigError ||
      error instanceof StartupError
    ) {
      io.err(error.message);
      return 1;
    }
    // Opening the database, or reading it before the first credential (each credential's own failure is a
    // row of the report, without the driver's message): no credential value is in play here.
    io.err(
      `latchkey import n8n failed: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
    );
    return 1;
  }
}
