import { spawnSync } from 'node:child_process';
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
import { ensureLoginRole } from './db/roles.js';
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

describe('node dist/main.js (the start command, once built)', () => {
  const main = fileURLToPath(new URL('../dist/main.js', import.meta.url));
  const run = (config: Config, env: Record<string, string>) =>
    spawnSync(process.execPath, [main], {
      env: {
        PATH: process.env.PATH,
        HOST: '127.0.0.1',
        PORT: '0',
        LOG_LEVEL: 'silent',
        LATCHKEY_DATA_DIR: config.dataDir,
        LATCHKEY_KEY_DIR: config.keyDir,
        LATCHKEY_WEB_DIR: config.webDir,
        ...(config.databaseUrl
          ? {
              DATABASE_URL: config.databaseUrl,
              LATCHKEY_OWNER_DATABASE_URL: config.ownerDatabaseUrl as string,
              LATCHKEY_DATABASE_SCHEMA: config.databaseSchema as string,
            }
          : {}),
        ...env,
      },
      encoding: 'utf8',
      timeout: 60_000,
    });
  // `pnpm test` builds first; a missing build is a failure here, never a silent skip.
  beforeAll(() => {
    if (!existsSync(main)) throw new Error(`${main} is missing: run \`pnpm build\` before these tests`);
  });

  it('exits 1 with a one-line reason for a malformed key, writing nothing', async () => {
    const config = freshConfig();
    const result = run(config, { LATCHKEY_MASTER_KEY: Buffer.alloc(20, 1).toString('base64') });
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
      const result = run(config, { LATCHKEY_MASTER_KEY_FILE: file });
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
    const result = run(config, { LATCHKEY_MASTER_KEY: GOOD });
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
