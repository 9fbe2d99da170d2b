/**
 * OAuth2 connections (docs/integrations.md, docs/security.md "OAuth2 connections"): Connect, Reconnect and the
 * callback, and the one write that stores a connection's tokens.
 *
 * 1. `secrets.connect` validates the form like `secrets.create`, stores the credential as a pending connection
 *    (the client secret encrypted like any secret) and a one-time state — random, stored as its hash, bound to
 *    the user, the workspace and the credential, with the PKCE verifier in an envelope, for ten minutes — and
 *    answers the consent screen's URL.
 * 2. `GET /oauth/callback` takes the state (once), checks it is unexpired and the signed-in user's, exchanges the
 *    code, and stores the tokens in the credential's envelope. A provider's refusal deletes a connection that
 *    never connected (nothing half-saved remains) and leaves a reconnected one as it was.
 * 3. `secrets.reconnect` starts the same consent for an existing connection: its id stays, so its nodes keep
 *    working.
 */
import { createHash, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { type AuditAction, type AuditEvent, auditInsert, recordAudit } from '../audit/audit.js';
import { decryptSecretFields, encryptSecretFields } from '../crypto/index.js';
import { withDbScope } from '../db/scope.js';
import { InvalidInputError } from '../errors.js';
import { KEY_EXHAUSTED, keyGuard, withinDataKeyLimit } from '../keys/key-usage.js';
import { CredentialDestinationError } from '../runner/destinations.js';
import { OutboundRefusedError } from '../runner/outbound-guard.js';
import { decryptSecretRow, ENVELOPE_COLUMNS, type SecretEnvelopeRow } from '../runner/resolve-credential.js';
import { secretDeletionCtes } from '../secrets/deletion.js';
import { manageableSecret } from '../secrets/manage-gate.js';
import { encryptedWrite, insertSecret, validCredential } from '../secrets/write.js';
import type { Actor, Services } from '../services.js';
import {
  authorizationUrl,
  callbackParameters,
  endpointsOf,
  exchangeCode,
  newCodeVerifier,
  TokenRequestError,
} from './protocol.js';
import {
  clientFor,
  type OAuth2Definition,
  oauth2Type,
  requireSavedBy,
  type StoredToken,
  storedToken,
  typedSecretFields,
} from './tokens.js';

/** How long a consent may take, from Connect to the callback. */
export const STATE_TTL_MS = 10 * 60 * 1000;

/** The state's envelope is bound to this "type", so it can never pass for a secret's envelope. */
const STATE_BINDING_TYPE = 'oauth2-state';

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

/** An authorization-code OAuth2 type, or a field error on `credentialType`. */
function consentType(svc: Services, credentialType: string) {
  requireSavedBy(svc, credentialType, 'connect');
  return oauth2Type(svc, credentialType) as NonNullable<ReturnType<typeof oauth2Type>>;
}

/**
 * The endpoints may receive the client (the token URL gets its secret): both must be where the credential may
 * go, checked before anything is stored. The problem is a field error naming the field to fix.
 */
function checkEndpoints(
  svc: Services,
  type: { integration: Parameters<typeof clientFor>[1]['integration']; definition: OAuth2Definition },
  publicFields: Record<string, string>,
): void {
  const client = clientFor(svc, type, publicFields, {});
  const endpoints = endpointsOf(svc, client);
  for (const [field, url] of [
    ['tokenUrl', endpoints.tokenUrl],
    ['authorizationUrl', endpoints.authorizationUrl],
  ] as const) {
    if (!url) continue;
    try {
      client.destination({ method: 'POST', url, headers: {} });
    } catch (error) {
      const inForm = field in publicFields;
      if (error instanceof CredentialDestinationError)
        throw new InvalidInputError([
          { path: ['data', inForm ? 'allowedDomains' : field], message: error.message },
        ]);
      if (error instanceof OutboundRefusedError)
        throw new InvalidInputError([
          { path: inForm ? ['data', field] : ['credentialType'], message: error.message },
        ]);
      throw error;
    }
  }
}

/** Where the provider sends the browser back: LATCHKEY_PUBLIC_URL (default: the address the server listens on). */
export function redirectUri(svc: Services): string {
  return new URL('/oauth/callback', svc.oauth.publicUrl).toString();
}

/**
 * Stores a one-time state for a consent (hash, user, credential, PKCE verifier in an envelope, expiry) — one
 * statement, its encryption counted against the data key before (`withinDataKeyLimit`) — and returns the consent screen's URL.
 */
async function startConsent(
  svc: Services,
  userId: string,
  workspaceId: string,
  secret: { id: string; publicFields: Record<string, string> },
  type: { integration: Parameters<typeof clientFor>[1]['integration']; definition: OAuth2Definition },
): Promise<string> {
  const state = randomBytes(32).toString('base64url');
  const stateHash = sha256(state);
  const codeVerifier = newCodeVerifier();
  const first = await svc.keys.newestForWrite(svc.db, workspaceId);
  await withinDataKeyLimit(svc, workspaceId, first, async (dataKey) => {
    const envelope = encryptSecretFields(
      dataKey.key,
      dataKey.version,
      { workspaceId, secretId: secret.id, credentialType: STATE_BINDING_TYPE, publicFields: { stateHash } },
      { codeVerifier },
    );
    const { rows } = await sql<{ counted: boolean }>`
      with ${keyGuard('k', { workspaceId, version: dataKey.version })},
      stored as (
        insert into oauth_states (state_hash, workspace_id, secret_id, user_id, verifier, key_version, expires_at)
        select ${stateHash}, ${workspaceId}, ${secret.id}, ${userId}, ${envelope}::bytea, k.version,
               now() + ${`${STATE_TTL_MS} milliseconds`}::interval
        from k
        returning 1
      )
      select exists (select 1 from stored) as counted`.execute(svc.db);
    return rows[0]?.counted ? true : KEY_EXHAUSTED;
  });
  return authorizationUrl(
    svc,
    { ...type, publicFields: secret.publicFields },
    {
      state,
      codeVerifier,
      redirectUri: redirectUri(svc),
    },
  );
}

/** `secrets.connect`: a pending connection and its consent screen's URL. */
export async function connectSecret(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; credentialType: string; name: string; data: unknown },
): Promise<{ secretId: string; authorizationUrl: string }> {
  const valid = await validCredential(svc, actor, input.workspaceId, input.credentialType, input.data);
  const type = consentType(svc, input.credentialType);
  checkEndpoints(svc, type, valid.publicFields);
  const secret = await insertSecret(svc, actor, input, valid, {
    status: 'pending',
    tokenFields: {},
    account: null,
    scopes: null,
    expiresAt: null,
  });
  try {
    const url = await startConsent(svc, actor.userId, input.workspaceId, secret, type);
    return { secretId: secret.id, authorizationUrl: url };
  } catch (error) {
    await deleteIfNeverConnected(svc, input.workspaceId, secret.id, actor.userId, 'state_failed');
    throw error;
  }
}

