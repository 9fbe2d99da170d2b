/**
 * Refreshing an OAuth2 connection's access token, so that a run never fails for a token that could have been
 * renewed (docs/security.md "OAuth2 connections"):
 *   - before use, when the token expires within the skew (`LATCHKEY_OAUTH_REFRESH_SKEW_SECONDS`, default 60);
 *   - after the service rejected it (HTTP 401, or the type's own signal), once, and the request is sent again.
 * Single flight: concurrent runs on one instance share one refresh (`inflight`), and instances on PostgreSQL
 * serialise it on the credential's row (`select … for update` in the refresh's transaction), re-reading the row
 * once they hold it: a rotating refresh token is spent exactly once, and every run uses the new access token.
 * A refusal for good (`invalid_grant`, a revoked client) marks the connection "needs reconnect"; a transient
 * failure (timeout, 5xx) does not.
 */
import { OAUTH2_TOKEN_FIELDS } from '@latchkey/core';
import type { Kysely } from 'kysely';
import { recordAudit } from '../audit/audit.js';
import type { Database } from '../db/schema.js';
import { withDbScope } from '../db/scope.js';
import { DecryptedCredential } from '../runner/redaction.js';
import {
  decryptSecretRow,
  type ResolvedCredential,
  type SecretEnvelopeRow,
} from '../runner/resolve-credential.js';
import type { Services } from '../services.js';
import { connectionEvent, markNeedsReconnect, readEnvelope, writeTokens } from './connections.js';
import { requestNewToken, TokenRequestError } from './protocol.js';
import { clientFor, oauth2Type, storedToken, typedSecretFields } from './tokens.js';

/** The refreshes running on this instance, per database and credential. */
const inflight = new WeakMap<Kysely<Database>, Map<string, Promise<ResolvedCredential>>>();

/** A connection that cannot be used until someone connects it again (or, `pending`, connects it at all). */
export class ConnectionUnusableError extends Error {
  override name = 'ConnectionUnusableError';
  constructor(readonly status: 'pending' | 'needs-reconnect' | 'deleted') {
    super(status);
  }
}

/** Whether a connection's access token should be renewed before it is used. */
export function isExpiring(resolved: ResolvedCredential, skewMs: number, now = Date.now()): boolean {
  const expiresAt = resolved.connection?.expiresAt;
  return expiresAt !== null && expiresAt !== undefined && expiresAt.getTime() - now <= skewMs;
}

/**
 * The connection with a renewed access token: the one another run (or instance) obtained since `stale` was
 * read, or a new one from the token endpoint. Throws ConnectionUnusableError or TokenRequestError.
 */
export function refreshConnection(
  svc: Services,
  workspaceId: string,
  stale: ResolvedCredential,
): Promise<ResolvedCredential> {
  let running = inflight.get(svc.db);
  if (!running) {
    running = new Map();
    inflight.set(svc.db, running);
  }
  const existing = running.get(stale.secretId);
  if (existing) return existing;
  const refresh = withDbScope({ workspaceId }, () =>
    svc.databaseKind === 'postgres'
      ? svc.db.transaction().execute((trx) => refreshOnce(svc, trx, workspaceId, stale, true))
      : refreshOnce(svc, svc.db, workspaceId, stale, false),
  )
    .then(finish)
    .finally(() => running.delete(stale.secretId));
  running.set(stale.secretId, refresh);
  return refresh;
}

type RefreshOutcome = { resolved: ResolvedCredential } | { failure: Error };

/** Failures are returned, not thrown, inside the transaction: what it recorded (the audit event) must commit. */
function finish(outcome: RefreshOutcome): ResolvedCredential {
  if ('failure' in outcome) throw outcome.failure;
  return outcome.resolved;
}

async function refreshOnce(
  svc: Services,
  executor: Kysely<Database>,
  workspaceId: string,
  stale: ResolvedCredential,
  lock: boolean,
): Promise<RefreshOutcome> {
  const row = await readEnvelope(svc, workspaceId, stale.secretId, executor, lock);
  if (!row) return { failure: new ConnectionUnusableError('deleted') };
  if (row.connection_status === 'pending' || row.connection_status === 'needs-reconnect')
    return { failure: new ConnectionUnusableError(row.connection_status) };
  // Renewed since `stale` was read (another run, another instance): use that token.
  if (row.token_generation !== stale.connection?.generation)
    return { resolved: await decryptSecretRow(svc, workspaceId, row) };
  return renew(svc, executor, workspaceId, row);
}

