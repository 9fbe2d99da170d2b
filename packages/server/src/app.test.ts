import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Kysely, Migrator, sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createServices, StartupError, startLatchkey } from './app.js';
import { type Config, readConfig } from './config.js';
import { decryptSecretFields, generateDataKey, LocalKeyProvider, type MasterKey } from './crypto/index.js';
import { type DatabaseHandle, openDatabase } from './db/connect.js';
import { migrations } from './db/migrations.js';
import type { Database } from './db/schema.js';
import type { Services } from './services.js';
import {
  clientFor,
  ensureTestLoginRole,
  FAKE_DATA,
  openTestDatabase,
  ownerDb,
  ownerOf,
  signedInUser,
  TEST_SCRYPT,
  testBackend,
  testMasterKey,
} from './testing/harness.js';
import { signUpOverHttp, startHttpServer } from './testing/http-harness.js';

const backend = testBackend();

function providerFor(key: MasterKey, ...previous: MasterKey[]): LocalKeyProvider {
  return new LocalKeyProvider({ active: key, all: [key, ...previous] });
}

function servicesWith(database: DatabaseHandle, keyProvider: LocalKeyProvider): Promise<Services> {
  return createServices({ database, keyProvider, passwordCost: TEST_SCRYPT });
}

function base64Of(key: MasterKey): string {
  return key.key.export().toString('base64');
}

/** Every row of every table of the current schema (migration bookkeeping included), and its columns, as text. */
async function snapshot(db: Kysely<Database>): Promise<Record<string, string[]>> {
  const columns = await sql<{ c: string }>`
    select table_name || '.' || column_name || ' ' || data_type as c from information_schema.columns
    where table_schema = current_schema() order by 1`.execute(db);
  const tables = await sql<{ name: string }>`
    select table_name as name from information_schema.tables
    where table_schema = current_schema() and table_type = 'BASE TABLE' order by table_name`.execute(db);
  const result: Record<string, string[]> = { '(columns)': columns.rows.map((r) => r.c) };
  for (const { name } of tables.rows) {
    const rows = await sql<{ row: string }>`select t::text as row from ${sql.table(name)} t`.execute(db);
    result[name] = rows.rows.map((r) => r.row).sort();
  }
  return result;
}