/** `secrets.reconnect`: the consent screen's URL for an existing connection (owner, admin or its creator). */
export async function reconnectSecret(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; secretId: string },
): Promise<{ authorizationUrl: string }> {
  const secret = await manageableSecret(svc, actor, input.workspaceId, input.secretId);
  const type = consentType(svc, secret.credential_type);
  const url = await startConsent(
    svc,
    actor.userId,
    input.workspaceId,
    { id: secret.id, publicFields: secret.public_fields },
    type,
  );
  return { authorizationUrl: url };
}

/**
 * Deletes a connection that never connected (a refused or abandoned consent), with the nodes that selected it
 * flagged like any deletion, and records why. A connection that was connected once is left as it was.
 */
async function deleteIfNeverConnected(
  svc: Services,
  workspaceId: string,
  secretId: string,
  actorId: string,
  reason: string,
): Promise<void> {
  await sql`
    with ${secretDeletionCtes({ workspaceId, secretId }, sql`s.connection_status = 'pending'`)},
    audit as (${auditInsert(
      {
        workspaceId,
        actorId,
        action: 'secret.connect_failed',
        targetType: 'secret',
        targetId: sql`d.id`,
        targetName: sql`d.name`,
        details: sql`jsonb_build_object('credentialType', d.credential_type, 'error', ${reason}::text, 'deleted', true)`,
      },
      sql`deleted d`,
    )})
    select count(*) from deleted`.execute(svc.db);
}

/** What the callback did: where to send the browser back, and what to say there. */
export type ConsentOutcome =
  | { ok: true; workspaceId: string; secretId: string }
  | { ok: false; workspaceId: string | null; error: string };

interface TakenState {
  workspace_id: string;
  secret_id: string;
  user_id: string;
  verifier: Uint8Array;
  key_version: number;
  expired: boolean;
}

/**
 * `GET /oauth/callback`: takes the state (deleted as it is read: a second use finds nothing), checks that it is
 * unexpired and belongs to the signed-in user, then exchanges the code and stores the tokens.
 */
