import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServices } from '../app.js';
import { decryptSecretFields, LocalKeyProvider, type MasterKey } from '../crypto/index.js';
import { type DatabaseHandle, openDatabase } from '../db/connect.js';
import { freshFakeData } from '../testing/fake-services.js';
import {
  openTestDatabase,
  ownerOf,
  signedInUser,
  TEST_SCRYPT,
  testBackend,
  testMasterKey,
} from '../testing/harness.js';
import { runCli } from './index.js';

// The `latchkey keys …` commands as an operator runs them: database and keys from the environment.

const backend = testBackend();
const base64 = (key: MasterKey) => key.key.export().toString('base64');

let tempDir: string;
let dataDir: string;
/** PostgreSQL: the test schema (kept open for the whole file); PGlite: closed between commands. */
let pgDatabase: (DatabaseHandle & { schema?: string }) | undefined;
const oldKey = testMasterKey();
const newKey = testMasterKey();
const expected = new Map<
  string,
  { workspaceId: string; credentialType: string; data: Record<string, string> }
>();
let workspaceCount = 0;

function databaseEnv(): NodeJS.ProcessEnv {
  return backend === 'postgres'
    ? {
        DATABASE_URL: process.env.TEST_DATABASE_URL,
        LATCHKEY_DATABASE_SCHEMA: pgDatabase?.schema,
        LATCHKEY_KEY_DIR: path.join(tempDir, 'keys'),
      }
    : { LATCHKEY_DATA_DIR: dataDir, LATCHKEY_KEY_DIR: path.join(tempDir, 'keys') };
}

async function openDb(): Promise<DatabaseHandle> {
  if (pgDatabase) return { ...pgDatabase, close: async () => {} };
  return openDatabase({ kind: 'pglite', dataDir });
}

async function cli(argv: string[], env: NodeJS.ProcessEnv) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, {
    env: { ...databaseEnv(), ...env },
    out: (line) => out.push(line),
    err: (line) => err.push(line),
  });
  const text = [...out, ...err].join('\n');
  for (const key of [oldKey, newKey]) {
    expect(text).not.toContain(base64(key));
    expect(text).not.toContain(key.key.export().toString('hex'));
  }
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** Decrypts every seeded secret with `key` alone (fresh services: nothing cached). */
async function expectEverySecretDecryptsWith(key: MasterKey): Promise<void> {
  const database = await openDb();
  try {
    const svc = await createServices({
      database,
      keyProvider: new LocalKeyProvider({ active: key, all: [key] }),
      passwordCost: TEST_SCRYPT,
    });
    for (const [secretId, secret] of expected) {
      const row = await ownerOf(database)
        .selectFrom('secrets as s')
        .innerJoin('workspace_keys as k', (join) =>
          join.onRef('k.workspace_id', '=', 's.workspace_id').onRef('k.version', '=', 's.key_version'),
        )
        .select(['s.public_fields', 's.ciphertext', 'k.version', 'k.master_key_id', 'k.wrapped_key'])
        .where('s.id', '=', secretId)
        .executeTakeFirstOrThrow();
      const fields = decryptSecretFields(
        await svc.keys.unwrap(secret.workspaceId, row),
        {
          workspaceId: secret.workspaceId,
          secretId,
          credentialType: secret.credentialType,
          publicFields: row.public_fields,
        },
        Buffer.from(row.ciphertext),
      );
      for (const [name, value] of Object.entries(fields)) expect(value).toBe(secret.data[name]);
    }
  } finally {
    await database.close();
  }
}

beforeAll(async () => {
  tempDir = mkdtempSync(path.join(tmpdir(), 'latchkey-cli-test-'));
  dataDir = path.join(tempDir, 'data');
  mkdirSync(path.join(tempDir, 'keys'));
  if (backend === 'postgres') pgDatabase = await openTestDatabase('postgres');
  const database = await openDb();
  try {
    const svc = await createServices({
      database,
      keyProvider: new LocalKeyProvider({ active: oldKey, all: [oldKey] }),
      passwordCost: TEST_SCRYPT,
    });
    for (let p = 0; p < 2; p++) {
      const person = await signedInUser(svc, `Operator ${p}`);
      const personal = (await person.caller.auth.me())?.workspaces[0]?.id as string;
      const team = (await person.caller.workspaces.create({ name: `Ops ${p}`, plan: 'team' })).id;
      for (const workspaceId of [personal, team]) {
        workspaceCount += 1;
        for (const credentialType of ['sendgridApiKey', 'httpBasicAuth']) {
          const data = freshFakeData()[credentialType] as Record<string, string>;
          const meta = await person.caller.secrets.create({
            workspaceId,
            credentialType,
            name: `${credentialType} ${p}`,
            data,
          });
          expected.set(meta.id, { workspaceId, credentialType, data });
        }
      }
    }
  } finally {
    await database.close();
  }
});

