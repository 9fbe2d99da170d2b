import { createRegistry, type IntegrationDefinition } from '@latchkey/core';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { type Config, DEFAULT_INVITE_HOURS, readConfig } from './config.js';
import { type KeyProvider, LocalKeyProvider, loadMasterKeys } from './crypto/index.js';
import { forgetMasterKeyVariables } from './crypto/master-key.js';
import { type DatabaseHandle, databaseModeLine, databaseTarget, openDatabase } from './db/connect.js';
import { migrateToLatest } from './db/migrations.js';
import { checkApplicationRole, requireMigrated } from './db/roles.js';
import { buildHttpServer } from './http/server.js';
import { configurePasswordHashQueue, OWASP_SCRYPT, type ScryptCost } from './identity/passwords.js';
import { DEFAULT_SESSION_IDLE_HOURS, startExpirySweep } from './identity/session-expiry.js';
import { checkDataKeyMaxEncryptions, DEFAULT_DATA_KEY_MAX_ENCRYPTIONS } from './keys/key-usage.js';
import { envelopeUpgradeWarnings, upgradeUnboundEnvelopes } from './keys/rotation.js';
import { WorkspaceKeys } from './keys/workspace-keys.js';
import { plugins as defaultPlugins } from './plugins.js';
import type { RunnerSettings } from './runner/settings.js';
import type { Services } from './services.js';

export class StartupError extends Error {
  override name = 'StartupError';
}

export interface ServicesOptions {
  database: DatabaseHandle;
  keyProvider: KeyProvider;
  plugins?: readonly IntegrationDefinition[];
  passwordCost?: ScryptCost;
  /** Outbound settings (the configuration's `runnerSettings`); the defaults of an empty environment when not given. */
  runnerSettings?: RunnerSettings;
  /** Encryptions per data key (the configuration's `dataKeyMaxEncryptions`); 2^30 when not given. */
  dataKeyMaxEncryptions?: number;
  /** Encryption counts one reservation takes (keys/encryption-blocks.ts); 1,000 when not given. */
  encryptionBlock?: number;
  /** Told what start-up did that an operator should know about (the server logs it as a warning). */
  warn?: (message: string) => void;
  /** The session idle timeout (the configuration's `sessionIdleMs`); seven days when not given. */
  sessionIdleMs?: number;
  /** How long an invite admits its person (the configuration's `inviteTtlMs`); seven days when not given. */
  inviteTtlMs?: number;
  /** LATCHKEY_PUBLIC_URL; when not given, set to the listen address once the server listens. */
  publicUrl?: string;
  /** LATCHKEY_OAUTH_REFRESH_SKEW_SECONDS in milliseconds; 60 s when not given. */
  oauthRefreshSkewMs?: number;
}

/**
 * Builds the services after checking that the master key can open the stored data keys: a wrong key
 * stops start-up (naming the expected key ids) before anything is written.
 */