export async function completeConsent(
  svc: Services,
  userId: string | null,
  query: URLSearchParams,
): Promise<ConsentOutcome> {
  const state = query.get('state');
  if (!state || state.length > 512) return { ok: false, workspaceId: null, error: 'invalid_state' };
  const stateHash = sha256(state);
  const { rows: owners } = await sql<{ workspace_id: string | null }>`
    select latchkey_oauth_state_workspace(${stateHash}) as workspace_id`.execute(svc.db);
  const workspaceId = owners[0]?.workspace_id ?? null;
  if (!workspaceId) return { ok: false, workspaceId: null, error: 'invalid_state' };
  return withDbScope({ workspaceId, ...(userId ? { userId } : {}) }, async () => {
    const { rows } = await sql<TakenState>`
      delete from oauth_states where state_hash = ${stateHash} and workspace_id = ${workspaceId}
      returning workspace_id, secret_id, user_id, verifier, key_version, expires_at < now() as expired`.execute(
      svc.db,
    );
    const taken = rows[0];
    if (!taken) return { ok: false, workspaceId, error: 'invalid_state' };
    // Another user's consent (a link passed on, or a login CSRF): refused, and the state is spent.
    if (taken.user_id !== userId) return { ok: false, workspaceId, error: 'wrong_user' };
    if (taken.expired) {
      await deleteIfNeverConnected(svc, workspaceId, taken.secret_id, taken.user_id, 'expired');
      return { ok: false, workspaceId, error: 'expired' };
    }
    return exchangeAndStore(svc, { userId }, taken, state, query);
  });
}

async function exchangeAndStore(
  svc: Services,
  actor: Actor,
  taken: TakenState,
  state: string,
  query: URLSearchParams,
): Promise<ConsentOutcome> {
  const workspaceId = taken.workspace_id;
  // Still a member who may manage it (removed meanwhile: the secret is gone with them).
  try {
    await manageableSecret(svc, actor, workspaceId, taken.secret_id);
  } catch {
    return { ok: false, workspaceId, error: 'not_found' };
  }
  const row = await readEnvelope(svc, workspaceId, taken.secret_id);
  const type = row && oauth2Type(svc, row.credential_type);
  if (!row || !type) return { ok: false, workspaceId, error: 'not_found' };
  const dataKey = await svc.keys.forVersion(svc.db, workspaceId, taken.key_version);
  const { codeVerifier } = decryptSecretFields(
    dataKey,
    {
      workspaceId,
      secretId: taken.secret_id,
      credentialType: STATE_BINDING_TYPE,
      publicFields: { stateHash: sha256(state) },
    },
    Buffer.from(taken.verifier),
  );
  const current = await decryptSecretRow(svc, workspaceId, row);
  const secretFields = typedSecretFields(current.credential.fields(), row.public_fields);
  const client = clientFor(svc, type, row.public_fields, secretFields, row.name);
  const reconnect = row.connection_status !== 'pending';
  let token: StoredToken;
  try {
    const callback = callbackParameters(svc, client, query, state);
    const answer = await exchangeCode(svc, client, {
      callback,
      codeVerifier: codeVerifier ?? '',
      redirectUri: redirectUri(svc),
    });
    token = storedToken(type.definition, row.public_fields, answer);
  } catch (error) {
    const code = error instanceof TokenRequestError ? error.code : 'exchange_failed';
    if (reconnect) {
      await recordAudit(
        svc.db,
        connectionEvent(workspaceId, actor.userId, row, 'secret.connect_failed', { error: code }),
      );
    } else {
      await deleteIfNeverConnected(svc, workspaceId, row.id, actor.userId, code);
    }
    return { ok: false, workspaceId, error: code };
  }
  const written = await writeTokens(svc, svc.db, {
    workspaceId,
    row,
    secretFields,
    token,
    action: reconnect ? 'secret.reconnected' : 'secret.connected',
    actorId: actor.userId,
  });
  if (written === 'stale') return { ok: false, workspaceId, error: 'conflict' };
  return { ok: true, workspaceId, secretId: row.id };
}

/** A secret's envelope row, in the current scope (a transaction's, with `forUpdate`, locked). */
export async function readEnvelope(
  svc: Services,
  workspaceId: string,
  secretId: string,
  executor: Services['db'] = svc.db,
  forUpdate = false,
): Promise<SecretEnvelopeRow | undefined> {
  const { rows } = await sql<SecretEnvelopeRow>`
    select ${ENVELOPE_COLUMNS} from secrets where id = ${secretId} and workspace_id = ${workspaceId}
    ${forUpdate ? sql`for update` : sql``}`.execute(executor);
  return rows[0];
}

