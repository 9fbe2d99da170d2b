import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createServices } from '../app.js';
import { LocalKeyProvider } from '../crypto/index.js';
import { createSecret, workflowWithNodes } from '../testing/fixtures.js';
import {
  createTestApp,
  ensureTestLoginRole,
  OAUTH2_FAKE_DATA,
  TEST_LOGIN_ROLE,
  TEST_SCRYPT,
  type TestApp,
  teamWorkspace,
  testBackend,
  testMasterKey,
} from '../testing/harness.js';
import {
  authedProcedure,
  createCallerFactory,
  router,
  workflowProcedure,
  workspaceProcedure,
} from '../trpc/trpc.js';
import { openDatabase } from './connect.js';
import { WORKSPACE_SCOPED_TABLES } from './migrations.js';
import { DatabaseRoleError } from './roles.js';
import { APP_ROLE, currentDbScope, withDbScope } from './scope.js';

// Issue 6, item 5: row-level security is a second wall behind every query's own workspace filter. These tests
// run queries that deliberately have NO workspace filter (the bug the wall is for) through the application's
// own connection, and check that only the scoped workspace's rows exist for them.

const backend = testBackend();
let app: TestApp;
let a: Awaited<ReturnType<typeof populated>>;
let b: Awaited<ReturnType<typeof populated>>;

async function populated(label: string) {
  const team = await teamWorkspace(app.svc);
  const secret = await createSecret(team.member, team.workspaceId, 'sendgridApiKey', `${label} key`);
  const { workflow } = await workflowWithNodes(team.owner, team.workspaceId, `${label} flow`, [
    { name: `${label} send`, nodeType: 'sendgrid', secretId: secret.id },
  ]);
  await team.owner.caller.workspaces.invite({
    workspaceId: team.workspaceId,
    email: `${label.toLowerCase()}-pending@example.test`,
    role: 'member',
  });
  // A consent in flight (oauth_states): connecting sends nothing anywhere until the callback.
  const connection = await team.owner.caller.secrets.connect({
    workspaceId: team.workspaceId,
    credentialType: 'httpOAuth2AuthorizationCode',
    name: `${label} connection`,
    data: OAUTH2_FAKE_DATA.httpOAuth2AuthorizationCode,
  });
  return { ...team, secret, workflow, connectionId: connection.secretId };
}

beforeAll(async () => {
  app = await createTestApp();
  a = await populated('A');
  b = await populated('B');
});
afterAll(() => app.close());

/** Every row of a table the application's connection can see, with no filter of its own. */
async function visible(table: string): Promise<{ workspace: string }[]> {
  const column = table === 'workspaces' ? 'id' : 'workspace_id';
  const { rows } = await sql<{ workspace: string }>`
    select ${sql.ref(column)} as workspace from ${sql.table(table)}`.execute(app.svc.db);
  return rows;
}

