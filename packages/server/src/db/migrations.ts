import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';
import { APP_ROLE } from './scope.js';

/**
 * Runs a script statement by statement: PGlite's query path (extended protocol) takes one statement at a time.
 * Statements are separated by a semicolon at the end of a line.
 */
async function runScript(db: Kysely<unknown>, script: string): Promise<void> {
  for (const statement of script.split(/;\s*\n/)) {
    if (statement.trim()) await sql.raw(statement).execute(db);
  }
}

// One set of migrations for PGlite and PostgreSQL: plain SQL both understand.
const initial: Migration = {
  async up(db: Kysely<unknown>) {
    await runScript(
      db,
      `
      create table users (
        id text primary key,
        email text not null unique,
        name text not null,
        password_hash text not null,
        created_at timestamptz(3) not null default now()
      );
      create table sessions (
        token_hash text primary key,
        user_id text not null references users(id) on delete cascade,
        created_at timestamptz(3) not null default now(),
        expires_at timestamptz(3) not null
      );
      create index sessions_user_idx on sessions(user_id);
      create table workspaces (
        id text primary key,
        name text not null,
        plan text not null check (plan in ('personal', 'team')),
        created_at timestamptz(3) not null default now()
      );
      create table memberships (
        workspace_id text not null references workspaces(id) on delete cascade,
        user_id text not null references users(id) on delete cascade,
        role text not null check (role in ('owner', 'admin', 'member')),
        joined_at timestamptz(3) not null default now(),
        primary key (workspace_id, user_id)
      );
      create index memberships_user_idx on memberships(user_id);
      create table invites (
        id text primary key,
        workspace_id text not null references workspaces(id) on delete cascade,
        email text not null,
        role text not null check (role in ('owner', 'admin', 'member')),
        token_hash text not null unique,
        invited_by text not null references users(id) on delete cascade,
        created_at timestamptz(3) not null default now(),
        expires_at timestamptz(3) not null,
        accepted_at timestamptz(3)
      );
      create table workspace_keys (
        workspace_id text not null references workspaces(id) on delete cascade,
        version integer not null,
        master_key_id text not null,
        wrapped_key bytea not null,
        created_at timestamptz(3) not null default now(),
        primary key (workspace_id, version)
      );
      create table secrets (
        id text primary key,
        workspace_id text not null references workspaces(id) on delete cascade,
        name text not null,
        integration_id text not null,
        node_type text not null,
        credential_type text not null,
        public_fields jsonb not null,
        ciphertext bytea not null,
        key_version integer not null,
        created_by text not null references users(id),
        created_at timestamptz(3) not null default now(),
        updated_at timestamptz(3) not null default now(),
        last_used_at timestamptz(3),
        unique (workspace_id, credential_type, name),
        foreign key (workspace_id, key_version) references workspace_keys(workspace_id, version)
      );
      create index secrets_list_idx on secrets(workspace_id, created_at desc, id desc);
      create index secrets_node_type_idx on secrets(workspace_id, node_type, name, id);
      create index secrets_creator_idx on secrets(workspace_id, created_by, created_at desc, id desc);
      create table workflows (
        id text primary key,
        workspace_id text not null references workspaces(id) on delete cascade,
        name text not null,
        created_at timestamptz(3) not null default now(),
        updated_at timestamptz(3) not null default now()
      );
      create index workflows_workspace_idx on workflows(workspace_id, created_at);
      create table workflow_nodes (
        id text primary key,
        workflow_id text not null references workflows(id) on delete cascade,
        workspace_id text not null references workspaces(id) on delete cascade,
        name text not null,
        node_type text not null,
        params jsonb not null,
        -- A deleted secret leaves its nodes without a credential (never pointing at a missing row).
        secret_id text references secrets(id) on delete set null,
        lost_secret_name text,
        position integer not null,
        created_at timestamptz(3) not null default now(),
        updated_at timestamptz(3) not null default now()
      );
      create index workflow_nodes_workflow_idx on workflow_nodes(workflow_id, position);
      create index workflow_nodes_secret_idx on workflow_nodes(secret_id) where secret_id is not null;
      create table audit_events (
        seq bigserial primary key,
        id text not null unique,
        workspace_id text not null references workspaces(id) on delete cascade,
        actor_id text references users(id) on delete set null,
        action text not null,
        target_type text not null,
        target_id text,
        target_name text,
        details jsonb not null default '{}',
        created_at timestamptz(3) not null default now()
      );
      create index audit_events_workspace_idx on audit_events(workspace_id, seq desc);
    `,
    );
  },
};

