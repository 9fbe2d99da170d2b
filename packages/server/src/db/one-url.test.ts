import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServices } from '../app.js';
import { LocalKeyProvider } from '../crypto/index.js';
import type { Services } from '../services.js';
import { createSecret } from '../testing/fixtures.js';
import {
  asSuperuser,
  type FreshDatabase,
  freshDatabase,
  superuserQuery,
  testUrl,
} from '../testing/fresh-database.js';
import { TEST_SCRYPT, teamWorkspace, testBackend, testMasterKey } from '../testing/harness.js';
import { type DatabaseHandle, databaseMode, openDatabase } from './connect.js';
import { pendingMigrations, WORKSPACE_SCOPED_TABLES } from './migrations.js';
import { ensureAppRoleSwitch } from './roles.js';
import { APP_ROLE, refuseRoleChange, scopeIndependent, withDbScope } from './scope.js';

// Issue 15, item 2: with only DATABASE_URL naming a role that may migrate (here the superuser, on an empty
// database of its own), every application statement runs as latchkey_app, so row-level security binds as in
// the two-role setup of row-level-security.test.ts — and no application statement can switch the role back.

const backend = testBackend();

describe.runIf(backend === 'postgres')('the one-URL mode (PostgreSQL, only DATABASE_URL)', () => {
  let fresh: FreshDatabase;
  let database: DatabaseHandle;
  let svc: Services;
  let a: Awaited<ReturnType<typeof populated>>;
  let b: Awaited<ReturnType<typeof populated>>;

  async function populated(label: string) {
    const team = await teamWorkspace(svc);
    const secret = await createSecret(team.member, team.workspaceId, 'sendgridApiKey', `${label} key`);
    return { ...team, secret };
  }

  beforeAll(async () => {
    fresh = await freshDatabase('oneurl');
    database = await openDatabase({ kind: 'postgres', url: fresh.url, poolSize: 3 });
    const key = testMasterKey();
    svc = await createServices({
      database,
      keyProvider: new LocalKeyProvider({ active: key, all: [key] }),
      passwordCost: TEST_SCRYPT,
    });
    a = await populated('A');
    b = await populated('B');
  });
  afterAll(async () => {
    await database?.close();
    await fresh?.drop();
  });

  const currentUser = async () =>
    (await sql<{ role: string }>`select current_user as role`.execute(svc.db)).rows[0]?.role;

  it('is the one-URL mode: the URL’s own role migrated the empty database', async () => {
    expect(databaseMode(database)).toBe('one-URL');
    expect(database.oneUrlRole).toBe('postgres');
    if (!database.owner) throw new Error('the one-URL mode has an owner connection');
    expect(await pendingMigrations(database.owner)).toEqual([]);
    const owner = await sql<{ role: string }>`select current_user as role`.execute(database.owner);
    expect(owner.rows[0]?.role).toBe('postgres');
  });

  it('runs every statement as latchkey_app: unscoped, scoped, scope-independent, in transactions, on every pooled connection', async () => {
    // More at once than the pool holds, so new connections are opened while others are in use.
    const roles = await Promise.all(
      Array.from({ length: 8 }, (_, i) => {
        const run = [
          () => currentUser(),
          () => withDbScope({ workspaceId: a.workspaceId }, currentUser),
          () => scopeIndependent(currentUser),
          () =>
            svc.db
              .transaction()
              .execute(
                async (trx) =>
                  (await sql<{ role: string }>`select current_user as role`.execute(trx)).rows[0]?.role,
              ),
        ][i % 4] as () => Promise<string | undefined>;
        return run();
      }),
    );
    expect(roles).toEqual(Array(8).fill(APP_ROLE));
  });

  it('a statement with no scope sees no workspace-scoped row (the superuser’s URL, yet row-level security binds)', async () => {
    for (const table of WORKSPACE_SCOPED_TABLES) {
      const column = table === 'workspaces' ? 'id' : 'workspace_id';
      const { rows } = await sql`select ${sql.ref(column)} from ${sql.table(table)}`.execute(svc.db);
      expect(rows, table).toEqual([]);
    }
  });

  it('a cross-workspace read is refused: A’s scope sees A’s rows and nothing of B, with no filter in the query', async () => {
    await withDbScope({ workspaceId: a.workspaceId, userId: a.owner.user.id }, async () => {
      const { rows } = await sql<{ workspace_id: string }>`select workspace_id from secrets`.execute(svc.db);
      expect(rows.length).toBeGreaterThan(0);
      expect(new Set(rows.map((r) => r.workspace_id))).toEqual(new Set([a.workspaceId]));
      const byId = await svc.db.selectFrom('secrets').select('id').where('id', '=', b.secret.id).execute();
      expect(byId).toEqual([]);
      const updated = await svc.db
        .updateTable('secrets')
        .set({ name: 'taken over' })
        .where('id', '=', b.secret.id)
        .executeTakeFirst();
      expect(updated.numUpdatedRows).toBe(0n);
    });
    const write = withDbScope({ workspaceId: a.workspaceId }, () =>
      svc.db
        .insertInto('audit_events')
        .values({
          id: `one-url-${randomBytes(4).toString('hex')}`,
          workspace_id: b.workspaceId,
          action: 'secret.created',
          target_type: 'secret',
          target_id: b.secret.id,
          target_name: 'planted',
          details: '{}',
        })
        .execute(),
    );
    await expect(write).rejects.toThrow(/row-level security/);
    // The tables' owner (the same URL, unswitched) sees both: the rows the checks above rely on are there.
    const all = await database.owner?.selectFrom('secrets').select('workspace_id').distinct().execute();
    expect(new Set(all?.map((r) => r.workspace_id))).toEqual(new Set([a.workspaceId, b.workspaceId]));
    const still = await database.owner
      ?.selectFrom('secrets')
      .select('name')
      .where('id', '=', b.secret.id)
      .executeTakeFirstOrThrow();
    expect(still?.name).toBe('B key');
  });

  it('refuses an application statement that could switch the role back, and the role stays switched', async () => {
    const attempts = [
      'reset role',
      'RESET ROLE',
      'set role postgres',
      'set session role none',
      'set local role none',
      'set "role" = postgres',
      '/* a comment */ reset role',
      'set session authorization postgres',
      'reset all',
      'discard all',
      "select set_config('role', 'none', false)",
      "select pg_catalog.set_config('role', 'none', true)",
      'select 1; reset role',
      "do $$ begin execute 'reset role'; end $$",
      'create function pg_temp.f() returns void language sql as $$ select 1 $$',
    ];
    for (const attempt of attempts) {
      await expect(sql.raw(attempt).execute(svc.db), attempt).rejects.toThrow(
        /Refused on the application connection/,
      );
      await expect(
        withDbScope({ workspaceId: a.workspaceId }, () => sql.raw(attempt).execute(svc.db)),
        attempt,
      ).rejects.toThrow(/Refused on the application connection/);
      await expect(
        svc.db.transaction().execute((trx) => sql.raw(attempt).execute(trx)),
        attempt,
      ).rejects.toThrow(/Refused on the application connection/);
    }
    expect(await currentUser()).toBe(APP_ROLE);
    const { rows } = await sql`select id from secrets`.execute(svc.db);
    expect(rows).toEqual([]);
  });

  it('lets the application’s own statements through (an update of a column named role, the scope’s set_config)', () => {
    expect(() => refuseRoleChange(`update "memberships" set "role" = $1 where "user_id" = $2`)).not.toThrow();
    expect(() =>
      refuseRoleChange(`with x as (select 1) select set_config('latchkey.workspace_id', $1, true) from x`),
    ).not.toThrow();
    expect(() => refuseRoleChange('  (select 1) union (select 2);  ')).not.toThrow();
  });
});