describe('row-level security on the application connection', () => {
  it('the owner sees both workspaces (the data the checks below rely on is there)', async () => {
    for (const table of WORKSPACE_SCOPED_TABLES) {
      const column = table === 'workspaces' ? 'id' : 'workspace_id';
      const { rows } = await sql<{ workspace: string }>`
        select distinct ${sql.ref(column)} as workspace from ${sql.table(table)}`.execute(app.owner);
      const workspaces = rows.map((r) => r.workspace);
      expect(workspaces, table).toContain(a.workspaceId);
      expect(workspaces, table).toContain(b.workspaceId);
    }
  });

  it('a scope without a workspace sees no workspace-scoped row at all', async () => {
    for (const table of WORKSPACE_SCOPED_TABLES) {
      expect(await withDbScope({}, () => visible(table)), table).toEqual([]);
    }
  });

  if (backend === 'postgres') {
    it('on PostgreSQL, a statement with no scope at all sees no workspace-scoped row either', async () => {
      for (const table of WORKSPACE_SCOPED_TABLES) expect(await visible(table), table).toEqual([]);
    });
  }

  it('a scope of workspace A sees A’s rows and nothing of B, with no filter in the query', async () => {
    await withDbScope({ workspaceId: a.workspaceId }, async () => {
      for (const table of WORKSPACE_SCOPED_TABLES) {
        const rows = await visible(table);
        expect(rows.length, table).toBeGreaterThan(0);
        expect(new Set(rows.map((r) => r.workspace)), table).toEqual(new Set([a.workspaceId]));
      }
    });
  });

  it('runs as the restricted role inside a scope (PGlite switches role for every scoped statement)', async () => {
    const { rows } = await withDbScope({ workspaceId: a.workspaceId }, () =>
      sql<{ role: string; workspace: string }>`
        select current_user as role, current_setting('latchkey.workspace_id') as workspace`.execute(
        app.svc.db,
      ),
    );
    expect(rows[0]).toEqual({ role: 'latchkey_app', workspace: a.workspaceId });
    // A statement without a scope clears it first: the next one on the same connection starts clean.
    const after = await sql<{ workspace: string | null }>`
      select nullif(current_setting('latchkey.workspace_id', true), '') as workspace`.execute(app.svc.db);
    expect(after.rows[0]?.workspace ?? null).toBeNull();
  });

  it('cannot read, change or delete B’s secret by its id from A’s scope', async () => {
    await withDbScope({ workspaceId: a.workspaceId, userId: a.owner.user.id }, async () => {
      const read = await app.svc.db
        .selectFrom('secrets')
        .select('id')
        .where('id', '=', b.secret.id)
        .execute();
      expect(read).toEqual([]);
      const updated = await app.svc.db
        .updateTable('secrets')
        .set({ name: 'taken over' })
        .where('id', '=', b.secret.id)
        .executeTakeFirst();
      expect(updated.numUpdatedRows).toBe(0n);
      const deleted = await app.svc.db.deleteFrom('secrets').where('id', '=', b.secret.id).executeTakeFirst();
      expect(deleted.numDeletedRows).toBe(0n);
      const nodes = await app.svc.db
        .updateTable('workflow_nodes')
        .set({ secret_id: null })
        .where('workspace_id', '=', b.workspaceId)
        .executeTakeFirst();
      expect(nodes.numUpdatedRows).toBe(0n);
    });
    const still = await app.owner
      .selectFrom('secrets')
      .select('name')
      .where('id', '=', b.secret.id)
      .executeTakeFirstOrThrow();
    expect(still.name).toBe('B key');
  });

  it('cannot write a row into B from A’s scope (WITH CHECK)', async () => {
    const write = withDbScope({ workspaceId: a.workspaceId, userId: a.owner.user.id }, () =>
      app.svc.db
        .insertInto('audit_events')
        .values({
          id: `rls-${randomBytes(4).toString('hex')}`,
          workspace_id: b.workspaceId,
          actor_id: a.owner.user.id,
          action: 'secret.created',
          target_type: 'secret',
          target_id: null,
          target_name: null,
          details: '{}',
        })
        .execute(),
    );
    await expect(write).rejects.toThrow(/row-level security/);
    const { rows } = await sql<{ n: string }>`
      select count(*)::text as n from audit_events where actor_id = ${a.owner.user.id}
        and workspace_id = ${b.workspaceId}`.execute(app.owner);
    expect(rows[0]?.n).toBe('0');
  });

  it('shows a user their own memberships and workspaces across workspaces, and no one else’s', async () => {
    const rows = await withDbScope({ userId: a.member.user.id }, () =>
      app.svc.db.selectFrom('memberships').select(['workspace_id', 'user_id']).execute(),
    );
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.user_id === a.member.user.id)).toBe(true);
    const workspaces = await withDbScope({ userId: a.member.user.id }, () =>
      app.svc.db.selectFrom('workspaces').select('id').execute(),
    );
    expect(workspaces.map((w) => w.id)).toContain(a.workspaceId);
    expect(workspaces.map((w) => w.id)).not.toContain(b.workspaceId);
  });

  it('the resolve function scopes itself: a secret only with its own workspace', async () => {
    const resolve = (workspaceId: string, secretId: string) =>
      sql<{ id: string }>`select id from latchkey_resolve_secret(${workspaceId}, ${secretId})`.execute(
        app.svc.db,
      );
    expect((await resolve(b.workspaceId, b.secret.id)).rows.map((r) => r.id)).toEqual([b.secret.id]);
    expect((await resolve(a.workspaceId, b.secret.id)).rows).toEqual([]);
  });

  it('the workflow lookup answers a member only', async () => {
    const lookup = async (userId: string) =>
      (
        await sql<{ ws: string | null }>`
          select latchkey_workflow_workspace(${b.workflow.id}, ${userId}) as ws`.execute(app.svc.db)
      ).rows[0]?.ws ?? null;
    expect(await lookup(b.member.user.id)).toBe(b.workspaceId);
    expect(await lookup(a.owner.user.id)).toBeNull();
  });

  it('a request through the API is scoped: another workspace’s secret id is NOT_FOUND', async () => {
    const error = await a.owner.caller.secrets
      .delete({ workspaceId: a.workspaceId, secretId: b.secret.id })
      .catch((e: { code?: string }) => e);
    expect((error as { code?: string }).code).toBe('NOT_FOUND');
  });
});

