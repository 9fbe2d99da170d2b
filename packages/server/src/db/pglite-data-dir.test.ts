import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServices } from '../app.js';
import { LocalKeyProvider } from '../crypto/index.js';
import { signedInUser, TEST_SCRYPT, testBackend, testMasterKey } from '../testing/harness.js';
import { openDatabase } from './connect.js';
import { migrations, pendingMigrations } from './migrations.js';
import { prepareDataDir, writeTemplate } from './pglite-data-dir.js';

// Issue 15: a fresh PGlite data directory is made outside the server process (a copy of the build's template,
// or initdb in a child process), so the server's WebAssembly memory never holds initdb's.

let tempDir: string;
let templateDir: string;
beforeAll(async () => {
  tempDir = mkdtempSync(path.join(tmpdir(), 'latchkey-data-dir-'));
  templateDir = path.join(tempDir, 'template', 'pglite-template-test');
  if (testBackend() === 'pglite') await writeTemplate(templateDir);
}, 120_000);
afterAll(() => rmSync(tempDir, { recursive: true, force: true }));

const keys = testMasterKey();
const open = async (dataDir: string, onQuery?: (sql: string) => void) => {
  const database = await openDatabase({ kind: 'pglite', dataDir }, onQuery ? { onQuery } : {});
  const svc = await createServices({
    database,
    keyProvider: new LocalKeyProvider({ active: keys, all: [keys] }),
    passwordCost: TEST_SCRYPT,
  });
  return { database, svc };
};

describe.runIf(testBackend() === 'pglite')('a fresh PGlite data directory', () => {
  it('is made by initdb in a child process when there is no template, and then serves', async () => {
    const dataDir = path.join(tempDir, 'no-template', 'data');
    expect(await prepareDataDir(dataDir, path.join(tempDir, 'missing-template'))).toBe('initdb');
    // PGlite runs initdb itself only without PG_VERSION: the server process then just opens the directory.
    expect(existsSync(path.join(dataDir, 'PG_VERSION'))).toBe(true);
    expect(readdirSync(path.dirname(dataDir))).toEqual(['data']);
    expect(await prepareDataDir(dataDir)).toBe('existing');
    const { database } = await open(dataDir);
    try {
      const { rows } = await sql<{ n: number }>`select count(*)::integer as n from users`.execute(
        database.db,
      );
      expect(rows[0]?.n).toBe(0);
    } finally {
      await database.close();
    }
  }, 120_000);

  it('is copied from the template, migrated, and keeps its data across a restart', async () => {
    const dataDir = path.join(tempDir, 'from-template');
    expect(await prepareDataDir(dataDir, templateDir)).toBe('template');
    let email: string;
    {
      const { database, svc } = await open(dataDir);
      try {
        ({ email } = await signedInUser(svc, 'Kept'));
      } finally {
        await database.close();
      }
    }
    expect(await prepareDataDir(dataDir, templateDir)).toBe('existing');
    const { database } = await open(dataDir);
    try {
      const { rows } = await sql<{ email: string }>`select email from users`.execute(database.db);
      expect(rows.map((row) => row.email)).toEqual([email]);
    } finally {
      await database.close();
    }
    // The template itself is left as the build made it.
    expect(existsSync(path.join(templateDir, 'base'))).toBe(true);
    expect(await prepareDataDir(path.join(tempDir, 'second'), templateDir)).toBe('template');
  }, 120_000);

  it('fills an existing empty directory (a volume mount point) in place', async () => {
    const dataDir = path.join(tempDir, 'mounted');
    mkdirSync(dataDir);
    expect(await prepareDataDir(dataDir, templateDir)).toBe('template');
    expect(existsSync(path.join(dataDir, 'PG_VERSION'))).toBe(true);
  });

  it('refuses a non-empty directory that holds no database, naming the variable, and leaves it alone', async () => {
    const dataDir = path.join(tempDir, 'not-a-database');
    mkdirSync(dataDir);
    writeFileSync(path.join(dataDir, 'notes.txt'), 'not a database');
    await expect(prepareDataDir(dataDir, templateDir)).rejects.toThrow(
      `LATCHKEY_DATA_DIR ${dataDir} is not empty and holds no PGlite database`,
    );
    expect(readdirSync(dataDir)).toEqual(['notes.txt']);
  });

  it('is migrated by the build: a fresh start runs no migration, and the template holds no installation data', async () => {
    const client = await PGlite.create({ dataDir: templateDir });
    try {
      const { rows: applied } = await client.query<{ name: string }>(
        'select name from kysely_migration order by name',
      );
      expect(applied.map((row) => row.name)).toEqual(Object.keys(migrations).sort());
      const { rows: role } = await client.query("select from pg_roles where rolname = 'latchkey_app'");
      expect(role).toHaveLength(1);
      // Every table of the application is empty: no key, no user, no secret comes with the template.
      const { rows: tables } = await client.query<{ name: string }>(
        `select tablename as name from pg_tables where schemaname = 'public'
           and tablename not like 'kysely_migration%' order by tablename`,
      );
      expect(tables.map((row) => row.name)).toContain('workspace_keys');
      for (const { name } of tables) {
        const { rows } = await client.query<{ n: number }>(`select count(*)::integer as n from ${name}`);
        expect({ name, rows: rows[0]?.n }).toEqual({ name, rows: 0 });
      }
    } finally {
      await client.close();
    }
    const statements: string[] = [];
    const dataDir = path.join(tempDir, 'no-migration-work');
    expect(await prepareDataDir(dataDir, templateDir)).toBe('template');
    const { database } = await open(dataDir, (statement) => statements.push(statement));
    try {
      expect(statements.length).toBeGreaterThan(0);
      expect(statements.filter((statement) => /\b(create|alter)\b/i.test(statement))).toEqual([]);
    } finally {
      await database.close();
    }
  }, 120_000);

  it('a template from an older build (fewer migrations) is migrated forward at start', async () => {
    const olderTemplate = path.join(tempDir, 'older-template');
    cpSync(templateDir, olderTemplate, { recursive: true });
    const client = await PGlite.create({ dataDir: olderTemplate });
    try {
      // As the build made it before migration 0014.
      await client.exec(`alter table secrets drop column last_test_code;
        delete from kysely_migration where name = '0014_last_test_code';`);
    } finally {
      await client.close();
    }
    const dataDir = path.join(tempDir, 'from-older-template');
    expect(await prepareDataDir(dataDir, olderTemplate)).toBe('template');
    const { database } = await open(dataDir);
    try {
      expect(await pendingMigrations(database.db)).toEqual([]);
      const { rows } = await sql<{ n: number }>`
        select count(*)::integer as n from information_schema.columns
         where table_name = 'secrets' and column_name = 'last_test_code'`.execute(database.db);
      expect(rows[0]?.n).toBe(1);
    } finally {
      await database.close();
    }
  }, 120_000);
});