afterAll(async () => {
  await pgDatabase?.close();
  rmSync(tempDir, { recursive: true, force: true });
});

describe('latchkey keys (master-key rotation, as an operator runs it)', () => {
  it('keys status names the master key in use and counts its data keys', async () => {
    const { code, out } = await cli(['keys', 'status'], { LATCHKEY_MASTER_KEY: base64(oldKey) });
    expect(code).toBe(0);
    expect(out).toContain(`Active master key: ${oldKey.id}`);
    expect(out).toContain(
      `Workspaces: ${workspaceCount}, data keys: ${workspaceCount}, secrets: ${expected.size}`,
    );
    expect(out).toMatch(
      new RegExp(`${oldKey.id}\\s+active\\s+${workspaceCount} workspaces, ${workspaceCount} data keys`),
    );
  });

  it('without the old key: refuses, names the key it needs, and changes nothing', async () => {
    const { code, err } = await cli(['keys', 'rotate'], { LATCHKEY_MASTER_KEY: base64(newKey) });
    expect(code).toBe(1);
    expect(err).toContain(oldKey.id);
    expect(err).toContain('LATCHKEY_PREVIOUS_MASTER_KEYS');
    await expectEverySecretDecryptsWith(oldKey);
  });

  it('keys rotate re-wraps every workspace, printing progress and a report', async () => {
    const { code, out } = await cli(['keys', 'rotate'], {
      LATCHKEY_MASTER_KEY: base64(newKey),
      LATCHKEY_PREVIOUS_MASTER_KEYS: base64(oldKey),
    });
    expect(code).toBe(0);
    expect(out).toContain(`${workspaceCount} workspaces to re-wrap`);
    for (let i = 1; i <= workspaceCount; i++) expect(out).toContain(`[${i}/${workspaceCount}]`);
    expect(out).toMatch(
      new RegExp(`workspaces re-wrapped:\\s+${workspaceCount} \\(${workspaceCount} data keys\\)`),
    );
    expect(out).toMatch(/already current:\s+0/);
    expect(out).toMatch(/failed:\s+0/);
    expect(out).toContain(`remove ${oldKey.id} from LATCHKEY_PREVIOUS_MASTER_KEYS`);
  });

  it('afterwards the old key can be removed: status shows only the new key, and every secret decrypts', async () => {
    const { code, out } = await cli(['keys', 'status'], { LATCHKEY_MASTER_KEY: base64(newKey) });
    expect(code).toBe(0);
    expect(out).toMatch(new RegExp(`${newKey.id}\\s+active\\s+${workspaceCount} workspaces`));
    expect(out).not.toContain(oldKey.id);
    await expectEverySecretDecryptsWith(newKey);
  });

  it('running it again is harmless: every workspace already current', async () => {
    const { code, out } = await cli(['keys', 'rotate'], {
      LATCHKEY_MASTER_KEY: base64(newKey),
      LATCHKEY_PREVIOUS_MASTER_KEYS: base64(oldKey),
    });
    expect(code).toBe(0);
    expect(out).toContain('Nothing to re-wrap.');
    expect(out).toMatch(new RegExp(`already current:\\s+${workspaceCount}`));
  });

  it('keys rotate-data-keys gives each workspace a new data key and re-encrypts; --since resumes without adding more', async () => {
    const env = { LATCHKEY_MASTER_KEY: base64(newKey) };
    const first = await cli(['keys', 'rotate-data-keys'], env);
    expect(first.code).toBe(0);
    const since = /--since (\S+)/.exec(first.out)?.[1] as string;
    expect(Date.parse(since)).not.toBeNaN();
    expect(first.out).toMatch(new RegExp(`workspaces given a new data key: ${workspaceCount}`));
    expect(first.out).toMatch(new RegExp(`secrets re-encrypted:\\s+${expected.size}`));

    const resumed = await cli(['keys', 'rotate-data-keys', '--since', since], env);
    expect(resumed.code).toBe(0);
    expect(resumed.out).toMatch(/workspaces given a new data key: 0/);
    expect(resumed.out).toMatch(new RegExp(`already rotated since .*: ${workspaceCount}`));
    expect(resumed.out).toMatch(/secrets re-encrypted:\s+0/);

    const status = await cli(['keys', 'status'], env);
    expect(status.out).toContain(`data keys: ${2 * workspaceCount}`);
    expect(status.out).toContain('Secrets on an older data-key version: 0');
    await expectEverySecretDecryptsWith(newKey);

    const one = await cli(
      ['keys', 'rotate-data-keys', '--workspace', [...expected.values()][0]?.workspaceId as string],
      env,
    );
    expect(one.code).toBe(0);
    expect(one.out).toMatch(/workspaces given a new data key: 1/);
    expect((await cli(['keys', 'rotate-data-keys', '--workspace', 'no-such-workspace'], env)).code).toBe(1);
    await expectEverySecretDecryptsWith(newKey);
  });
});