describe('the request scope and the owner-rights functions (issue 12, item 5)', () => {
  // A procedure of the real middleware that reports the scope it runs in and what a query with no filter of its
  // own sees there: with another workspace's scope it would see that workspace's secrets.
  // One probe per scope a procedure can state: the user's only, a workspace's, a workflow's.
  const probe = (procedure: typeof authedProcedure) =>
    procedure
      .input(z.object({ workspaceId: z.string().optional(), workflowId: z.string().optional() }))
      .query(async ({ ctx }) => {
        const { rows } = await sql<{ id: string }>`select id from secrets`.execute(ctx.svc.db);
        return { workspaceId: currentDbScope()?.workspaceId, secretIds: rows.map((r) => r.id).sort() };
      });
  const probeRouter = router({
    user: probe(authedProcedure),
    workspace: probe(workspaceProcedure),
    workflow: probe(workflowProcedure),
  });
  const probeAs = (token: string | undefined) => {
    const caller = createCallerFactory(probeRouter)({
      svc: app.svc,
      sessionToken: token,
      setSession() {},
      clearSession() {},
    });
    return (input: { workspaceId?: string; workflowId?: string }) =>
      input.workspaceId
        ? caller.workspace(input)
        : input.workflowId
          ? caller.workflow(input)
          : caller.user(input);
  };

  it('a non-member’s call never runs in the scope of the workspace (or workflow) it names', async () => {
    const outsider = probeAs(a.owner.session.token);
    for (const input of [{ workspaceId: b.workspaceId }, { workflowId: b.workflow.id }]) {
      expect(await outsider(input), JSON.stringify(input)).toEqual({ workspaceId: undefined, secretIds: [] });
    }
  });

  it('a member’s call runs in the scope of the workspace or workflow it names', async () => {
    const member = probeAs(b.member.session.token);
    for (const input of [{ workspaceId: b.workspaceId }, { workflowId: b.workflow.id }]) {
      expect(await member(input), JSON.stringify(input)).toEqual({
        workspaceId: b.workspaceId,
        secretIds: [b.secret.id, b.connectionId].sort(),
      });
    }
    expect(await member({})).toEqual({ workspaceId: undefined, secretIds: [] });
    // A procedure that states no workspace scope gets none, whatever its input carries.
    const caller = createCallerFactory(probeRouter)({
      svc: app.svc,
      sessionToken: b.member.session.token,
      setSession() {},
      clearSession() {},
    });
    expect(await caller.user({ workspaceId: b.workspaceId })).toEqual({
      workspaceId: undefined,
      secretIds: [],
    });
  });

  const FUNCTIONS = [
    'latchkey_resolve_secret(text, text)',
    'latchkey_master_key_ids()',
    'latchkey_invite_workspace(text)',
    'latchkey_invite_lookup(text)',
    'latchkey_workflow_workspace(text, text)',
    'latchkey_member_workspace(text, text)',
    'latchkey_oauth_state_workspace(text)',
  ];
  const OUTSIDER = 'latchkey_test_fn_outsider';

  beforeAll(async () => {
    // Roles are cluster-wide on PostgreSQL: another test run may be creating the same one.
    await sql
      .raw(`do $$ begin
        if not exists (select from pg_roles where rolname = '${OUTSIDER}') then create role ${OUTSIDER} nologin; end if;
      exception when duplicate_object or unique_violation then null;
      end $$`)
      .execute(app.owner);
    await sql
      .raw(`do $$ begin execute format('grant usage on schema %I to ${OUTSIDER}', current_schema()); end $$`)
      .execute(app.owner);
  });

  it('only latchkey_app may execute the functions: PUBLIC and any other role may not', async () => {
    for (const fn of FUNCTIONS) {
      const { rows } = await sql<{ app: boolean; outsider: boolean; public: boolean }>`
        select has_function_privilege(${APP_ROLE}, ${fn}, 'execute') as app,
               has_function_privilege(${OUTSIDER}, ${fn}, 'execute') as outsider,
               exists (select from pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) acl
                        where p.oid = ${fn}::regprocedure and acl.grantee = 0
                          and acl.privilege_type = 'EXECUTE') as public`.execute(app.owner);
      expect(rows[0], fn).toEqual({ app: true, outsider: false, public: false });
    }
    // And no function of the schema at all is left executable by PUBLIC.
    const { rows } = await sql<{ name: string }>`
      select p.proname as name from pg_proc p
       where p.pronamespace = current_schema()::regnamespace
         and exists (select from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) acl
                      where acl.grantee = 0 and acl.privilege_type = 'EXECUTE')`.execute(app.owner);
    expect(rows.map((r) => r.name)).toEqual([]);
  });

  it('a role that is not latchkey_app gets "permission denied" calling them', async () => {
    const calls = [
      sql`select * from latchkey_resolve_secret(${b.workspaceId}, ${b.secret.id})`,
      sql`select latchkey_master_key_ids()`,
      sql`select latchkey_invite_workspace('no-such-hash')`,
      sql`select * from latchkey_invite_lookup('no-such-hash')`,
      sql`select latchkey_workflow_workspace(${b.workflow.id}, ${b.owner.user.id})`,
      sql`select latchkey_member_workspace(${b.workspaceId}, ${b.owner.user.id})`,
      sql`select latchkey_oauth_state_workspace('no-such-hash')`,
    ];
    for (const call of calls) {
      const error = await app.owner
        .transaction()
        .execute(async (trx) => {
          await sql.raw(`set local role ${OUTSIDER}`).execute(trx);
          await call.execute(trx);
        })
        .catch((e: unknown) => e);
      expect(String((error as Error)?.message)).toMatch(/permission denied for function latchkey_/);
    }
    // The application role may (through its scope, as the server calls them).
    const { rows } = await withDbScope({ workspaceId: b.workspaceId }, () =>
      sql<{
        ws: string | null;
      }>`select latchkey_member_workspace(${b.workspaceId}, ${b.owner.user.id}) as ws`.execute(app.svc.db),
    );
    expect(rows[0]?.ws).toBe(b.workspaceId);
  });
});

