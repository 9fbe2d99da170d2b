import type { Role } from '@latchkey/core/roles';
import type { ColumnType, Generated } from 'kysely';

type Timestamp = ColumnType<Date, Date | string, Date | string>;
type CreatedAt = ColumnType<Date, Date | string | undefined, never>;

export type Plan = 'personal' | 'team';
export type { Role };

export interface UsersTable {
  id: string;
  email: string;
  name: string;
  password_hash: string;
  created_at: CreatedAt;
}

export interface SessionsTable {
  /** SHA-256 of the session token: a stolen database does not hold usable session tokens. */
  token_hash: string;
  user_id: string;
  created_at: CreatedAt;
  /** The absolute end of the session; the sweep deletes sessions past it or idle for too long. */
  expires_at: Timestamp;
  /** When the session was last used, to the few minutes (identity/identity.ts): the idle timeout counts from it. */
  last_seen_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

export interface WorkspacesTable {
  id: string;
  name: string;
  plan: Plan;
  created_at: CreatedAt;
}

export interface MembershipsTable {
  workspace_id: string;
  user_id: string;
  role: Role;
  joined_at: CreatedAt;
}

export interface InvitesTable {
  id: string;
  workspace_id: string;
  email: string;
  role: Role;
  token_hash: string;
  invited_by: string;
  created_at: CreatedAt;
  expires_at: Timestamp;
  accepted_at: Timestamp | null;
  /** Revoked by hand or retired with its maker (kept so the link can say so; migration 0013). */
  revoked_at: Timestamp | null;
  revoked_reason: string | null;
}

export interface WorkspaceKeysTable {
  workspace_id: string;
  version: number;
  master_key_id: string;
  wrapped_key: Buffer;
  created_at: CreatedAt;
  /**
   * Encryptions made with this key (bigint; keys/key-usage.ts). pg returns int8 as a string (db/connect.ts),
   * PGlite as a number: read it with `encryptionCount`. Incremented only in the statement that stores the
   * ciphertext, and never past the configured limit.
   */
  encryptions: ColumnType<string | number | bigint, number | undefined, number>;
}

export interface SecretsTable {
  id: string;
  workspace_id: string;
  name: string;
  integration_id: string;
  node_type: string;
  credential_type: string;
  public_fields: ColumnType<Record<string, string>, string, string>;
  ciphertext: Buffer;
  key_version: number;
  created_by: string;
  created_at: CreatedAt;
  updated_at: Timestamp;
  last_used_at: Timestamp | null;
  last_test_ok: boolean | null;
  last_test_message: string | null;
  last_test_code: string | null;
  last_tested_at: Timestamp | null;
  /** `oauth2`: an OAuth2 connection; its tokens are in the envelope beside the client secret. */
  kind: ColumnType<'static' | 'oauth2', 'static' | 'oauth2' | undefined, 'static' | 'oauth2'>;
  connection_status: 'pending' | 'connected' | 'needs-reconnect' | null;
  /** "Connected as …": what the type reads from the token answer. Not secret. */
  connection_account: string | null;
  connection_scopes: string | null;
  token_expires_at: Timestamp | null;
  token_refreshed_at: Timestamp | null;
  /** Counts token writes: a refresh writes only over the generation it read (oauth/connections.ts). */
  token_generation: ColumnType<number, number | undefined, number>;
  /** Where an imported secret came from (`n8n:<id>`), unique per workspace; null for secrets made here. */
  import_source: ColumnType<string | null, string | null | undefined, string | null>;
}

/** A consent in flight (oauth/connections.ts): one use, for the user who started it, for ten minutes. */
export interface OAuthStatesTable {
  /** SHA-256 of the state sent to the provider. */
  state_hash: string;
  workspace_id: string;
  secret_id: string;
  user_id: string;
  /** The PKCE code verifier, in an envelope under the workspace's data key. */
  verifier: Buffer;
  key_version: number;
  created_at: CreatedAt;
  expires_at: Timestamp;
}

export interface WorkflowsTable {
  id: string;
  workspace_id: string;
  name: string;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

export interface WorkflowNodesTable {
  id: string;
  workflow_id: string;
  workspace_id: string;
  name: string;
  node_type: string;
  params: ColumnType<Record<string, unknown>, string, string>;
  secret_id: string | null;
  /** Name of the secret this node lost when it was deleted; cleared when a new one is selected. */
  lost_secret_name: string | null;
  position: number;
  created_at: CreatedAt;
  updated_at: Timestamp;
}

export interface AuditEventsTable {
  seq: Generated<string>;
  id: string;
  workspace_id: string;
  actor_id: string | null;
  action: string;
  target_type: string;
  target_id: string | null;
  target_name: string | null;
  details: ColumnType<Record<string, unknown>, string, never>;
  created_at: CreatedAt;
}

export interface Database {
  users: UsersTable;
  sessions: SessionsTable;
  workspaces: WorkspacesTable;
  memberships: MembershipsTable;
  invites: InvitesTable;
  workspace_keys: WorkspaceKeysTable;
  secrets: SecretsTable;
  workflows: WorkflowsTable;
  workflow_nodes: WorkflowNodesTable;
  audit_events: AuditEventsTable;
  oauth_states: OAuthStatesTable;
}