describe('start-up checks the master key against the stored data', () => {
  const original = testMasterKey();
  const other = testMasterKey();
  let database: Awaited<ReturnType<typeof openTestDatabase>>;
  let workspaceId: string;
  let sessionToken: string;
  let secretIds: string[];

  beforeAll(async () => {
    database = await openTestDatabase();
    const svc = await servicesWith(database, providerFor(original));
    const { caller, session } = await signedInUser(svc, 'Key Holder');
    workspaceId = (await caller.auth.me())?.workspaces[0]?.id as string;
    secretIds = [];
    for (const credentialType of ['sendgridApiKey', 'slackWebhook', 'httpBasicAuth'] as const) {
      const data = FAKE_DATA[credentialType];
      const meta = await caller.secrets.create({
        workspaceId,
        credentialType,
        name: `Before restart ${credentialType}`,
        data,
      });
      secretIds.push(meta.id);
    }
    sessionToken = session.token as string;
  });
  afterAll(() => database.close());

  it('refuses another master key with a StartupError naming the expected key id, and writes nothing', async () => {
    expect(original.id).toMatch(/^mk_[0-9a-f]{16}$/);
    expect(other.id).not.toBe(original.id);
    const before = await snapshot(ownerOf(database));
    expect(before.secrets).toHaveLength(3);
    expect(before.workspace_keys).toHaveLength(1);

    const refused = servicesWith(database, providerFor(other));
    await expect(refused).rejects.toBeInstanceOf(StartupError);
    const error = (await refused.catch((e: unknown) => e)) as StartupError;
    expect(error.message).toContain(original.id);
    expect(error.message).toContain(other.id);
    expect(error.message).toMatch(/LATCHKEY_MASTER_KEY/);
    expect(error.message).not.toContain(base64Of(original));
    expect(error.message).not.toContain(base64Of(other));

    expect(await snapshot(ownerOf(database))).toEqual(before);
  });

  it('starts again with the right key: secrets created earlier still list and still decrypt', async () => {
    const before = await snapshot(ownerOf(database));
    // A new provider and new services: nothing cached from the first start.
    const svc = await servicesWith(database, providerFor(original));
    expect(await snapshot(ownerOf(database))).toEqual(before);

    const { caller, session } = clientFor(svc);
    session.token = sessionToken;
    const listed = await caller.secrets.list({ workspaceId });
    expect(listed.items.map((s) => s.id).sort()).toEqual([...secretIds].sort());

    const rows = await ownerDb(svc)
      .selectFrom('secrets as s')
      .innerJoin('workspace_keys as k', (join) =>
        join.onRef('k.workspace_id', '=', 's.workspace_id').onRef('k.version', '=', 's.key_version'),
      )
      .select([
        's.id',
        's.credential_type',
        's.public_fields',
        's.ciphertext',
        'k.version',
        'k.master_key_id',
        'k.wrapped_key',
      ])
      .where('s.workspace_id', '=', workspaceId)
      .execute();
    expect(rows).toHaveLength(3);
    for (const row of rows) {
      expect(row.master_key_id).toBe(original.id);
      const dataKey = await svc.keys.unwrap(workspaceId, row);
      const fields = decryptSecretFields(
        dataKey,
        {
          workspaceId,
          secretId: row.id,
          credentialType: row.credential_type,
          publicFields: row.public_fields,
        },
        Buffer.from(row.ciphertext),
      );
      const expected = FAKE_DATA[row.credential_type] as Record<string, string>;
      for (const [name, value] of Object.entries(fields)) expect(value).toBe(expected[name]);
    }
  });

  it('starts with a new active key while the old one is still loaded, and then needs both', async () => {
    const svc = await servicesWith(database, providerFor(other, original));
    const { caller, session } = clientFor(svc);
    session.token = sessionToken;
    expect((await caller.secrets.list({ workspaceId })).items).toHaveLength(3);
    const team = await caller.workspaces.create({ name: 'After rotation', plan: 'team' });
    const keys = await ownerDb(svc)
      .selectFrom('workspace_keys')
      .select(['workspace_id', 'master_key_id'])
      .execute();
    expect(keys.find((k) => k.workspace_id === team.id)?.master_key_id).toBe(other.id);

    // The old workspace's data key is still wrapped with the original key: starting with the new key alone is refused.
    const before = await snapshot(ownerOf(database));
    const refused = await servicesWith(database, providerFor(other)).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(StartupError);
    expect((refused as Error).message).toContain(original.id);
    expect(await snapshot(ownerOf(database))).toEqual(before);
  });

  // A newer version started with the wrong key must not migrate: the key check comes first.
  it('refuses a wrong key before migrating a database written by an older version', async () => {
    const older = await openTestDatabase();
    try {
      const [first] = Object.keys(migrations).sort();
      const migrator = new Migrator({
        db: ownerOf(older),
        provider: { getMigrations: async () => migrations },
        ...(older.schema ? { migrationTableSchema: older.schema } : {}),
      });
      const migrated = await migrator.migrateTo(first as string);
      if (migrated.error) throw migrated.error;
      const { keyId, wrapped } = await providerFor(original).wrapDataKey(generateDataKey(), 'ws-older');
      await ownerOf(older)
        .insertInto('workspaces')
        .values({ id: 'ws-older', name: 'Older', plan: 'personal' })
        .execute();
      await ownerOf(older)
        .insertInto('workspace_keys')
        .values({ workspace_id: 'ws-older', version: 1, master_key_id: keyId, wrapped_key: wrapped })
        .execute();
      const before = await snapshot(ownerOf(older));

      const refused = await servicesWith(older, providerFor(other)).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(StartupError);
      expect(await snapshot(ownerOf(older))).toEqual(before);
    } finally {
      await older.close();
    }
  });

  // Kysely must keep its migration tables in the configured schema, not find another schema's through the catalog.
  (backend === 'postgres' ? it : it.skip)(
    "migrates a fresh schema while another schema of the same database holds Latchkey's tables",
    async () => {
      const second = await openTestDatabase();
      try {
        const svc = await servicesWith(second, providerFor(testMasterKey()));
        const { caller } = await signedInUser(svc);
        expect(await caller.auth.me()).not.toBeNull();
      } finally {
        await second.close();
      }
    },
  );
});