describe.runIf(backend === 'postgres')(
  'start-up refuses a database role that row-level security would not bind',
  () => {
    const ownerUrl = process.env.TEST_DATABASE_URL as string;
    const key = testMasterKey();
    const schema = `t_rls_${randomBytes(5).toString('hex')}`;
    const roleUrl = (role: string) => {
      const url = new URL(ownerUrl);
      url.username = role;
      url.password = '';
      return url.toString();
    };
    async function admin(statements: string[]) {
      const client = new pg.Client({ connectionString: ownerUrl });
      await client.connect();
      try {
        for (const statement of statements) {
          await client.query(statement).catch((error: { code?: string }) => {
            if (error.code !== '42710') throw error; // the role exists already (another run)
          });
        }
      } finally {
        await client.end();
      }
    }
    async function start(url: string, withOwner = true) {
      const database = await openDatabase({
        kind: 'postgres',
        url,
        ownerUrl: withOwner ? ownerUrl : undefined,
        schema,
        poolSize: 1,
      });
      try {
        await createServices({
          database,
          keyProvider: new LocalKeyProvider({ active: key, all: [key] }),
          passwordCost: TEST_SCRYPT,
        });
      } finally {
        await database.close();
      }
    }

    beforeAll(async () => {
      await ensureTestLoginRole();
      await admin([
        'create role latchkey_test_bypass login bypassrls',
        'grant latchkey_app to latchkey_test_bypass',
        'create role latchkey_test_outsider login',
        'create role latchkey_test_tableowner login',
        'grant latchkey_app to latchkey_test_tableowner',
      ]);
    });
    afterAll(() => admin([`drop schema if exists ${schema} cascade`]));

    it('refuses a superuser, naming the role and the reason', async () => {
      await expect(start(ownerUrl)).rejects.toThrow(
        /DATABASE_URL connects as role 'postgres', a superuser: row-level security would not apply/,
      );
    });

    it('refuses a role with BYPASSRLS', async () => {
      await expect(start(roleUrl('latchkey_test_bypass'))).rejects.toThrow(DatabaseRoleError);
      await expect(start(roleUrl('latchkey_test_bypass'))).rejects.toThrow(/BYPASSRLS/);
    });

    it('refuses a role outside latchkey_app', async () => {
      await expect(start(roleUrl('latchkey_test_outsider'))).rejects.toThrow(
        /not a member of 'latchkey_app'/,
      );
    });

    it('refuses the owner of the tables', async () => {
      await admin([`alter table ${schema}.secrets owner to latchkey_test_tableowner`]);
      try {
        await expect(start(roleUrl('latchkey_test_tableowner'))).rejects.toThrow(
          /owns the tables \(secrets\): row-level security does not bind a table's owner/,
        );
      } finally {
        await admin([`alter table ${schema}.secrets owner to postgres`]);
      }
    });

    it('starts as the restricted login role', async () => {
      await expect(start(roleUrl(TEST_LOGIN_ROLE))).resolves.toBeUndefined();
    });

    it('without the owner’s connection, refuses an unmigrated schema and names the command', async () => {
      const fresh = `t_rls_${randomBytes(5).toString('hex')}`;
      await admin([`create schema ${fresh}`, `grant usage on schema ${fresh} to latchkey_app`]);
      const database = await openDatabase({ kind: 'postgres', url: roleUrl(TEST_LOGIN_ROLE), schema: fresh });
      try {
        await expect(
          createServices({
            database,
            keyProvider: new LocalKeyProvider({ active: key, all: [key] }),
            passwordCost: TEST_SCRYPT,
          }),
        ).rejects.toThrow(/The database is not migrated .*pnpm migrate/);
      } finally {
        await database.close();
        await admin([`drop schema if exists ${fresh} cascade`]);
      }
    });
  },
);