async function renew(
  svc: Services,
  executor: Kysely<Database>,
  workspaceId: string,
  row: SecretEnvelopeRow,
): Promise<RefreshOutcome> {
  const type = oauth2Type(svc, row.credential_type);
  if (!type) return { failure: new ConnectionUnusableError('deleted') };
  const current = await decryptSecretRow(svc, workspaceId, row);
  const fields = current.credential.fields();
  const secretFields = typedSecretFields(fields, row.public_fields);
  const refreshToken = fields[OAUTH2_TOKEN_FIELDS.refreshToken];
  const client = clientFor(svc, type, row.public_fields, secretFields, row.name);
  try {
    const answer = await requestNewToken(svc, client, refreshToken);
    const token = storedToken(type.definition, row.public_fields, answer, refreshToken);
    const written = await writeTokens(svc, executor, {
      workspaceId,
      row,
      secretFields,
      token,
      action: 'secret.refreshed',
      actorId: null,
    });
    if (written === 'written') {
      // What was just written, without reading it back: the client's fields and the new tokens.
      return {
        resolved: {
          secretId: row.id,
          secretName: row.name,
          credential: new DecryptedCredential(row.credential_type, row.public_fields, {
            ...secretFields,
            ...token.tokenFields,
          }),
          connection: {
            status: 'connected',
            expiresAt: token.expiresAt,
            generation: row.token_generation + 1,
          },
        },
      };
    }
    // Another write came first (a refresh elsewhere, a reconnect): use what it wrote.
    const fresh = await readEnvelope(svc, workspaceId, row.id, executor);
    if (!fresh) return { failure: new ConnectionUnusableError('deleted') };
    if (fresh.connection_status !== 'connected')
      return { failure: new ConnectionUnusableError(fresh.connection_status ?? 'pending') };
    return { resolved: await decryptSecretRow(svc, workspaceId, fresh) };
  } catch (error) {
    const failure =
      error instanceof TokenRequestError
        ? error
        : new TokenRequestError('network', false, 'the token request failed');
    if (failure.permanent) await markNeedsReconnect(executor, workspaceId, row, failure.code);
    else
      await recordAudit(
        executor,
        connectionEvent(workspaceId, null, row, 'secret.refresh_failed', {
          error: failure.code,
          needsReconnect: false,
        }),
      );
    return { failure };
  }
}

/**
 * The credential ready for a request: a static one as it is; a connection only when connected, with its
 * access token renewed first when it expires within the skew.
 */
export async function readyToUse(
  svc: Services,
  workspaceId: string,
  resolved: ResolvedCredential,
): Promise<ResolvedCredential> {
  const connection = resolved.connection;
  if (!connection) return resolved;
  if (connection.status !== 'connected') throw new ConnectionUnusableError(connection.status);
  return isExpiring(resolved, svc.oauth.refreshSkewMs)
    ? refreshConnection(svc, workspaceId, resolved)
    : resolved;
}

/**
 * Why a connection could not be used, as a sentence after "Node 'X' " or a credential's name: what to do
 * about it ("needs … to be reconnected", or that the next run tries again).
 */
export function connectionProblem(error: unknown, connection: string): string | undefined {
  if (error instanceof ConnectionUnusableError) {
    if (error.status === 'needs-reconnect')
      return `needs its ${connection} to be reconnected: access was revoked or expired`;
    if (error.status === 'pending')
      return `needs its ${connection} to be connected first: finish connecting it under Settings → Integrations`;
    return `needs its ${connection}, which was deleted`;
  }
  if (error instanceof TokenRequestError) {
    return error.permanent
      ? `needs its ${connection} to be reconnected: ${error.message}`
      : `could not refresh its ${connection}: ${error.message}. The next run tries again`;
  }
  return undefined;
}
