import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createServices, startLatchkey } from './app.js';
import { type Config, readConfig } from './config.js';
import { LocalKeyProvider, MasterKeyError } from './crypto/index.js';
import { openDatabase } from './db/connect.js';
import { DatabaseRoleError, ensureLoginRole } from './db/roles.js';
import { asSuperuser, freshDatabase, superuserQuery, testUrl } from './testing/fresh-database.js';
import {
  openTestDatabase,
  ownerOf,
  signedInUser,
  TEST_LOGIN_ROLE,
  TEST_SCRYPT,
  testBackend,
  testMasterKey,
} from './testing/harness.js';

// Issue 6, item 2: a malformed master key is a clear start-up error naming the variable, and a start-up that
// is refused (malformed, unknown or wrong key) writes nothing — checked through startLatchkey (what main.ts
// runs) and, once built, through `node dist/main.js` itself (exit code 1 and the message).

const backend = testBackend();
let tempDir: string;
let schemaDb: Awaited<ReturnType<typeof openTestDatabase>> | undefined;
let appUrl: string | undefined;

beforeAll(async () => {
  tempDir = mkdtempSync(path.join(tmpdir(), 'latchkey-startup-'));
  if (backend === 'postgres') {
    schemaDb = await openTestDatabase('postgres');
    appUrl = await ensureLoginRole(process.env.TEST_DATABASE_URL as string, TEST_LOGIN_ROLE);
  }
});
afterAll(async () => {
  await schemaDb?.close();
  rmSync(tempDir, { recursive: true, force: true });
});
afterEach(() => {
  vi.unstubAllEnvs();
});

let counter = 0;
/** A start configuration on a data directory (or PostgreSQL schema) that does not exist yet. */
function freshConfig(): Config {
  counter += 1;
  return {
    // As main.ts does: the environment (with this test's stubbed key variables), then this test's own settings.
    ...readConfig(process.env),
    host: '127.0.0.1',
    port: 0,
    production: false,
    dataDir: path.join(tempDir, `data-${counter}`),
    databaseUrl: backend === 'postgres' ? appUrl : undefined,
    ownerDatabaseUrl: backend === 'postgres' ? process.env.TEST_DATABASE_URL : undefined,
    databaseSchema: backend === 'postgres' ? `t_startup_${process.pid}_${counter}` : undefined,
    keyDir: path.join(tempDir, `keys-${counter}`),
    webDir: path.join(tempDir, 'no-web'),
    logLevel: 'silent',
    trustProxy: false,
    secureCookies: false,
  };
}

async function nothingWritten(config: Config): Promise<void> {
  expect(existsSync(config.dataDir)).toBe(false);
  expect(existsSync(config.keyDir as string)).toBe(false);
  if (schemaDb && config.databaseSchema) {
    const { rows } = await sql<{ n: string }>`
      select count(*)::text as n from information_schema.schemata where schema_name = ${config.databaseSchema}`.execute(
      ownerOf(schemaDb),
    );
    expect(rows[0]?.n).toBe('0');
  }
}

function stubKeys(env: Record<string, string>) {
  for (const name of ['LATCHKEY_MASTER_KEY', 'LATCHKEY_MASTER_KEY_FILE', 'LATCHKEY_PREVIOUS_MASTER_KEYS']) {
    if (name in env) vi.stubEnv(name, env[name] as string);
    else vi.stubEnv(name, undefined as unknown as string);
  }
}

const GOOD = Buffer.alloc(32, 0x5a).toString('base64');

