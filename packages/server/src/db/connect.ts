import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely, PostgresDialect, sql } from 'kysely';
import { PGliteDialect } from 'kysely-pglite-dialect';
import pg from 'pg';
import type { Database } from './schema.js';

export type DatabaseTarget =
  | { kind: 'pglite'; dataDir: string | null }
  | { kind: 'postgres'; url: string; schema?: string; poolSize?: number };

export interface DatabaseHandle {
  db: Kysely<Database>;
  kind: DatabaseTarget['kind'];
  /** The PostgreSQL schema in use, when one was configured. */
  schema?: string | undefined;
  close(): Promise<void>;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

// int8 (bigserial, count(*)) as string, never a lossy number; timestamps as Date (pg default).
pg.types.setTypeParser(20, (value) => value);

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
    if (target.dataDir) mkdirSync(path.dirname(path.resolve(target.dataDir)), { recursive: true });
    const client = target.dataDir ? await PGlite.create(target.dataDir) : await PGlite.create();
    const db = new Kysely<Database>({ dialect: new PGliteDialect(client), ...(log ? { log } : {}) });
    return { db, kind: 'pglite', close: () => db.destroy() };
  }

  if (target.schema !== undefined && !SCHEMA_NAME.test(target.schema)) {
    throw new Error('LATCHKEY_DATABASE_SCHEMA must be a lower-case identifier (letters, digits, _)');
  }
  if (target.schema) {
    // Create the schema before the pool starts using it as its search_path.
    const admin = new pg.Client({ connectionString: target.url });
    await admin.connect();
    try {
      await admin.query(`create schema if not exists ${target.schema}`);
    } finally {
      await admin.end();
    }
  }
  const pool = new pg.Pool({
    connectionString: target.url,
    max: target.poolSize ?? 10,
    ...(target.schema ? { options: `-c search_path=${target.schema}` } : {}),
  });
  // An idle client that loses its server (restart, failover) must not crash the process.
  pool.on('error', () => {});
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), ...(log ? { log } : {}) });
  await sql`select 1`.execute(db);
  return { db, kind: 'postgres', schema: target.schema, close: () => db.destroy() };
}