describe.runIf(backend === 'postgres')('the one-URL mode as a database owner that is not superuser', () => {
  const suffix = `${process.pid}_${randomBytes(3).toString('hex')}`;
  const ownerRole = `latchkey_t_dbowner_${suffix}`;
  const appRole = `latchkey_t_app_${suffix}`;
  let fresh: FreshDatabase;

  beforeAll(async () => {
    await asSuperuser([`create role ${ownerRole} login createrole`]);
    fresh = await freshDatabase('dbowner', ownerRole);
  });
  afterAll(async () => {
    await fresh?.drop();
    await asSuperuser([`drop role if exists ${appRole}`, `drop role if exists ${ownerRole}`]);
  });

  it('creates the application role when it does not exist and grants it to itself, then can switch', async () => {
    // latchkey_app is shared by every run on this cluster, so the creation is checked under another name.
    const client = new pg.Client({ connectionString: testUrl({ user: ownerRole, database: fresh.name }) });
    await client.connect();
    try {
      await ensureAppRoleSwitch(client, ownerRole, appRole);
      await client.query(`set role ${appRole}`);
      const { rows } = await client.query<{ role: string }>('select current_user as role');
      expect(rows[0]?.role).toBe(appRole);
    } finally {
      await client.end();
    }
    const { rows } = await superuserQuery<{ login: boolean }>(
      `select rolcanlogin as login from pg_roles where rolname = '${appRole}'`,
    );
    expect(rows).toEqual([{ login: false }]);
  });

  it('migrates its database and runs the application as latchkey_app, having granted itself membership', async () => {
    const database = await openDatabase({
      kind: 'postgres',
      url: testUrl({ user: ownerRole, database: fresh.name }),
      poolSize: 2,
    });
    try {
      expect(database.oneUrlRole).toBe(ownerRole);
      const key = testMasterKey();
      const services = await createServices({
        database,
        keyProvider: new LocalKeyProvider({ active: key, all: [key] }),
        passwordCost: TEST_SCRYPT,
      });
      const { rows } = await sql<{ role: string }>`select current_user as role`.execute(services.db);
      expect(rows[0]?.role).toBe(APP_ROLE);
      const owned = await superuserQuery<{ owner: string }>(
        `select tableowner as owner from pg_tables where schemaname = 'public' and tablename = 'secrets'`,
        fresh.name,
      );
      expect(owned.rows).toEqual([{ owner: ownerRole }]);
    } finally {
      await database.close();
    }
    const member = await superuserQuery<{ member: boolean }>(
      `select pg_has_role('${ownerRole}', '${APP_ROLE}', 'MEMBER') as member`,
    );
    expect(member.rows).toEqual([{ member: true }]);
  });
});