const credentialTests: Migration = {
  async up(db: Kysely<unknown>) {
    await runScript(
      db,
      `
      alter table secrets add column last_test_ok boolean;
      alter table secrets add column last_test_message text;
      alter table secrets add column last_tested_at timestamptz(3);
    `,
    );
  },
};

// Sign-in rate limiting (identity/rate-limit.ts): one counter per hashed account email or client address.
const signInAttempts: Migration = {
  async up(db: Kysely<unknown>) {
    await runScript(
      db,
      `
      create table sign_in_attempts (
        bucket text primary key,
        window_started_at timestamptz(3) not null,
        attempts integer not null
      );
      create index sign_in_attempts_window_idx on sign_in_attempts(window_started_at);
    `,
    );
  },
};

// Encryptions per data key (keys/key-usage.ts): AES-GCM with random nonces must stay well under 2^32
// encryptions per key. Keys that already exist start at the number of secrets they encrypt now — a lower bound
// (values replaced or deleted before this migration were not counted), and far from any limit in practice.
const dataKeyUsage: Migration = {
  async up(db: Kysely<unknown>) {
    await runScript(
      db,
      `
      alter table workspace_keys add column encryptions bigint not null default 0;
      update workspace_keys k set encryptions = (
        select count(*) from secrets s where s.workspace_id = k.workspace_id and s.key_version = k.version
      );
    `,
    );
  },
};

/** The workspace-scoped tables of migration 0005 (later migrations add theirs with their own policies). */
const SCOPED_TABLES_0005 = [
  'workspaces',
  'memberships',
  'invites',
  'workspace_keys',
  'secrets',
  'workflows',
  'workflow_nodes',
  'audit_events',
] as const;

/** Tables whose rows belong to one workspace: row-level security binds each to the transaction's scope. */
export const WORKSPACE_SCOPED_TABLES = [...SCOPED_TABLES_0005, 'oauth_states'] as const;

const APP_TABLES = [...SCOPED_TABLES_0005, 'users', 'sessions', 'sign_in_attempts'];

/**
 * Row-level security (db/scope.ts, docs/security.md): the application role `latchkey_app`, its grants, and one
 * policy per workspace-scoped table. Statements are run one by one (DO blocks hold semicolons of their own).
 */
const rowLevelSecurity: Migration = {
  async up(db: Kysely<unknown>) {
    const ws = `current_setting('latchkey.workspace_id', true)`;
    const user = `current_setting('latchkey.user_id', true)`;
    const statements = [
      `do $$ begin
         if not exists (select from pg_roles where rolname = '${APP_ROLE}') then
           create role ${APP_ROLE} nologin;
         end if;
       exception when duplicate_object or unique_violation then null;
       end $$`,
      `do $$ begin
         execute format('grant usage on schema %I to ${APP_ROLE}', current_schema());
         execute format('alter default privileges in schema %I grant select, insert, update, delete on tables to ${APP_ROLE}', current_schema());
         execute format('alter default privileges in schema %I grant usage, select on sequences to ${APP_ROLE}', current_schema());
       end $$`,
      `grant select, insert, update, delete on ${APP_TABLES.join(', ')} to ${APP_ROLE}`,
      `grant usage, select on sequence audit_events_seq_seq to ${APP_ROLE}`,
      // Start-up checks that migrations are current without the owner's connection.
      `grant select on kysely_migration to ${APP_ROLE}`,
      ...SCOPED_TABLES_0005.map((table) => `alter table ${table} enable row level security`),
      ...SCOPED_TABLES_0005.filter((t) => t !== 'workspaces' && t !== 'memberships').map(
        (table) =>
          `create policy workspace_scope on ${table} using (workspace_id = ${ws}) with check (workspace_id = ${ws})`,
      ),
      // A user's own memberships and workspaces are visible to them across workspaces (the workspace list).
      `create policy workspace_scope on memberships
         using (workspace_id = ${ws} or user_id = ${user}) with check (workspace_id = ${ws})`,
      `create policy workspace_scope on workspaces
         using (id = ${ws} or exists (select 1 from memberships m where m.workspace_id = workspaces.id and m.user_id = ${user}))
         with check (id = ${ws})`,
      // The hot path: a node's credential in ONE statement that scopes itself (runner/resolve-credential.ts).
      `create function latchkey_resolve_secret(p_workspace_id text, p_secret_id text) returns setof secrets
       language plpgsql as $fn$
       begin
         perform set_config('latchkey.workspace_id', p_workspace_id, true);
         perform set_config('role', '${APP_ROLE}', true);
         return query select * from secrets s where s.id = p_secret_id and s.workspace_id = p_workspace_id;
       end $fn$`,
      // Owner-rights lookups that are cross-workspace by nature; each returns the least it can.
      `do $$ begin
         execute format($f$create function latchkey_master_key_ids() returns setof text
           language sql stable security definer set search_path = %I, pg_catalog
           as 'select distinct master_key_id from workspace_keys'$f$, current_schema());
         execute format($f$create function latchkey_invite_workspace(p_token_hash text) returns text
           language sql stable security definer set search_path = %I, pg_catalog
           as 'select workspace_id from invites where token_hash = p_token_hash'$f$, current_schema());
         -- The workflow procedures name a workflow, not a workspace: its workspace, for a member only.
         execute format($f$create function latchkey_workflow_workspace(p_workflow_id text, p_user_id text)
           returns text language sql stable security definer set search_path = %I, pg_catalog
           as 'select w.workspace_id from workflows w join memberships m
                 on m.workspace_id = w.workspace_id and m.user_id = p_user_id where w.id = p_workflow_id'$f$,
           current_schema());
       end $$`,
    ];
    for (const statement of statements) await sql.raw(statement).execute(db);
  },
};