describe('a malformed master key stops start-up with an error naming the variable, writing nothing', () => {
  it.each([
    ['empty', '', /^LATCHKEY_MASTER_KEY is empty/],
    ['not base64', 'this is not base64!!', /^LATCHKEY_MASTER_KEY is not valid base64/],
    [
      'base64url instead of base64',
      Buffer.alloc(32, 0xfb).toString('base64url'),
      /^LATCHKEY_MASTER_KEY is not valid base64/,
    ],
    [
      '16 bytes',
      Buffer.alloc(16, 7).toString('base64'),
      /^LATCHKEY_MASTER_KEY decodes to 16 bytes; a master key must be exactly 32 bytes/,
    ],
    ['33 bytes', Buffer.alloc(33, 7).toString('base64'), /^LATCHKEY_MASTER_KEY decodes to 33 bytes/],
    [
      'hex instead of base64',
      Buffer.alloc(32, 7).toString('hex'),
      /^LATCHKEY_MASTER_KEY decodes to 48 bytes/,
    ],
  ])('LATCHKEY_MASTER_KEY %s', async (_name, value, message) => {
    stubKeys({ LATCHKEY_MASTER_KEY: value });
    const config = freshConfig();
    const error = await startLatchkey(config, false).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MasterKeyError);
    expect((error as Error).message).toMatch(message);
    if (value.length > 4) expect((error as Error).message).not.toContain(value);
    await nothingWritten(config);
  });

  it('LATCHKEY_MASTER_KEY_FILE holding a malformed key names the variable and the file', async () => {
    const file = path.join(tempDir, 'bad.key');
    writeFileSync(file, 'c2hvcnQ=\n', { mode: 0o600 });
    stubKeys({ LATCHKEY_MASTER_KEY_FILE: file });
    const config = freshConfig();
    const error = await startLatchkey(config, false).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MasterKeyError);
    expect((error as Error).message).toMatch(
      new RegExp(`^LATCHKEY_MASTER_KEY_FILE \\(${file}\\) decodes to 5 bytes`),
    );
    await nothingWritten(config);
  });

  it('a malformed entry of LATCHKEY_PREVIOUS_MASTER_KEYS is named by its position', async () => {
    stubKeys({ LATCHKEY_MASTER_KEY: GOOD, LATCHKEY_PREVIOUS_MASTER_KEYS: `${GOOD},not-base64*` });
    const config = freshConfig();
    const error = await startLatchkey(config, false).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(
      /^LATCHKEY_PREVIOUS_MASTER_KEYS \(entry 2\) is not valid base64/,
    );
    await nothingWritten(config);
  });
});

describe('master key hygiene at start-up', () => {
  it.runIf(process.platform !== 'win32')(
    'refuses to start when the key file is readable by group or others, naming the file and the fix',
    async () => {
      const file = path.join(tempDir, 'shared.key');
      writeFileSync(file, `${GOOD}\n`);
      chmodSync(file, 0o640);
      stubKeys({ LATCHKEY_MASTER_KEY_FILE: file });
      const config = freshConfig();
      const error = await startLatchkey(config, false).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MasterKeyError);
      expect((error as Error).message).toContain(file);
      expect((error as Error).message).toContain(`chmod 600 ${file}`);
      expect((error as Error).message).not.toContain(GOOD);
      await nothingWritten(config);
    },
  );

  it('clears LATCHKEY_MASTER_KEY and LATCHKEY_PREVIOUS_MASTER_KEYS from process.env once the server has read them', async () => {
    const previous = Buffer.alloc(32, 0x6b).toString('base64');
    stubKeys({ LATCHKEY_MASTER_KEY: GOOD, LATCHKEY_PREVIOUS_MASTER_KEYS: previous });
    const config = freshConfig();
    const running = await startLatchkey(config, false);
    try {
      expect(process.env.LATCHKEY_MASTER_KEY).toBeUndefined();
      expect(process.env.LATCHKEY_PREVIOUS_MASTER_KEYS).toBeUndefined();
      expect(JSON.stringify(process.env)).not.toContain(GOOD);
      expect((await fetch(`${running.url}/healthz`)).status).toBe(200);
    } finally {
      await running.close();
      if (schemaDb)
        await sql.raw(`drop schema if exists ${config.databaseSchema} cascade`).execute(ownerOf(schemaDb));
    }
  });
});

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

/** The environment `node dist/main.js` gets for a start configuration (PostgreSQL: only the URLs it has). */
function mainEnv(config: Config, env: Record<string, string>): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'silent',
    LATCHKEY_DATA_DIR: config.dataDir,
    LATCHKEY_KEY_DIR: config.keyDir,
    LATCHKEY_WEB_DIR: config.webDir,
    ...(config.databaseUrl ? { DATABASE_URL: config.databaseUrl } : {}),
    ...(config.ownerDatabaseUrl ? { LATCHKEY_OWNER_DATABASE_URL: config.ownerDatabaseUrl } : {}),
    ...(config.databaseSchema ? { LATCHKEY_DATABASE_SCHEMA: config.databaseSchema } : {}),
    ...env,
  };
}

/** `node dist/main.js` run to its exit. */
const runMain = (config: Config, env: Record<string, string>) =>
  spawnSync(process.execPath, [MAIN], { env: mainEnv(config, env), encoding: 'utf8', timeout: 60_000 });