export async function createServices(options: ServicesOptions): Promise<Services> {
  // The key check comes first: a wrong key must leave the database exactly as it was (no migration either).
  const registry = createRegistry(options.plugins ?? defaultPlugins);
  const dataKeyMaxEncryptions =
    options.dataKeyMaxEncryptions === undefined
      ? DEFAULT_DATA_KEY_MAX_ENCRYPTIONS
      : checkDataKeyMaxEncryptions(options.dataKeyMaxEncryptions);
  const keys = new WorkspaceKeys(options.keyProvider, undefined, options.encryptionBlock);
  const { database } = options;
  // Without the owner's connection (a restricted DATABASE_URL alone) nothing can be migrated: it must be done already.
  if (!database.owner) await requireMigrated(database.db, database.schema);
  const unknown = await keys.unknownMasterKeyIds(database.owner ?? database.db);
  if (unknown.length) {
    throw new StartupError(
      `The master key does not match the stored data: data keys are wrapped with ${unknown.join(', ')}, ` +
        `but the configured key is ${options.keyProvider.activeKeyId}. Start with the right LATCHKEY_MASTER_KEY.`,
    );
  }
  if (database.owner) await migrateToLatest(database.owner, database.schema);
  // Row-level security must bind the application's role (PGlite switches to it for every scoped statement, the
  // one-URL mode for every statement: there it checks latchkey_app itself).
  if (database.kind === 'postgres') await checkApplicationRole(database.db);
  // Before anything is served: envelopes that do not bind their public fields yet (format 1, which the runner
  // refuses) are rewritten binding the fields stored now — docs/security.md "Encryption". None left: one read.
  const upgrade = await upgradeUnboundEnvelopes(database.db, keys, {
    maxEncryptions: dataKeyMaxEncryptions,
    scopeEachWorkspace: true,
  });
  for (const message of envelopeUpgradeWarnings(upgrade)) options.warn?.(message);
  return {
    db: database.db,
    registry,
    keys,
    passwordCost: options.passwordCost ?? OWASP_SCRYPT,
    sessionTtlMs: 30 * 24 * 3600 * 1000,
    sessionIdleMs: options.sessionIdleMs ?? DEFAULT_SESSION_IDLE_HOURS * 3600 * 1000,
    inviteTtlMs: options.inviteTtlMs ?? DEFAULT_INVITE_HOURS * 3600 * 1000,
    runnerSettings: options.runnerSettings ?? readConfig({}).runnerSettings,
    dataKeyMaxEncryptions,
    databaseKind: database.kind,
    oauth: {
      publicUrl: options.publicUrl ?? 'http://127.0.0.1',
      refreshSkewMs: options.oauthRefreshSkewMs ?? 60_000,
    },
  };
}

export interface RunningLatchkey {
  server: FastifyInstance;
  url: string;
  /** One line naming the database mode (embedded, two-role or one-URL), for the start-up output. */
  databaseMode: string;
  close(): Promise<void>;
}

export async function startLatchkey(
  config: Config,
  logger: FastifyServerOptions['logger'],
): Promise<RunningLatchkey> {
  configurePasswordHashQueue(config.passwordHashQueue);
  const embedded = !config.databaseUrl;
  const warnings: string[] = [];
  const masterKeys = loadMasterKeys({
    env: config.masterKeyVariables,
    embedded,
    keyDir: config.keyDir,
    dataDir: embedded ? config.dataDir : undefined,
    warn: (message) => warnings.push(message),
  });
  forgetMasterKeyVariables(process.env);
  const database = await openDatabase(databaseTarget(config, 'application'));
  let services: Services;
  try {
    services = await createServices({
      database,
      keyProvider: new LocalKeyProvider(masterKeys),
      sessionIdleMs: config.sessionIdleMs,
      inviteTtlMs: config.inviteTtlMs,
      runnerSettings: config.runnerSettings,
      dataKeyMaxEncryptions: config.dataKeyMaxEncryptions,
      ...(config.publicUrl ? { publicUrl: config.publicUrl } : {}),
      oauthRefreshSkewMs: config.oauthRefreshSkewMs,
      warn: (message) => warnings.push(message),
    });
  } catch (error) {
    await database.close();
    throw error;
  }
  const server = await buildHttpServer(services, {
    webDir: config.webDir,
    logger,
    trustProxy: config.trustProxy,
    secureCookies: config.secureCookies,
    signInLimits: config.signInLimits,
    signUpLimits: config.signUpLimits,
  });
  for (const warning of warnings) server.log.warn(warning);
  const address = await server.listen({ host: config.host, port: config.port });
  // Without LATCHKEY_PUBLIC_URL, OAuth2 providers send people back to the address the server listens on.
  if (!config.publicUrl) services.oauth.publicUrl = address;
  const sweep = startExpirySweep(services, {
    attemptWindowMs: Math.max(config.signInLimits.windowMs, config.signUpLimits.windowMs),
    onError: (error) => server.log.error({ err: { type: (error as Error).name } }, 'expiry sweep failed'),
  });
  return {
    server,
    url: address,
    databaseMode: databaseModeLine(database, config.dataDir),
    async close() {
      await sweep.stop();
      await server.close();
      await database.close();
    },
  };
}