/** An audit event about a connection (never a token: error codes, expiry and scopes only). */
export function connectionEvent(
  workspaceId: string,
  actorId: string | null,
  row: Pick<SecretEnvelopeRow, 'id' | 'name' | 'credential_type'>,
  action: AuditAction,
  details: Record<string, unknown>,
): AuditEvent {
  return {
    workspaceId,
    actorId,
    action,
    targetType: 'secret',
    targetId: row.id,
    targetName: row.name,
    details: { credentialType: row.credential_type, ...details },
  };
}

/**
 * Stores a connection's new tokens — a new envelope of the client's fields and the tokens under the newest data
 * key, counted against its limit — over the token generation that was read, and records the event (its expiry
 * and scopes, never a token). Another write since then (a refresh on another instance) makes it write nothing:
 * `stale`.
 */
export async function writeTokens(
  svc: Services,
  executor: Services['db'],
  write: {
    workspaceId: string;
    row: SecretEnvelopeRow;
    secretFields: Record<string, string>;
    token: StoredToken;
    action: 'secret.connected' | 'secret.reconnected' | 'secret.refreshed';
    actorId: string | null;
  },
): Promise<'written' | 'stale'> {
  const { workspaceId, row, token } = write;
  const binding = { workspaceId, secretId: row.id, credentialType: row.credential_type };
  const valid = {
    publicFields: row.public_fields,
    secretFields: { ...write.secretFields, ...token.tokenFields },
  };
  const first = await svc.keys.newestForWrite(svc.db, workspaceId);
  const userAction = write.action !== 'secret.refreshed';
  // newestOnly: a key this instance remembers may have been superseded (rotation): then the newest is used.
  return encryptedWrite(svc, binding, valid, first, { newestOnly: true }, async (ciphertext, key) => {
    const current = sql`exists (select 1 from secrets where id = ${row.id} and workspace_id = ${workspaceId}
                        and token_generation = ${row.token_generation})`;
    const { rows } = await sql<{ current: boolean; counted: boolean; written: boolean }>`
      with ${keyGuard('k', key, current)},
      s as (
        update secrets set ciphertext = ${ciphertext}::bytea, key_version = k.version,
               connection_status = 'connected',
               connection_account = coalesce(${token.account}::text, connection_account),
               connection_scopes = coalesce(${token.scopes}::text, connection_scopes),
               token_expires_at = ${token.expiresAt}::timestamptz, token_refreshed_at = now(),
               token_generation = token_generation + 1
               ${userAction ? sql`, updated_at = now()` : sql``}
        from k
        where secrets.id = ${row.id} and secrets.workspace_id = ${workspaceId}
          and secrets.token_generation = ${row.token_generation}
        returning secrets.*
      ),
      audit as (${auditInsert(
        {
          workspaceId,
          actorId: write.actorId,
          action: write.action,
          targetType: 'secret',
          targetId: sql`s.id`,
          targetName: sql`s.name`,
          details: sql`jsonb_strip_nulls(jsonb_build_object('credentialType', s.credential_type,
                     'expiresAt', s.token_expires_at, 'scopes', s.connection_scopes))`,
        },
        sql`s`,
      )})
      select ${current} as current, exists (select 1 from k) as counted, exists (select 1 from s) as written`.execute(
      executor,
    );
    const outcome = rows[0];
    if (outcome?.written) return 'written' as const;
    // Nothing written: the key was superseded (try the newest), or another write came first.
    if (outcome?.current && !outcome.counted) return KEY_EXHAUSTED;
    return 'stale' as const;
  });
}

/** Marks a connection "needs reconnect" (over the generation that was read) and records why. */
export async function markNeedsReconnect(
  executor: Services['db'],
  workspaceId: string,
  row: SecretEnvelopeRow,
  code: string,
): Promise<void> {
  await sql`
    with s as (
      update secrets set connection_status = 'needs-reconnect'
      where id = ${row.id} and workspace_id = ${workspaceId} and token_generation = ${row.token_generation}
      returning id, name, credential_type
    ),
    audit as (${auditInsert(
      {
        workspaceId,
        actorId: null,
        action: 'secret.refresh_failed',
        targetType: 'secret',
        targetId: sql`s.id`,
        targetName: sql`s.name`,
        details: sql`jsonb_build_object('credentialType', s.credential_type, 'error', ${code}::text,
                                        'needsReconnect', true)`,
      },
      sql`s`,
    )})
    select count(*) from s`.execute(executor);
}