describe('latchkey command line', () => {
  it.each([
    [[], 2],
    [['keys'], 2],
    [['keys', 'explode'], 2],
    [['keys', 'rotate', '--force'], 2],
    [['keys', 'rotate-data-keys', '--since', 'not a time'], 2],
    [['keys', 'rotate-data-keys', '--workspace'], 2],
    [['help'], 0],
  ])('%j exits with %i and prints the usage', async (argv, code) => {
    const result = await cli(argv as string[], { LATCHKEY_MASTER_KEY: base64(newKey) });
    expect(result.code).toBe(code);
    expect(`${result.out}${result.err}`).toContain('Usage: latchkey');
  });

  it.each([
    [['keys', 'rotate', '--force'], '--force'],
    [['keys', 'status', 'extra'], 'extra'],
    [['keys', 'rotate-data-keys', '--workspace'], '--workspace'],
    [['keys', 'rotate-data-keys', '--workspace='], '--workspace'],
    // A flag is not taken as the value of the flag before it.
    [['keys', 'rotate-data-keys', '--workspace', '--since', '2026-01-01T00:00:00Z'], '--workspace'],
    [['keys', 'rotate-data-keys', '--since', 'not a time'], '--since'],
  ])('%j is refused with exit code 2, the first error line naming %s', async (argv, named) => {
    const result = await cli(argv, { LATCHKEY_MASTER_KEY: base64(newKey) });
    expect(result.code).toBe(2);
    // The first line is the error itself; the usage after it names every flag anyway.
    expect(result.err.split('\n')[0]).toContain(named);
    expect(result.err).toContain('Usage: latchkey');
  });

  it('never generates a master key: without one it stops, naming the variables, and creates no key file', async () => {
    const keyDir = path.join(tempDir, 'empty-keys');
    mkdirSync(keyDir);
    const result = await cli(['keys', 'status'], {
      LATCHKEY_KEY_DIR: keyDir,
      DATABASE_URL: '',
      LATCHKEY_DATA_DIR: dataDir,
    });
    expect(result.code).toBe(1);
    expect(result.err).toMatch(/LATCHKEY_MASTER_KEY/);
    expect(readdirSync(keyDir)).toEqual([]);
  });

  it('a malformed master key is a clear error naming the variable', async () => {
    for (const bad of ['not*base64!', Buffer.alloc(16, 1).toString('base64')]) {
      const result = await cli(['keys', 'rotate'], { LATCHKEY_MASTER_KEY: bad });
      expect(result.code).toBe(1);
      expect(result.err).toMatch(/^LATCHKEY_MASTER_KEY (is not valid base64|decodes to 16 bytes)/);
    }
    const previous = await cli(['keys', 'rotate'], {
      LATCHKEY_MASTER_KEY: base64(newKey),
      LATCHKEY_PREVIOUS_MASTER_KEYS: `${base64(oldKey)},nope`,
    });
    expect(previous.code).toBe(1);
    expect(previous.err).toContain('LATCHKEY_PREVIOUS_MASTER_KEYS (entry 2)');
  });

  it('does not create an embedded database that is not there', async () => {
    const missing = path.join(tempDir, 'no-such-data');
    const result = await cli(['keys', 'status'], {
      DATABASE_URL: '',
      LATCHKEY_DATA_DIR: missing,
      LATCHKEY_MASTER_KEY: base64(newKey),
    });
    expect(result.code).toBe(1);
    expect(result.err).toContain(`There is no embedded database at ${missing}`);
    expect(existsSync(missing)).toBe(false);
  });

  // The built command (`pnpm latchkey` runs it); present once `pnpm build` ran, as in CI.
  const built = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
  it('runs as node dist/cli.js and exits with its code', async () => {
    if (!existsSync(built)) throw new Error(`${built} is missing: run \`pnpm build\``);
    const run = (args: string[], env: NodeJS.ProcessEnv) =>
      spawnSync(process.execPath, [built, ...args], {
        env: { PATH: process.env.PATH, ...databaseEnv(), ...env },
        encoding: 'utf8',
        timeout: 30_000,
      });
    const usage = run(['bogus'], {});
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain('Usage: latchkey');
    const status = run(['keys', 'status'], { LATCHKEY_MASTER_KEY: base64(newKey) });
    expect(status.stderr).toBe('');
    expect(status.status).toBe(0);
    expect(status.stdout).toContain(`Active master key: ${newKey.id}`);
  });
});