describe('node dist/main.js (the start command, once built)', () => {
  // `pnpm test` builds first; a missing build is a failure here, never a silent skip.
  beforeAll(() => {
    if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run \`pnpm build\` before these tests`);
  });

  it('exits 1 with a one-line reason for a malformed key, writing nothing', async () => {
    const config = freshConfig();
    const result = runMain(config, { LATCHKEY_MASTER_KEY: Buffer.alloc(20, 1).toString('base64') });
    expect(result.status).toBe(1);
    expect(result.stderr.trim()).toMatch(
      /^Latchkey could not start: LATCHKEY_MASTER_KEY decodes to 20 bytes; a master key must be exactly 32 bytes/,
    );
    expect(result.stdout).toBe('');
    await nothingWritten(config);
  });

  it.runIf(process.platform !== 'win32')(
    'exits 1 naming the file and the chmod fix when the key file is readable by others, writing nothing',
    async () => {
      const config = freshConfig();
      const file = path.join(tempDir, `shared-${counter}.key`);
      writeFileSync(file, `${GOOD}\n`);
      chmodSync(file, 0o644);
      const result = runMain(config, { LATCHKEY_MASTER_KEY_FILE: file });
      expect(result.status).toBe(1);
      expect(result.stderr.trim()).toMatch(/^Latchkey could not start: LATCHKEY_MASTER_KEY_FILE/);
      expect(result.stderr).toContain(`chmod 600 ${file}`);
      expect(result.stderr).not.toContain(GOOD);
      expect(result.stdout).toBe('');
      await nothingWritten(config);
    },
  );

  it('exits 1 naming the expected key id when the key does not match the data', async () => {
    const config = freshConfig();
    const original = testMasterKey();
    const database =
      backend === 'postgres'
        ? await openDatabase({
            kind: 'postgres',
            url: config.databaseUrl as string,
            ownerUrl: config.ownerDatabaseUrl,
            schema: config.databaseSchema,
          })
        : await openDatabase({ kind: 'pglite', dataDir: config.dataDir });
    try {
      const svc = await createServices({
        database,
        keyProvider: new LocalKeyProvider({ active: original, all: [original] }),
        passwordCost: TEST_SCRYPT,
      });
      await signedInUser(svc, 'Seeded');
    } finally {
      await database.close();
    }
    const result = runMain(config, { LATCHKEY_MASTER_KEY: GOOD });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      'Latchkey could not start: The master key does not match the stored data',
    );
    expect(result.stderr).toContain(original.id);
    expect(result.stderr).not.toContain(GOOD);
    if (schemaDb)
      await sql.raw(`drop schema if exists ${config.databaseSchema} cascade`).execute(ownerOf(schemaDb));
  });
});

