import { PGlite } from '@electric-sql/pglite';
import { CompiledQuery, Kysely, PostgresDialect, sql } from 'kysely';
import { PGliteDialect } from 'kysely-pglite-dialect';
import type { Config } from '../config.js';
import { loadPg } from './pg-client.js';
import { PGLITE_START_PARAMS, prepareDataDir } from './pglite-data-dir.js';
import { pgliteWasmModule } from './pglite-wasm.js';
import { ensureAppRoleSwitch, probeLoginRole } from './roles.js';
import type { Database } from './schema.js';
import { APP_ROLE, scopedDialect } from './scope.js';

export type DatabaseTarget =
  | { kind: 'pglite'; dataDir: string | null }
  | {
      kind: 'postgres';
      /**
       * The application's login role: not superuser, not BYPASSRLS, not the tables' owner (checked at start-up).
       * Without `ownerUrl`, a role that may migrate (superuser, or the database's owner) instead: the one-URL mode.
       */
      url: string;
      /** The tables' owner, for migrations (optional: without it `url` migrates or the schema must be migrated). */
      ownerUrl?: string | undefined;
      schema?: string | undefined;
      poolSize?: number;
    };

/**
 * Where the configuration points: the embedded PGlite data directory, or PostgreSQL. `as: 'application'` is the
 * server's own connection (DATABASE_URL, restricted; the owner's for migrations when configured); `'owner'` is
 * for migrations and key maintenance across workspaces (LATCHKEY_OWNER_DATABASE_URL, or DATABASE_URL when that
 * is the owner already).
 */
export function databaseTarget(
  config: Pick<Config, 'databaseUrl' | 'ownerDatabaseUrl' | 'databaseSchema' | 'dataDir'>,
  as: 'application' | 'owner',
  poolSize?: number,
): DatabaseTarget {
  if (!config.databaseUrl) return { kind: 'pglite', dataDir: config.dataDir };
  const owner = config.ownerDatabaseUrl ?? (as === 'owner' ? config.databaseUrl : undefined);
  return {
    kind: 'postgres',
    url: as === 'owner' ? (owner as string) : config.databaseUrl,
    ownerUrl: owner,
    schema: config.databaseSchema,
    ...(poolSize === undefined ? {} : { poolSize }),
  };
}

export interface DatabaseHandle {
  /** The application's connection: its statements run under the request's row-level-security scope (scope.ts). */
  db: Kysely<Database>;
  /**
   * The tables' owner, for migrations and maintenance (row-level security does not bind it). PGlite: the same
   * client, whose unscoped statements run as its superuser. PostgreSQL: a pool of its own when an owner URL
   * was given, else undefined.
   */
  owner: Kysely<Database> | undefined;
  kind: DatabaseTarget['kind'];
  /** The PostgreSQL schema in use, when one was configured. */
  schema?: string | undefined;
  /**
   * PostgreSQL's one-URL mode: DATABASE_URL's role (named here) owns the database and migrates, and every
   * statement of `db` runs as `latchkey_app` (db/scope.ts). Undefined in the two-role mode and on PGlite.
   */
  oneUrlRole?: string | undefined;
  close(): Promise<void>;
}

/** How the server reaches its data: docs/operations.md "PostgreSQL roles". */
export type DatabaseMode = 'embedded' | 'two-role' | 'one-URL';

export function databaseMode(database: Pick<DatabaseHandle, 'kind' | 'oneUrlRole'>): DatabaseMode {
  if (database.kind === 'pglite') return 'embedded';
  return database.oneUrlRole === undefined ? 'two-role' : 'one-URL';
}

