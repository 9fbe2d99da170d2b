import { createRegistry, type IntegrationDefinition } from '@latchkey/core';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import type { Config } from './config.js';
import { type KeyProvider, LocalKeyProvider, loadMasterKeys } from './crypto/index.js';
import { type DatabaseHandle, openDatabase } from './db/connect.js';
import { migrateToLatest } from './db/migrations.js';
import { buildHttpServer } from './http/server.js';
import { OWASP_SCRYPT, type ScryptCost } from './identity/passwords.js';
import { WorkspaceKeys } from './keys/workspace-keys.js';
import { plugins as defaultPlugins } from './plugins.js';
import { type RunnerSettings, runnerSettingsFromEnv } from './runner/settings.js';
import type { Services } from './services.js';

export class StartupError extends Error {
  override name = 'StartupError';
}

export interface ServicesOptions {
  database: DatabaseHandle;
  keyProvider: KeyProvider;
  plugins?: readonly IntegrationDefinition[];
  passwordCost?: ScryptCost;
  /** Outbound settings; read from the environment when not given. */
  runner?: RunnerSettings;
}

/**
 * Builds the services after checking that the master key can open the stored data keys: a wrong key
 * stops start-up (naming the expected key ids) before anything is written.
 */
export async function createServices(options: ServicesOptions): Promise<Services> {
  // The key check comes first: a wrong key must leave the database exactly as it was (no migration either).
  const registry = createRegistry(options.plugins ?? defaultPlugins);
  const keys = new WorkspaceKeys(options.keyProvider);
  const unknown = await keys.unknownMasterKeyIds(options.database.db);
  if (unknown.length) {
    throw new StartupError(
      `The master key does not match the stored data: data keys are wrapped with ${unknown.join(', ')}, ` +
        `but the configured key is ${options.keyProvider.activeKeyId}. Start with the right LATCHKEY_MASTER_KEY.`,
    );
  }
  await migrateToLatest(options.database.db, options.database.schema);
  return {
    db: options.database.db,
    registry,
    keys,
    passwordCost: options.passwordCost ?? OWASP_SCRYPT,
    sessionTtlMs: 30 * 24 * 3600 * 1000,
    inviteTtlMs: 7 * 24 * 3600 * 1000,
    runner: options.runner ?? runnerSettingsFromEnv(process.env),
  };
}

export interface RunningLatchkey {
  server: FastifyInstance;
  url: string;
  close(): Promise<void>;
}

export async function startLatchkey(
  config: Config,
  logger: FastifyServerOptions['logger'],
): Promise<RunningLatchkey> {
  const embedded = !config.databaseUrl;
  const warnings: string[] = [];
  const masterKeys = loadMasterKeys({
    env: process.env,
    embedded,
    keyDir: config.keyDir,
    dataDir: embedded ? config.dataDir : undefined,
    warn: (message) => warnings.push(message),
  });
  const database = await openDatabase(
    config.databaseUrl
      ? { kind: 'postgres', url: config.databaseUrl, schema: config.databaseSchema }
      : { kind: 'pglite', dataDir: config.dataDir },
  );
  let services: Services;
  try {
    services = await createServices({ database, keyProvider: new LocalKeyProvider(masterKeys) });
  } catch (error) {
    await database.close();
    throw error;
  }
  const server = await buildHttpServer(services, {
    webDir: config.webDir,
    logger,
    trustProxy: config.trustProxy,
    secureCookies: config.secureCookies,
  });
  for (const warning of warnings) server.log.warn(warning);
  const address = await server.listen({ host: config.host, port: config.port });
  return {
    server,
    url: address,
    async close() {
      await server.close();
      await database.close();
    },
  };
}
