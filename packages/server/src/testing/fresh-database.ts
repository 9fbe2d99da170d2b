import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { loadPg } from '../db/pg-client.js';

/** TEST_DATABASE_URL (the PostgreSQL superuser) with another user and/or database. */
export function testUrl(change: { user?: string; database?: string }): string {
  const base = process.env.TEST_DATABASE_URL;
  if (!base) throw new Error('TEST_DATABASE_URL is not set');
  const url = new URL(base);
  if (change.user !== undefined) {
    url.username = change.user;
    url.password = '';
  }
  if (change.database !== undefined) url.pathname = `/${change.database}`;
  return url.toString();
}

/** One statement as the superuser of TEST_DATABASE_URL (on its database, or on `database`). */
export async function superuserQuery<R extends pg.QueryResultRow>(
  text: string,
  database?: string,
): Promise<pg.QueryResult<R>> {
  const pg = await loadPg();
  const client = new pg.Client({ connectionString: testUrl(database ? { database } : {}) });
  await client.connect();
  try {
    return await client.query<R>(text);
  } finally {
    await client.end();
  }
}

/** Statements, one after the other, as the superuser of TEST_DATABASE_URL. */
export async function asSuperuser(statements: string[]): Promise<void> {
  for (const statement of statements) await superuserQuery(statement);
}

export interface FreshDatabase {
  name: string;
  /** The superuser's URL of the new database. */
  url: string;
  drop(): Promise<void>;
}

/**
 * An empty database of its own on the server of TEST_DATABASE_URL, uniquely named (the one-URL mode migrates a
 * whole database, as a newcomer's would be); `owner` makes another role its owner. Dropped by `drop()`.
 */
export async function freshDatabase(label: string, owner?: string): Promise<FreshDatabase> {
  const name = `latchkey_t_${label}_${process.pid}_${randomBytes(4).toString('hex')}`;
  await asSuperuser([`create database ${name}${owner ? ` owner ${owner}` : ''}`]);
  return {
    name,
    url: testUrl({ database: name }),
    drop: () => asSuperuser([`drop database if exists ${name} with (force)`]),
  };
}
