import { type Kysely, sql } from 'kysely';
import type pg from 'pg';
import { pendingMigrations } from './migrations.js';
import { loadPg } from './pg-client.js';
import { APP_ROLE } from './scope.js';

/** A database role setup that would let row-level security be bypassed, or no migrated schema: start-up stops. */
export class DatabaseRoleError extends Error {
  override name = 'DatabaseRoleError';
}

const SEE = 'see docs/operations.md "PostgreSQL roles"';
const ONE_URL_HINT = 'or leave LATCHKEY_OWNER_DATABASE_URL unset to run in the one-URL mode';

/**
 * Row-level security binds only roles that are not superuser, not BYPASSRLS and do not own the tables: the
 * application's login role must be such a role, and a member of `latchkey_app` (which holds the grants).
 */
export async function checkApplicationRole(
  // biome-ignore lint/suspicious/noExplicitAny: any schema
  db: Kysely<any>,
): Promise<void> {
  const { rows } = await sql<{
    role: string;
    superuser: boolean;
    bypass_rls: boolean;
    app_role_exists: boolean;
    member: boolean | null;
    owned: string | null;
  }>`
    select r.rolname as role, r.rolsuper as superuser, r.rolbypassrls as bypass_rls,
           exists (select from pg_roles where rolname = ${APP_ROLE}) as app_role_exists,
           case when exists (select from pg_roles where rolname = ${APP_ROLE})
                then pg_has_role(current_user, ${APP_ROLE}, 'MEMBER') end as member,
           (select string_agg(c.relname, ', ' order by c.relname) from pg_class c
              join pg_namespace n on n.oid = c.relnamespace
             where n.nspname = current_schema() and c.relkind in ('r', 'p')
               and pg_has_role(current_user, c.relowner, 'MEMBER')) as owned
    from pg_roles r where r.rolname = current_user`.execute(db);
  const row = rows[0];
  if (!row) throw new DatabaseRoleError('Could not read the database role of DATABASE_URL');
  const who = `DATABASE_URL connects as role '${row.role}'`;
  if (row.superuser) {
    throw new DatabaseRoleError(
      `${who}, a superuser: row-level security would not apply to it. Connect as a role that is not superuser, not BYPASSRLS and does not own the tables (${ONE_URL_HINT}); ${SEE}.`,
    );
  }
  if (row.bypass_rls) {
    throw new DatabaseRoleError(
      `${who}, which has BYPASSRLS: row-level security would not apply to it. Use a role without it; ${SEE}.`,
    );
  }
  if (row.owned) {
    throw new DatabaseRoleError(
      `${who}, which owns the tables (${row.owned.slice(0, 200)}): row-level security does not bind a table's owner. Run migrations as the owner (LATCHKEY_OWNER_DATABASE_URL) and the server as another role (${ONE_URL_HINT}); ${SEE}.`,
    );
  }
  if (!row.app_role_exists || !row.member) {
    throw new DatabaseRoleError(
      `${who}, which is not a member of '${APP_ROLE}' (the role the grants and policies name): run \`grant ${APP_ROLE} to ${row.role}\` as the owner; ${SEE}.`,
    );
  }
}

/** Without the owner's connection the server cannot migrate: every migration must already have run. */
export async function requireMigrated(
  // biome-ignore lint/suspicious/noExplicitAny: any schema
  db: Kysely<any>,
  schema?: string,
): Promise<void> {
  const pending = await pendingMigrations(db, schema);
  if (pending.length) {
    throw new DatabaseRoleError(
      `The database is not migrated (pending: ${pending.join(', ')}). DATABASE_URL's role may not migrate it (it neither owns the database nor is a superuser). Run \`pnpm migrate\` with LATCHKEY_OWNER_DATABASE_URL set to the tables' owner, start with LATCHKEY_OWNER_DATABASE_URL set, or give DATABASE_URL the database's owner (the one-URL mode); ${SEE}.`,
    );
  }
}

function isDuplicateRole(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  // 42710 duplicate_object, 23505 unique_violation (two sessions creating it at once), XX000 "tuple concurrently updated".
  return code === '42710' || code === '23505' || code === 'XX000';
}

/**
 * For tests, benchmarks and local set-ups with a superuser URL: makes sure `latchkey_app` and a login role that
 * is a member of it exist, and returns `url` with that login role as its user (trust or peer authentication;
 * production roles are created by the operator, docs/operations.md).
 */