// Issue 15, item 6: `node dist/main.js` runs the server from the one file `pnpm build` bundles (no fastify module
// is loaded from node_modules), and pg's modules load only on PostgreSQL (db/pg-client.ts). A preloaded script
// reports, as the process exits, which files of those packages Node's CommonJS loader loaded.
describe('node dist/main.js runs the bundled server and loads the PostgreSQL client only for PostgreSQL', () => {
  it(`on ${backend}: ${backend === 'postgres' ? 'pg is loaded' : 'pg is never loaded'}, fastify comes from the bundle, and /healthz and the start page answer`, async () => {
    const config = freshConfig();
    const preload = path.join(tempDir, `report-pg-${counter}.cjs`);
    writeFileSync(
      preload,
      `process.on('exit', () => {
        const files = (name) => Object.keys(require.cache).filter((file) =>
          file.includes(require('node:path').join('node_modules', name, ''))).length;
        require('node:fs').writeSync(2, '\\npg files loaded: ' + files('pg') + ', fastify files loaded: ' + files('fastify') + '\\n');
      });`,
    );
    // The web app where the bundle finds it by default (packages/web/dist, which `pnpm build` makes).
    const env = mainEnv(config, { LATCHKEY_MASTER_KEY: GOOD });
    delete env.LATCHKEY_WEB_DIR;
    const child = spawn(process.execPath, ['--require', preload, MAIN], { env });
    let output = '';
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const exited = new Promise((done) => child.once('exit', done));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          const match = /Latchkey listening on (http:\S+)/.exec(output);
          if (match?.[1]) resolve(match[1]);
        });
        child.once('exit', (code) => reject(new Error(`exited with ${code} before listening:\n${output}`)));
      });
      expect((await fetch(`${url}/healthz`)).status).toBe(200);
      const page = await fetch(`${url}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('<div id="root"');
    } finally {
      child.kill('SIGTERM');
      await exited;
      if (schemaDb)
        await sql.raw(`drop schema if exists ${config.databaseSchema} cascade`).execute(ownerOf(schemaDb));
    }
    const [, pgFiles, fastifyFiles] =
      /pg files loaded: (\d+), fastify files loaded: (\d+)/.exec(output) ?? [];
    if (backend === 'postgres') expect(Number(pgFiles)).toBeGreaterThan(0);
    else expect(Number(pgFiles)).toBe(0);
    expect(Number(fastifyFiles)).toBe(0);
  });
});

describe('start-up names its database mode in one line', () => {
  it(`on ${backend === 'postgres' ? 'PostgreSQL with the owner’s and the application’s URLs: two-role' : 'PGlite: embedded'}`, async () => {
    stubKeys({ LATCHKEY_MASTER_KEY: GOOD });
    const config = freshConfig();
    const running = await startLatchkey(config, false);
    try {
      expect(running.databaseMode).toBe(
        backend === 'postgres'
          ? 'Database mode: two-role (PostgreSQL; DATABASE_URL is the restricted login role, LATCHKEY_OWNER_DATABASE_URL migrates)'
          : `Database mode: embedded (PGlite at ${config.dataDir})`,
      );
    } finally {
      await running.close();
      if (schemaDb)
        await sql.raw(`drop schema if exists ${config.databaseSchema} cascade`).execute(ownerOf(schemaDb));
    }
  });
});

// Issue 15, item 2: only DATABASE_URL, naming a role that may migrate — the superuser a newcomer tries first,
// or the database's owner — is enough: the server migrates an empty database and runs as latchkey_app
// (db/one-url.test.ts checks that row-level security binds there). Each test has a database of its own.
describe.runIf(backend === 'postgres')('one URL is enough for PostgreSQL', () => {
  const MODE_LINE =
    /^Database mode: one-URL \(PostgreSQL; role '([a-z0-9_]+)' migrates, every application statement runs as 'latchkey_app'\)\. For production, move to a restricted login role: docs\/operations\.md "Moving to a restricted login role"$/;
  const suffix = `${process.pid}_${randomBytes(3).toString('hex')}`;
  const roles: string[] = [];
  async function loginRole(name: string, attributes = ''): Promise<string> {
    const role = `latchkey_t_${name}_${suffix}`;
    await asSuperuser([`create role ${role} login ${attributes}`]);
    roles.push(role);
    return role;
  }
  afterAll(async () => {
    for (const role of roles) await asSuperuser([`drop role if exists ${role}`]);
  });
  const oneUrlConfig = (url: string): Config => ({
    ...freshConfig(),
    databaseUrl: url,
    ownerDatabaseUrl: undefined,
    databaseSchema: undefined,
  });
  const migrations = async (database: string) =>
    (
      await superuserQuery<{ n: string }>(
        `select count(*)::text as n from information_schema.tables where table_name = 'kysely_migration'`,
        database,
      )
    ).rows[0]?.n;

  it('with the superuser’s URL of an empty database: migrates it, says so in one line and serves; then moves to a restricted login role', async () => {
    const fresh = await freshDatabase('startup');
    stubKeys({ LATCHKEY_MASTER_KEY: GOOD });
    const account = { email: 'one-url@example.test', password: 'a long fake password' };
    const call = (base: string, procedure: string, input: object) =>
      fetch(`${base}/trpc/${procedure}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(input),
      });
    try {
      const running = await startLatchkey(oneUrlConfig(fresh.url), false);
      try {
        expect(running.databaseMode).toMatch(MODE_LINE);
        expect(MODE_LINE.exec(running.databaseMode)?.[1]).toBe('postgres');
        expect((await fetch(`${running.url}/healthz`)).status).toBe(200);
        expect((await call(running.url, 'auth.signUp', { ...account, name: 'One' })).status).toBe(200);
      } finally {
        await running.close();
      }
      const { rows } = await superuserQuery<{ n: string; members: string }>(
        `select (select count(*) from kysely_migration)::text as n,
                (select count(*) from memberships)::text as members`,
        fresh.name,
      );
      expect(Number(rows[0]?.n)).toBeGreaterThan(0);
      expect(rows[0]?.members).toBe('1');

      // docs/operations.md "Moving to a restricted login role": a login in latchkey_app, the old URL the owner's.
      const server = await loginRole('server', 'in role latchkey_app');
      stubKeys({ LATCHKEY_MASTER_KEY: GOOD });
      const moved = await startLatchkey(
        {
          ...oneUrlConfig(testUrl({ user: server, database: fresh.name })),
          ownerDatabaseUrl: fresh.url,
        },
        false,
      );
      try {
        expect(moved.databaseMode).toMatch(/^Database mode: two-role /);
        expect((await call(moved.url, 'auth.signIn', account)).status).toBe(200);
      } finally {
        await moved.close();
      }
    } finally {
      await fresh.drop();
    }
  });

  it('node dist/main.js with only DATABASE_URL prints the mode line, then listens', async () => {
    const fresh = await freshDatabase('main');
    const child = spawn(process.execPath, [MAIN], {
      env: mainEnv(oneUrlConfig(fresh.url), { LATCHKEY_MASTER_KEY: GOOD }),
    });
    try {
      let output = '';
      const lines = await new Promise<string[]>((resolve, reject) => {
        child.stdout.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          if (/Latchkey listening on http/.test(output)) resolve(output.trim().split('\n'));
        });
        child.stderr.on('data', (chunk: Buffer) => {
          output += chunk.toString();
        });
        child.once('exit', (code) => reject(new Error(`exited with ${code} before listening:\n${output}`)));
      });
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(MODE_LINE);
      expect(lines[1]).toMatch(/^Latchkey listening on http:\/\/127\.0\.0\.1:\d+$/);
    } finally {
      const exited = new Promise((done) => child.once('exit', done));
      child.kill('SIGTERM');
      await exited;
      await fresh.drop();
    }
  });

  it('with the URL of the database’s owner (not superuser): migrates as it, granting itself latchkey_app', async () => {
    const owner = await loginRole('owner', 'createrole');
    const fresh = await freshDatabase('owner', owner);
    stubKeys({ LATCHKEY_MASTER_KEY: GOOD });
    try {
      const running = await startLatchkey(
        oneUrlConfig(testUrl({ user: owner, database: fresh.name })),
        false,
      );
      await running.close();
      expect(MODE_LINE.exec(running.databaseMode)?.[1]).toBe(owner);
      const { rows } = await superuserQuery<{ owner: string; member: boolean }>(
        `select tableowner as owner, pg_has_role('${owner}', 'latchkey_app', 'MEMBER') as member
           from pg_tables where schemaname = 'public' and tablename = 'secrets'`,
        fresh.name,
      );
      expect(rows).toEqual([{ owner, member: true }]);
    } finally {
      await fresh.drop();
    }
  });

  it('refuses the database’s owner that may neither create nor be granted latchkey_app, saying what to run', async () => {
    const owner = await loginRole('plainowner');
    const fresh = await freshDatabase('plainowner', owner);
    stubKeys({ LATCHKEY_MASTER_KEY: GOOD });
    try {
      const config = oneUrlConfig(testUrl({ user: owner, database: fresh.name }));
      const error = await startLatchkey(config, false).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DatabaseRoleError);
      expect((error as Error).message).toContain(
        `DATABASE_URL connects as role '${owner}', which may migrate the database but cannot switch to 'latchkey_app'`,
      );
      expect((error as Error).message).toContain(`grant latchkey_app to ${owner}`);
      expect(await migrations(fresh.name)).toBe('0');
    } finally {
      await fresh.drop();
    }
  });

  it('a role that can neither migrate nor switch to latchkey_app still gets the clear refusal, writing nothing', async () => {
    const outsider = await loginRole('outsider');
    const fresh = await freshDatabase('outsider');
    const url = testUrl({ user: outsider, database: fresh.name });
    stubKeys({ LATCHKEY_MASTER_KEY: GOOD });
    try {
      const error = await startLatchkey(oneUrlConfig(url), false).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DatabaseRoleError);
      expect((error as Error).message).toMatch(
        /^The database is not migrated \(pending: .*\)\. DATABASE_URL's role may not migrate it .*pnpm migrate.*LATCHKEY_OWNER_DATABASE_URL/,
      );
      const result = runMain(oneUrlConfig(url), { LATCHKEY_MASTER_KEY: GOOD });
      expect(result.status).toBe(1);
      expect(result.stderr.trim()).toMatch(/^Latchkey could not start: The database is not migrated/);
      expect(result.stdout).toBe('');
      expect(await migrations(fresh.name)).toBe('0');
    } finally {
      await fresh.drop();
    }
  });
});