// HTTP Request credentials became default-deny (docs/security.md, claim 29): one saved without "Allowed
// domains" is sent nowhere until its creator, an owner or an admin adds some. That state is derived from its
// public fields wherever it is needed (the runner, SecretMeta.needsAllowedDomains, the node editor) — no second
// copy that could drift. This migration records, for each such credential, that and when the upgrade stopped
// applying it, so the audit log answers "why did this workflow start failing".
const httpAllowedDomains: Migration = {
  async up(db: Kysely<unknown>) {
    await runScript(
      db,
      `
      insert into audit_events (id, workspace_id, actor_id, action, target_type, target_id, target_name, details)
      select 'upgrade-0006-' || s.id, s.workspace_id, null, 'secret.needs_allowed_domains', 'secret', s.id, s.name,
             jsonb_build_object('credentialType', s.credential_type)
      from secrets s
      where s.credential_type in ('httpBearerToken', 'httpBasicAuth', 'httpHeaderAuth', 'httpQueryAuth')
        and btrim(coalesce(s.public_fields->>'allowedDomains', ''), ' ,') = '';
    `,
    );
  },
};

/**
 * Envelopes bind their secret's public fields from format 2 on (crypto/envelope.ts). What is left in format 1 is
 * rewritten at every start-up (keys/rotation.ts `upgradeUnboundEnvelopes`): a partial index keeps finding them
 * one small read once there are none, and an owner-rights function lets the application's role, which sees one
 * workspace at a time, learn which workspaces hold one (their ids only).
 */
const envelopePublicFields: Migration = {
  async up(db: Kysely<unknown>) {
    const statements = [
      'create index secrets_unbound_envelopes on secrets (workspace_id) where get_byte(ciphertext, 0) = 1',
      `do $$ begin
         execute format($f$create function latchkey_unbound_envelope_workspaces() returns setof text
           language sql stable security definer set search_path = %I, pg_catalog
           as 'select distinct workspace_id from secrets where get_byte(ciphertext, 0) = 1'$f$, current_schema());
       end $$`,
      'revoke execute on function latchkey_unbound_envelope_workspaces() from public',
      `grant execute on function latchkey_unbound_envelope_workspaces() to ${APP_ROLE}`,
    ];
    for (const statement of statements) await sql.raw(statement).execute(db);
  },
};