describe('startLatchkey (the start command) with LATCHKEY_MASTER_KEY', () => {
  const original = testMasterKey();
  const other = testMasterKey();
  let tempDir: string;
  let config: Config;
  let seeded: DatabaseHandle & { schema?: string };
  let reopen: () => Promise<DatabaseHandle>;
  let seeder: { email: string; password: string; workspaceId: string };

  // As main.ts does: the master-key variables come from the environment (stubbed by each test) via config.ts.
  const withEnvironmentKeys = (c: Config): Config => ({
    ...c,
    masterKeyVariables: readConfig(process.env).masterKeyVariables,
  });

  beforeAll(async () => {
    tempDir = await mkdtemp(path.join(tmpdir(), 'latchkey-app-test-'));
    const base: Config = {
      ...readConfig({}),
      host: '127.0.0.1',
      port: 0,
      production: false,
      dataDir: path.join(tempDir, 'data'),
      databaseUrl: undefined,
      ownerDatabaseUrl: undefined,
      databaseSchema: undefined,
      keyDir: path.join(tempDir, 'keys'),
      webDir: path.join(tempDir, 'no-web'),
      logLevel: 'silent',
      trustProxy: false,
      secureCookies: false,
    };
    if (backend === 'postgres') {
      seeded = await openTestDatabase('postgres');
      config = {
        ...base,
        databaseUrl: await ensureTestLoginRole(),
        ownerDatabaseUrl: process.env.TEST_DATABASE_URL,
        databaseSchema: seeded.schema,
      };
      reopen = async () => seeded;
    } else {
      seeded = await openDatabase({ kind: 'pglite', dataDir: base.dataDir });
      config = base;
      reopen = () => openDatabase({ kind: 'pglite', dataDir: base.dataDir });
    }
    const svc = await servicesWith(seeded, providerFor(original));
    const http = await startHttpServer(svc);
    const { client, workspaceId, email, password } = await signUpOverHttp(http, 'Seeder');
    seeder = { email, password, workspaceId };
    await client.trpc.secrets.create.mutate({
      workspaceId,
      credentialType: 'slackBotToken',
      name: 'Seeded bot',
      data: FAKE_DATA.slackBotToken,
    });
    await http.close();
    if (backend === 'pglite') await seeded.close();
  });
  afterEach(() => {
    vi.unstubAllEnvs();
  });
  afterAll(async () => {
    if (backend === 'postgres') await seeded.close();
    await rm(tempDir, { recursive: true, force: true });
  });

  it('refuses to start with a different key, naming the expected key id, and frees the database', async () => {
    vi.stubEnv('LATCHKEY_MASTER_KEY', base64Of(other));
    vi.stubEnv('LATCHKEY_MASTER_KEY_FILE', '');
    vi.stubEnv('LATCHKEY_PREVIOUS_MASTER_KEYS', '');
    const db = await reopen();
    const before = await snapshot(db.db);
    if (backend === 'pglite') await db.close();

    const error = await startLatchkey(withEnvironmentKeys(config), false).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StartupError);
    expect((error as Error).message).toContain(original.id);

    // The refused start closed its database: it opens again, unchanged.
    const after = await reopen();
    expect(await snapshot(after.db)).toEqual(before);
    if (backend === 'pglite') await after.close();
  });

  it('starts with the right key and serves the secrets stored before', async () => {
    vi.stubEnv('LATCHKEY_MASTER_KEY', base64Of(original));
    vi.stubEnv('LATCHKEY_MASTER_KEY_FILE', '');
    vi.stubEnv('LATCHKEY_PREVIOUS_MASTER_KEYS', '');
    const running = await startLatchkey(withEnvironmentKeys(config), false);
    try {
      expect(running.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect((await fetch(`${running.url}/healthz`)).status).toBe(200);
      const signIn = await fetch(`${running.url}/trpc/auth.signIn`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: seeder.email, password: seeder.password }),
      });
      expect(signIn.status).toBe(200);
      const cookie = (signIn.headers.getSetCookie()[0] ?? '').split(';')[0] as string;
      const input = encodeURIComponent(JSON.stringify({ workspaceId: seeder.workspaceId }));
      const list = await fetch(`${running.url}/trpc/secrets.list?input=${input}`, { headers: { cookie } });
      expect(list.status).toBe(200);
      const body = (await list.json()) as { result: { data: { items: { name: string }[] } } };
      expect(body.result.data.items.map((s) => s.name)).toEqual(['Seeded bot']);
    } finally {
      await running.close();
    }
    const db = await reopen();
    const secrets = await ownerOf(db).selectFrom('secrets').select('name').execute();
    expect(secrets.map((s) => s.name)).toEqual(['Seeded bot']);
    if (backend === 'pglite') await db.close();
  });
});