/** The start-up line naming the mode (and, in the one-URL mode, the way to the restricted login role). */
export function databaseModeLine(database: DatabaseHandle, dataDir: string): string {
  const mode = databaseMode(database);
  if (mode === 'embedded') return `Database mode: embedded (PGlite at ${dataDir})`;
  if (mode === 'two-role')
    return `Database mode: two-role (PostgreSQL; DATABASE_URL is the restricted login role, ${database.owner ? 'LATCHKEY_OWNER_DATABASE_URL migrates' : 'migrations run apart with `pnpm migrate`'})`;
  return `Database mode: one-URL (PostgreSQL; role '${database.oneUrlRole}' migrates, every application statement runs as '${APP_ROLE}'). For production, move to a restricted login role: docs/operations.md "Moving to a restricted login role"`;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export interface OpenOptions {
  /** Called with the SQL of every statement executed (tests count round trips with it). */
  onQuery?: (sql: string) => void;
}

export async function openDatabase(
  target: DatabaseTarget,
  options: OpenOptions = {},
): Promise<DatabaseHandle> {
  const log = options.onQuery
    ? (event: { level: string; query: { sql: string } }) => options.onQuery?.(event.query.sql)
    : undefined;
  if (target.kind === 'pglite') {
    // A fresh directory is initialized outside this process (pglite-data-dir.ts); in memory (tests) PGlite runs
    // initdb itself.
    if (target.dataDir) await prepareDataDir(target.dataDir);
    const client = await PGlite.create({
      ...(target.dataDir ? { dataDir: target.dataDir } : {}),
      startParams: [...PGLITE_START_PARAMS],
      pgliteWasmModule: await pgliteWasmModule(),
    });
    const dialect = scopedDialect(new PGliteDialect(client), {
      runScript: async (_connection, script) => {
        await client.exec(script);
      },
      trace: options.onQuery,
      singleSession: true,
    });
    const db = new Kysely<Database>({ dialect, ...(log ? { log } : {}) });
    return { db, owner: db, kind: 'pglite', close: () => db.destroy() };
  }

  if (target.schema !== undefined && !SCHEMA_NAME.test(target.schema)) {
    throw new Error('LATCHKEY_DATABASE_SCHEMA must be a lower-case identifier (letters, digits, _)');
  }
  const pg = await loadPg();
  // Only DATABASE_URL: a role that may migrate is the owner too (the one-URL mode), once it can switch to
  // latchkey_app; a restricted login role stays what it is (two-role, migrated apart).
  let ownerUrl = target.ownerUrl;
  let oneUrlRole: string | undefined;
  if (!ownerUrl) {
    const probe = new pg.Client({ connectionString: target.url });
    await probe.connect();
    try {
      const login = await probeLoginRole(probe, target.schema);
      if (login.canMigrate) {
        await ensureAppRoleSwitch(probe, login.role);
        ownerUrl = target.url;
        oneUrlRole = login.role;
      }
    } finally {
      await probe.end();
    }
  }
  if (target.schema && ownerUrl) {
    // Create the schema before the pools start using it as their search_path.
    const admin = new pg.Client({ connectionString: ownerUrl });
    await admin.connect();
    try {
      await admin.query(`create schema if not exists ${target.schema}`);
    } finally {
      await admin.end();
    }
  }
  const poolFor = (connectionString: string, max: number) => {
    const pool = new pg.Pool({
      connectionString,
      max,
      ...(target.schema ? { options: `-c search_path=${target.schema}` } : {}),
    });
    // An idle client that loses its server (restart, failover) must not crash the process.
    pool.on('error', () => {});
    // So must a client that loses it while checked out (database crash, restart, failover): the pool listens for
    // errors only on idle clients, and an 'error' event with no listener ends the process (node-postgres#1324,
    // #3202). The statement fails on its own, and the pool drops the broken client when it is released.
    pool.on('connect', (client) => client.on('error', () => {}));
    return pool;
  };
  const dialect = scopedDialect(new PostgresDialect({ pool: poolFor(target.url, target.poolSize ?? 10) }), {
    runScript: async (connection, script) => {
      // No parameters: pg sends it with the simple protocol, which runs several statements in one round trip.
      await connection.executeQuery(CompiledQuery.raw(script));
    },
    trace: options.onQuery,
    singleSession: false,
    pinAppRole: oneUrlRole !== undefined,
  });
  const db = new Kysely<Database>({ dialect, ...(log ? { log } : {}) });
  const owner = ownerUrl
    ? new Kysely<Database>({ dialect: new PostgresDialect({ pool: poolFor(ownerUrl, 2) }) })
    : undefined;
  try {
    await sql`select 1`.execute(db);
    if (owner) await sql`select 1`.execute(owner);
  } catch (error) {
    await Promise.all([db.destroy(), owner?.destroy()]);
    throw error;
  }
  return {
    db,
    owner,
    kind: 'postgres',
    schema: target.schema,
    oneUrlRole,
    close: async () => {
      await Promise.all([db.destroy(), owner?.destroy()]);
    },
  };
}