/**
 * (1) `latchkey_member_workspace`: the workspace a request names, for a member only, so the
 * request's row-level-security scope is set only after membership is verified (trpc/trpc.ts, in the session
 * check's own statement). (2) The functions of 0005 and this one run for the application role only, not for
 * PUBLIC (PostgreSQL grants EXECUTE to PUBLIC by default): another role in the cluster cannot use the
 * owner-rights lookups to learn which workspace an invite or workflow belongs to; functions added by later
 * migrations get the same privileges by default. (3) Sessions record when they were last used, for the idle
 * timeout (identity/identity.ts); the sweep (identity/session-expiry.ts) deletes ended ones.
 */
const hardening: Migration = {
  async up(db: Kysely<unknown>) {
    const statements = [
      `do $$ begin
         execute format($f$create function latchkey_member_workspace(p_workspace_id text, p_user_id text)
           returns text language sql stable security definer set search_path = %I, pg_catalog
           as 'select workspace_id from memberships where workspace_id = p_workspace_id and user_id = p_user_id'$f$,
           current_schema());
       end $$`,
      // Every function of the schema, those of earlier migrations and (default privileges) those of later ones.
      `do $$ begin
         execute format('revoke execute on all functions in schema %I from public', current_schema());
         execute format('grant execute on all functions in schema %I to ${APP_ROLE}', current_schema());
         execute format('alter default privileges in schema %I revoke execute on functions from public', current_schema());
         execute format('alter default privileges in schema %I grant execute on functions to ${APP_ROLE}', current_schema());
       end $$`,
      'alter table sessions add column last_seen_at timestamptz(3) not null default now()',
      'create index sessions_expires_idx on sessions(expires_at)',
    ];
    for (const statement of statements) await sql.raw(statement).execute(db);
  },
};

/**
 * OAuth2 connections (docs/integrations.md): a secret of an OAuth2 type keeps its tokens in its own envelope,
 * beside the client secret, so key rotation, deletion and every other rule hold for it unchanged. The columns
 * say what may be shown (status, account, scopes, expiry) and count the refreshes (`token_generation`: a
 * refresh writes only over the generation it read, so a rotating refresh token is spent once). `oauth_states`
 * holds each consent in flight: the state's hash, who asked, and the PKCE verifier (encrypted).
 */
const oauth2Connections: Migration = {
  async up(db: Kysely<unknown>) {
    const ws = `current_setting('latchkey.workspace_id', true)`;
    await runScript(
      db,
      `
      alter table secrets add column kind text not null default 'static' check (kind in ('static', 'oauth2'));
      alter table secrets add column connection_status text
        check (connection_status in ('pending', 'connected', 'needs-reconnect'));
      alter table secrets add column connection_account text;
      alter table secrets add column connection_scopes text;
      alter table secrets add column token_expires_at timestamptz(3);
      alter table secrets add column token_refreshed_at timestamptz(3);
      alter table secrets add column token_generation integer not null default 0;
      create table oauth_states (
        state_hash text primary key,
        workspace_id text not null references workspaces(id) on delete cascade,
        secret_id text not null references secrets(id) on delete cascade,
        user_id text not null references users(id) on delete cascade,
        verifier bytea not null,
        key_version integer not null,
        created_at timestamptz(3) not null default now(),
        expires_at timestamptz(3) not null
      );
      create index oauth_states_secret_idx on oauth_states(secret_id);
      create index oauth_states_expires_idx on oauth_states(expires_at);
      grant select, insert, update, delete on oauth_states to ${APP_ROLE};
      alter table oauth_states enable row level security;
      create policy workspace_scope on oauth_states using (workspace_id = ${ws}) with check (workspace_id = ${ws})
      `,
    );
    // The callback names only the state: the workspace it belongs to, to scope the statements that follow.
    await sql
      .raw(
        `do $$ begin
           execute format($f$create function latchkey_oauth_state_workspace(p_state_hash text) returns text
             language sql stable security definer set search_path = %I, pg_catalog
             as 'select workspace_id from oauth_states where state_hash = p_state_hash'$f$, current_schema());
           execute format('revoke execute on function %I.latchkey_oauth_state_workspace(text) from public', current_schema());
           execute format('grant execute on function %I.latchkey_oauth_state_workspace(text) to ${APP_ROLE}', current_schema());
         end $$`,
      )
      .execute(db);
  },
};

/**
 * Imported secrets remember where they came from (import/n8n.ts): `import_source` is `n8n:<credential id>`,
 * unique per workspace, so running an import again imports nothing twice — also when two runs race. A column of
 * the secret, not a table of its own: deleting the secret (by hand, or with its creator's removal) forgets it,
 * and row-level security covers it with the secret's own policy.
 */
