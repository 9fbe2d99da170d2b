import { credentialDestinations, type Registry } from '@latchkey/core';
import { type RawBuilder, sql } from 'kysely';

export interface SecretMeta {
  id: string;
  name: string;
  integrationId: string;
  nodeType: string;
  credentialType: string;
  publicFields: Record<string, string>;
  createdBy: { id: string; name: string; email: string };
  createdAt: string;
  updatedAt: string;
  lastUsedAt: string | null;
  /** The last `secrets.test` result; its message never contains a secret value. */
  /** `code`: the system code of a failed test (`ENOTFOUND`), when there was one. */
  lastTest: { ok: boolean; message: string; code?: string; testedAt: string } | null;
  /**
   * True for a credential whose type restricts its hosts but which lists none (saved before the list was
   * required): it is sent nowhere until its creator, an owner or an admin adds allowed domains.
   */
  needsAllowedDomains: boolean;
  /** `oauth2`: a connection made through its service (the Integrations settings page); `static`: a pasted key. */
  kind: 'static' | 'oauth2';
  /** An OAuth2 connection's state, never its tokens. */
  connection?: OAuth2ConnectionMeta;
}

export interface OAuth2ConnectionMeta {
  status: 'connected' | 'pending' | 'needs-reconnect';
  /** "Connected as …", when the type can tell. */
  account?: string;
  scopes?: string;
  /** When the current access token expires, when the service said. */
  expiresAt?: string;
  lastRefreshAt?: string;
}

export interface AffectedNode {
  workflowId: string;
  workflowName: string;
  nodeId: string;
  nodeName: string;
}

export const iso = (value: Date | string | null) => (value === null ? null : new Date(value).toISOString());

const metaColumns = [
  's.id',
  's.name',
  's.integration_id',
  's.node_type',
  's.credential_type',
  's.public_fields',
  's.created_by',
  'u.name as creator_name',
  'u.email as creator_email',
  's.created_at',
  's.updated_at',
  's.last_used_at',
  's.last_test_ok',
  's.last_test_message',
  's.last_test_code',
  's.last_tested_at',
  's.kind',
  's.connection_status',
  's.connection_account',
  's.connection_scopes',
  's.token_expires_at',
  's.token_refreshed_at',
] as const;

export type MetaRow = {
  id: string;
  name: string;
  integration_id: string;
  node_type: string;
  credential_type: string;
  public_fields: Record<string, string>;
  created_by: string;
  creator_name: string;
  creator_email: string;
  created_at: Date;
  updated_at: Date;
  last_used_at: Date | null;
  last_test_ok: boolean | null;
  last_test_message: string | null;
  last_test_code: string | null;
  last_tested_at: Date | null;
  kind: 'static' | 'oauth2';
  connection_status: OAuth2ConnectionMeta['status'] | null;
  connection_account: string | null;
  connection_scopes: string | null;
  token_expires_at: Date | null;
  token_refreshed_at: Date | null;
};

function connectionMeta(row: MetaRow): OAuth2ConnectionMeta {
  return {
    status: row.connection_status ?? 'pending',
    ...(row.connection_account ? { account: row.connection_account } : {}),
    ...(row.connection_scopes ? { scopes: row.connection_scopes } : {}),
    ...(row.token_expires_at ? { expiresAt: iso(row.token_expires_at) as string } : {}),
    ...(row.token_refreshed_at ? { lastRefreshAt: iso(row.token_refreshed_at) as string } : {}),
  };
}

/**
 * Where a credential of this type and these public fields may be sent (`null`: its type does not restrict
 * hosts; empty: it needs allowed domains) — the plugin's own rule (`credentialDestinations`), read the same way
 * by the list, the node picker, saving a node and the runner.
 */
export function destinationsOf(
  registry: Registry,
  credentialType: string,
  publicFields: Record<string, string>,
): string[] | null {
  const definition = registry.credentialType(credentialType)?.definition;
  return definition ? credentialDestinations(definition, publicFields) : null;
}

export function toMeta(registry: Registry, row: MetaRow): SecretMeta {
  return {
    id: row.id,
    name: row.name,
    integrationId: row.integration_id,
    nodeType: row.node_type,
    credentialType: row.credential_type,
    publicFields: row.public_fields,
    createdBy: { id: row.created_by, name: row.creator_name, email: row.creator_email },
    createdAt: iso(row.created_at) as string,
    updatedAt: iso(row.updated_at) as string,
    lastUsedAt: iso(row.last_used_at),
    lastTest:
      row.last_test_ok === null || row.last_tested_at === null
        ? null
        : {
            ok: row.last_test_ok,
            message: row.last_test_message ?? '',
            ...(row.last_test_code ? { code: row.last_test_code } : {}),
            testedAt: iso(row.last_tested_at) as string,
          },
    needsAllowedDomains: destinationsOf(registry, row.credential_type, row.public_fields)?.length === 0,
    kind: row.kind,
    ...(row.kind === 'oauth2' ? { connection: connectionMeta(row) } : {}),
  };
}

/** The columns of `metaColumns` as SQL, for the single-statement queries below (`s` = secrets, `u` = users). */
export const META_SQL = sql.raw(metaColumns.join(', '));

/**
 * Rule 1 as SQL over a secret row `s`: its credential type may serve `nodeType` (`registry.accepts`, the one
 * predicate, as the list of the types it accepts). The stored `node_type` column is written from the same
 * registry at create time; filtering on it too keeps the (workspace, node type, name) index in use.
 */
export function servesNodeType(registry: Registry, nodeType: string): RawBuilder<unknown> {
  const types = registry.credentialTypesForNodeType(nodeType);
  return types.length === 0
    ? sql`false`
    : sql`s.node_type = ${nodeType} and s.credential_type in (${sql.join(types)})`;
}
