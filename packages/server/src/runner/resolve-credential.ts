import type { IntegrationDefinition } from '@latchkey/core';
import { sql } from 'kysely';
import { decryptSecretFields } from '../crypto/index.js';
import { scopeIndependent, withDbScope } from '../db/scope.js';
import type { Services } from '../services.js';
import { DecryptedCredential } from './redaction.js';

export interface NodeToRun {
  id: string;
  name: string;
  nodeType: string;
  secretId: string | null;
  lostSecretName: string | null;
}

/** "an HTTP Request", "an Airtable", "a SendGrid": a vowel, or an acronym whose first letter sounds like one. */
function article(name: string): 'a' | 'an' {
  return /^([AEIOUaeiou]|[FHLMNRSX][A-Z0-9])/.test(name) ? 'an' : 'a';
}

/** A node's credential cannot be used; the message names the node and says what to do. */
export class CredentialUnavailableError extends Error {
  override name = 'CredentialUnavailableError';
  /** What the node needs, as said after its name ("needs a SendGrid credential: …"). */
  constructor(
    nodeName: string,
    readonly predicate: string,
  ) {
    super(`Node '${nodeName}' ${predicate}`);
  }
}

export interface ResolvedCredential {
  secretId: string;
  secretName: string;
  credential: DecryptedCredential;
  /** An OAuth2 connection's state: whether it may be used, when its token expires, which write it is. */
  connection?: {
    status: 'pending' | 'connected' | 'needs-reconnect';
    expiresAt: Date | null;
    generation: number;
  };
}

/** Why a secret could not be resolved: it is gone, or its credential type is not one the node type accepts. */
type Unresolved = 'deleted' | 'not accepted';

/**
 * Resolves a secret's credential with ONE primary-key read of the secret, fresh on every use: a secret deleted
 * on any server instance is gone for the very next run. Its data key comes from this instance's memory once
 * unwrapped (a second read of `workspace_keys` only the first time a workspace key version is met).
 * The secret must be in the workspace and of a type `nodeType` accepts; plaintext lives only in memory.
 */
/** A secret's row as the runner reads it: its envelope, and (OAuth2) the state of its connection. */
export interface SecretEnvelopeRow {
  id: string;
  name: string;
  credential_type: string;
  public_fields: Record<string, string>;
  ciphertext: Uint8Array;
  key_version: number;
  kind: 'static' | 'oauth2';
  connection_status: 'pending' | 'connected' | 'needs-reconnect' | null;
  token_expires_at: Date | string | null;
  token_generation: number;
}

/** The columns of `SecretEnvelopeRow`, for the statements that read one. */
export const ENVELOPE_COLUMNS = sql.raw(
  'id, name, credential_type, public_fields, ciphertext, key_version, kind, connection_status, token_expires_at, token_generation',
);

/**
 * Decrypts a secret's envelope. Its data key comes from this instance's memory once unwrapped (a read of
 * `workspace_keys`, in the workspace's scope, only the first time a key version is met).
 */
export async function decryptSecretRow(
  svc: Services,
  workspaceId: string,
  row: SecretEnvelopeRow,
): Promise<ResolvedCredential> {
  const dataKey = await withDbScope({ workspaceId }, () =>
    svc.keys.forVersion(svc.db, workspaceId, row.key_version),
  );
  const secretFields = decryptSecretFields(
    dataKey,
    // The public fields as stored are bound too: a rewritten column (wider allowed domains, another region)
    // fails here, before anything is sent.
    {
      workspaceId,
      secretId: row.id,
      credentialType: row.credential_type,
      publicFields: row.public_fields,
    },
    Buffer.from(row.ciphertext),
  );
  return {
    secretId: row.id,
    secretName: row.name,
    credential: new DecryptedCredential(row.credential_type, row.public_fields, secretFields),
    ...(row.kind === 'oauth2'
      ? {
          connection: {
            status: row.connection_status ?? 'pending',
            expiresAt: row.token_expires_at === null ? null : new Date(row.token_expires_at),
            generation: row.token_generation,
          },
        }
      : {}),
  };
}

/**
 * Resolves a secret's credential with ONE primary-key read of the secret, fresh on every use: a secret deleted
 * on any server instance is gone for the very next run. Its data key usually comes from memory
 * (`decryptSecretRow`). The secret must be in the workspace and of a type `nodeType` accepts; plaintext lives
 * only in memory.
 */
async function resolveSecret(
  svc: Services,
  workspaceId: string,
  secretId: string,
  nodeType: string,
): Promise<ResolvedCredential | Unresolved> {
  // The function sets the row-level-security scope itself, in the same statement (migration 0005), so the
  // hot path stays one round trip whatever scope the connection holds (scopeIndependent: nothing to change).
  const { rows } = await scopeIndependent(() =>
    sql<SecretEnvelopeRow>`select ${ENVELOPE_COLUMNS}
       from latchkey_resolve_secret(${workspaceId}, ${secretId})`.execute(svc.db),
  );
  const row = rows[0];
  if (!row) return 'deleted';
  if (!svc.registry.accepts(nodeType, row.credential_type)) return 'not accepted';
  return decryptSecretRow(svc, workspaceId, row);
}

/**
 * A node's credential, for a run. A node without one, or whose secret is gone or of another type, fails with
 * a CredentialUnavailableError that names the node and says what to do.
 */
export async function resolveNodeCredential(
  svc: Services,
  workspaceId: string,
  node: NodeToRun,
  integration: IntegrationDefinition,
): Promise<ResolvedCredential> {
  const needs = `needs ${article(integration.displayName)} ${integration.displayName} credential`;
  if (!node.secretId) {
    throw new CredentialUnavailableError(
      node.name,
      node.lostSecretName
        ? `${needs}: the one it used ('${node.lostSecretName}') was deleted. Select another credential for this node.`
        : `${needs}: none is selected. Select one in the node editor.`,
    );
  }
  const resolved = await resolveSecret(svc, workspaceId, node.secretId, node.nodeType);
  if (resolved === 'deleted') {
    throw new CredentialUnavailableError(
      node.name,
      `${needs}: the one it used was deleted. Select another credential for this node.`,
    );
  }
  if (resolved === 'not accepted') {
    throw new CredentialUnavailableError(
      node.name,
      `${needs}: the selected credential is of another type. Select ${article(integration.displayName)} ${integration.displayName} credential.`,
    );
  }
  return resolved;
}

/**
 * A saved secret's credential, for testing it: undefined when the secret is gone (deleted since it was read),
 * or no longer of a type its node type accepts.
 */
export async function resolveSecretCredential(
  svc: Services,
  workspaceId: string,
  secret: { id: string; nodeType: string },
): Promise<ResolvedCredential | undefined> {
  const resolved = await resolveSecret(svc, workspaceId, secret.id, secret.nodeType);
  return typeof resolved === 'string' ? undefined : resolved;
}