const importSources: Migration = {
  async up(db: Kysely<unknown>) {
    await runScript(
      db,
      `
      alter table secrets add column import_source text;
      create unique index secrets_import_source_idx on secrets(workspace_id, import_source)
        where import_source is not null;
      `,
    );
  },
};

/**
 * What an invite link says on arrival (workspaces.inspectInvite): a revoked or retired invite is kept, marked,
 * instead of deleted, so its link can say it was revoked rather than "not found". The lookup is an owner-rights
 * function (the visitor is not a member yet) that returns only what the invite page shows.
 */
const inviteStatus: Migration = {
  async up(db: Kysely<unknown>) {
    const statements = [
      'alter table invites add column revoked_at timestamptz(3)',
      'alter table invites add column revoked_reason text',
      `do $$ begin
         execute format($f$create function latchkey_invite_lookup(p_token_hash text)
           returns table (workspace_name text, inviter_name text, inviter_role text, email text, role text,
                          expires_at timestamptz, accepted_at timestamptz, revoked_at timestamptz,
                          revoked_reason text)
           language sql stable security definer set search_path = %I, pg_catalog
           as 'select w.name, u.name, m.role, i.email, i.role, i.expires_at, i.accepted_at, i.revoked_at,
                      i.revoked_reason
                 from invites i join workspaces w on w.id = i.workspace_id join users u on u.id = i.invited_by
                 left join memberships m on m.workspace_id = i.workspace_id and m.user_id = i.invited_by
                where i.token_hash = p_token_hash'$f$, current_schema());
         -- Explicitly, as 0011 does: default privileges bind only the role that set them.
         execute format('revoke execute on function %I.latchkey_invite_lookup(text) from public', current_schema());
         execute format('grant execute on function %I.latchkey_invite_lookup(text) to ${APP_ROLE}', current_schema());
       end $$`,
    ];
    for (const statement of statements) await sql.raw(statement).execute(db);
  },
};

/** The system code of a secret's last failed test (`ENOTFOUND`), shown behind the list's Details (issue 16). */
const lastTestCode: Migration = {
  async up(db: Kysely<unknown>) {
    await sql`alter table secrets add column last_test_code text`.execute(db);
  },
};

export const migrations: Record<string, Migration> = {
  '0001_initial': initial,
  '0002_credential_tests': credentialTests,
  '0003_sign_in_attempts': signInAttempts,
  '0004_data_key_usage': dataKeyUsage,
  '0005_row_level_security': rowLevelSecurity,
  '0006_http_allowed_domains': httpAllowedDomains,
  '0007_envelope_public_fields': envelopePublicFields,
  '0010_hardening': hardening,
  '0011_oauth2_connections': oauth2Connections,
  '0012_import_sources': importSources,
  '0013_invite_status': inviteStatus,
  '0014_last_test_code': lastTestCode,
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

/** Migrations not yet applied, read from Kysely's bookkeeping table (none there yet: all of them). */
// biome-ignore lint/suspicious/noExplicitAny: any schema
export async function pendingMigrations(db: Kysely<any>, schema?: string): Promise<string[]> {
  const table = schema ? sql`${sql.id(schema)}.kysely_migration` : sql`kysely_migration`;
  try {
    const { rows } = await sql<{ name: string }>`select name from ${table}`.execute(db);
    const applied = new Set(rows.map((r) => r.name));
    return Object.keys(migrations).filter((name) => !applied.has(name));
  } catch {
    return Object.keys(migrations); // no bookkeeping table yet: a new database
  }
}

// biome-ignore lint/suspicious/noExplicitAny: the migrator works on any schema
export async function migrateToLatest(db: Kysely<any>, schema?: string): Promise<string[]> {
  // Nothing pending (every start but the first after an upgrade): one read instead of the migrator's catalog
  // introspection and lock, which cost 150 ms to a second of the cold start (docs/performance.md).
  if ((await pendingMigrations(db, schema)).length === 0) return [];
  // With a schema, Kysely must keep its bookkeeping tables there: otherwise it finds another schema's
  // tables through the catalog and never creates its own.
  const migrator = new Migrator({ db, provider, ...(schema ? { migrationTableSchema: schema } : {}) });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error;
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