export async function ensureLoginRole(ownerUrl: string, loginRole: string): Promise<string> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(loginRole))
    throw new Error('Login role must be a lower-case identifier');
  const pg = await loadPg();
  const client = new pg.Client({ connectionString: ownerUrl });
  await client.connect();
  try {
    for (const statement of [
      `create role ${APP_ROLE} nologin`,
      `create role ${loginRole} login`,
      `grant ${APP_ROLE} to ${loginRole}`,
    ]) {
      for (let attempt = 0; ; attempt += 1) {
        try {
          await client.query(statement);
          break;
        } catch (error) {
          if (isDuplicateRole(error) && statement.startsWith('create')) break;
          if (attempt < 5 && isDuplicateRole(error)) continue;
          throw error;
        }
      }
    }
  } finally {
    await client.end();
  }
  const url = new URL(ownerUrl);
  url.username = loginRole;
  url.password = '';
  return url.toString();
}

/** What start-up learned about DATABASE_URL's role when no owner URL was given. */
export interface LoginRole {
  role: string;
  /** Superuser, or a member of the owner of the database, of the schema in use or of its tables. */
  canMigrate: boolean;
}

/**
 * Reads whether DATABASE_URL's role may migrate on its own (the one-URL mode) or is a restricted login role
 * (the two-role mode with migrations run apart). `schema`: LATCHKEY_DATABASE_SCHEMA, when configured.
 */
export async function probeLoginRole(client: pg.ClientBase, schema: string | undefined): Promise<LoginRole> {
  const { rows } = await client.query<{ role: string; can_migrate: boolean }>(
    `with target as (select n.oid, n.nspowner from pg_namespace n where n.nspname = coalesce($1, current_schema()))
     select current_user as role,
            r.rolsuper
            or pg_has_role(current_user, d.datdba, 'MEMBER')
            or coalesce((select pg_has_role(current_user, t.nspowner, 'MEMBER') from target t), false)
            or coalesce((select pg_has_role(current_user, c.relowner, 'MEMBER') from pg_class c
                           join target t on t.oid = c.relnamespace where c.relname = 'kysely_migration'), false)
              as can_migrate
     from pg_roles r, pg_database d where r.rolname = current_user and d.datname = current_database()`,
    [schema ?? null],
  );
  const row = rows[0];
  if (!row) throw new DatabaseRoleError('Could not read the database role of DATABASE_URL');
  return { role: row.role, canMigrate: row.can_migrate };
}

/** Whether this session may `SET ROLE latchkey_app`: yes, no such role yet, or not a member. */
async function canSwitchTo(client: pg.ClientBase, appRole: string): Promise<'yes' | 'missing' | 'denied'> {
  try {
    await client.query(`set role ${appRole}`);
    await client.query('reset role');
    return 'yes';
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === '22023') return 'missing';
    if (code === '42501') return 'denied';
    throw error;
  }
}

/**
 * The one-URL mode: DATABASE_URL's role migrates, and the application's statements run as `latchkey_app`
 * (`SET ROLE`). Creates that role when it does not exist and grants it to `role` when it is not a member
 * (only what the role may do); refuses, saying what to run, when it still cannot switch. `appRole`: another
 * name only for tests (latchkey_app is cluster-wide, shared by concurrent runs, and never dropped).
 */
export async function ensureAppRoleSwitch(
  client: pg.ClientBase,
  role: string,
  appRole: string = APP_ROLE,
): Promise<void> {
  let state = await canSwitchTo(client, appRole);
  let denied: string | undefined;
  const attempt = async (statement: string) => {
    try {
      await client.query(statement);
    } catch (error) {
      if (!isDuplicateRole(error)) denied = (error as Error).message;
    }
    state = await canSwitchTo(client, appRole);
  };
  if (state === 'missing') await attempt(`create role ${appRole} nologin`);
  // A plain lower-case name as it is (the refusal shows it), anything else quoted.
  const ident = /^[a-z_][a-z0-9_]*$/.test(role) ? role : client.escapeIdentifier(role);
  if (state === 'denied') await attempt(`grant ${appRole} to ${ident}`);
  if (state === 'yes') return;
  throw new DatabaseRoleError(
    `DATABASE_URL connects as role '${role}', which may migrate the database but cannot switch to '${appRole}' (the role the grants and policies name)${denied ? `: ${denied}` : ''}. Run \`create role ${appRole} nologin\` and \`grant ${appRole} to ${ident}\` once as a superuser, or use the two-role setup; ${SEE}.`,
  );
}
