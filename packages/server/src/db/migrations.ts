import { type Kysely, type Migration, type MigrationProvider, Migrator, sql } from 'kysely';

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

export const migrations: Record<string, Migration> = {
  '0001_initial': initial,
  '0002_credential_tests': credentialTests,
  '0003_sign_in_attempts': signInAttempts,
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

// biome-ignore lint/suspicious/noExplicitAny: the migrator works on any schema
export async function migrateToLatest(db: Kysely<any>, schema?: string): Promise<string[]> {
  // With a schema, Kysely must keep its bookkeeping tables there: otherwise it finds another schema's
  // tables through the catalog and never creates its own.
  const migrator = new Migrator({ db, provider, ...(schema ? { migrationTableSchema: schema } : {}) });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error;
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
