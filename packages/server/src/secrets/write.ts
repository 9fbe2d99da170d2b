import type { ValidCredential } from '@latchkey/core';
import { sql } from 'kysely';
import { membershipCte, membershipOf } from '../access/membership.js';
import { auditInsert } from '../audit/audit.js';
import { encryptSecretFields } from '../crypto/index.js';
import {
  ConflictError,
  InvalidInputError,
  issuesUnder,
  isUniqueViolation,
  NotFoundError,
} from '../errors.js';
import { newId } from '../identity/tokens.js';
import { KEY_EXHAUSTED, keyGuard, type WriteKey, withinDataKeyLimit } from '../keys/key-usage.js';
import type { ActiveDataKey } from '../keys/workspace-keys.js';
import { firstClientCredentialsToken, requireSavedBy, type StoredToken } from '../oauth/tokens.js';
import type { Actor, Services } from '../services.js';
import {
  GATE_RESULT,
  type GateOutcome,
  manageableSecret,
  manageGateCtes,
  requireGate,
} from './manage-gate.js';
import { META_SQL, type MetaRow, type SecretMeta, toMeta } from './meta.js';

/** The credential data, valid for its type (the registry: the plugin's schema), or its field errors. */
function validOrThrow(svc: Services, credentialType: string, data: unknown): ValidCredential {
  const result = svc.registry.validateCredential(credentialType, data);
  if (!result.ok) throw new InvalidInputError(issuesUnder('data', 'credentialType', result.issues));
  return result.value;
}

/** `validOrThrow` for a caller not known to be a member: a stranger learns "not found", not what is invalid. */
export async function validCredential(
  svc: Services,
  actor: Actor,
  workspaceId: string,
  credentialType: string,
  data: unknown,
): Promise<ValidCredential> {
  try {
    return validOrThrow(svc, credentialType, data);
  } catch (error) {
    await membershipOf(svc.db, workspaceId, actor.userId);
    throw error;
  }
}

/**
 * Encrypts the value under `first` (bound to the secret's identity and public fields), its encryption counted
 * against the key's limit, and runs `write` with the ciphertext and the key to guard it with (`keyGuard`); while
 * the key is at its limit or superseded (the write stored nothing), again with the next data key
 * (`withinDataKeyLimit`). `write` throws a DomainError only when it stored nothing.
 */
export function encryptedWrite<T>(
  svc: Services,
  secret: { workspaceId: string; secretId: string; credentialType: string },
  valid: Pick<ValidCredential, 'publicFields' | 'secretFields'>,
  first: ActiveDataKey,
  options: { newestOnly?: boolean },
  write: (ciphertext: Buffer, key: WriteKey) => Promise<T | typeof KEY_EXHAUSTED>,
): Promise<T> {
  return withinDataKeyLimit(svc, secret.workspaceId, first, (dataKey) => {
    const binding = { ...secret, publicFields: valid.publicFields };
    const ciphertext = encryptSecretFields(dataKey.key, dataKey.version, binding, valid.secretFields);
    return write(ciphertext, { workspaceId: secret.workspaceId, version: dataKey.version, ...options });
  });
}

function duplicateName(svc: Services, credentialType: string, name: string): ConflictError {
  const display = svc.registry.credentialType(credentialType)?.definition.displayName ?? credentialType;
  return new ConflictError(`A ${display} named '${name}' already exists in this workspace`);
}

/**
 * Creates a secret: validate, then at most two statements and no explicit transaction:
 *   1. the workspace's newest data key (`WorkspaceKeys.newest`: no statement when this instance remembers it);
 *   2. one write, atomic on its own: a CTE that checks the membership under a share lock and that the data key
 *      is still the newest (`keyGuard`), inserts the secret, appends the audit event and returns the new row
 *      with its creator.
 * The encryption is counted against the data key's limit before, from this instance's reserved block
 * (keys/encryption-blocks.ts: one reservation statement per block, not a row update per create).
 * The share lock keeps rule 4: a removal running now either finished first (the CTE finds no membership and
 * inserts nothing: "not found") or waits for this statement and then deletes the new secret with the others.
 * A data key at its encryption limit (or a remembered key another instance has superseded) makes the write
 * store nothing; then the value is encrypted again with the next key (`withinDataKeyLimit`).
 */
export async function createSecret(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; credentialType: string; name: string; data: unknown },
  imported?: SecretImport,
): Promise<SecretMeta> {
  const valid = await validCredential(svc, actor, input.workspaceId, input.credentialType, input.data);
  requireSavedBy(svc, input.credentialType, 'create');
  const oauth2 = svc.registry.credentialType(input.credentialType)?.definition.oauth2;
  // A client-credentials type fetches its first token now: a client the service refuses is not saved.
  const connection = oauth2 ? await firstClientCredentialsToken(svc, actor, input, valid) : undefined;
  return insertSecret(svc, actor, input, valid, connection, imported);
}

/**
 * A secret brought in from another product (import/n8n.ts): where it came from, remembered on the row
 * (`import_source`, unique per workspace) and audited as `secret.imported` instead of `secret.created`.
 */
export interface SecretImport {
  source: 'n8n';
  /** The credential's id in the source product. */
  sourceId: string;
  /** Its type there (e.g. n8n's `httpBearerAuth`). */
  sourceType: string;
}

/** The secret's import source is already in the workspace (another run imported it meanwhile). */
export class AlreadyImportedError extends ConflictError {
  constructor() {
    super('Already imported into this workspace');
  }
}

const IMPORT_SOURCE_INDEX = 'secrets_import_source_idx';

export const importSourceOf = (imported: SecretImport) => `${imported.source}:${imported.sourceId}`;

/** What a new OAuth2 secret starts with: its status, and (client credentials) its first token. */
export interface NewConnection extends StoredToken {
  status: 'pending' | 'connected';
}

/**
 * Inserts a validated secret (static, or an OAuth2 connection with `connection`); see `createSecret`. Returns
 * its metadata.
 */
export async function insertSecret(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; credentialType: string; name: string },
  credential: ValidCredential,
  connection?: NewConnection,
  imported?: SecretImport,
): Promise<SecretMeta> {
  const valid = connection
    ? { ...credential, secretFields: { ...credential.secretFields, ...connection.tokenFields } }
    : credential;
  const first = await svc.keys.newestForWrite(svc.db, input.workspaceId);
  const id = newId();
  const binding = { workspaceId: input.workspaceId, secretId: id, credentialType: input.credentialType };
  const row = await encryptedWrite(
    svc,
    binding,
    valid,
    first,
    { newestOnly: true },
    async (ciphertext, key) => {
      let result: WriteOutcome | undefined;
      try {
        const { rows } = await sql<WriteOutcome>`
        with ${membershipCte(input.workspaceId, actor.userId, { share: true, workspace: false })},
        ${keyGuard('k', key, sql`exists (select 1 from me)`)},
        s as (
          insert into secrets (id, workspace_id, name, integration_id, node_type, credential_type, public_fields,
                               ciphertext, key_version, created_by, updated_at, kind, connection_status,
                               connection_account, connection_scopes, token_expires_at, token_refreshed_at,
                               import_source)
          select ${id}, ${input.workspaceId}, ${input.name}, ${valid.integrationId}, ${valid.nodeType},
                 ${input.credentialType}, ${JSON.stringify(valid.publicFields)}::jsonb, ${ciphertext}::bytea,
                 k.version, me.user_id, now(), ${connection ? 'oauth2' : 'static'}, ${connection?.status ?? null},
                 ${connection?.account ?? null}, ${connection?.scopes ?? null},
                 ${connection?.expiresAt ?? null}::timestamptz,
                 ${connection?.status === 'connected' ? sql`now()` : sql`null`},
                 ${imported ? importSourceOf(imported) : null}
          from me, k
          returning *
        ),
        audit as (${auditInsert(
          {
            workspaceId: sql`s.workspace_id`,
            actorId: sql`s.created_by`,
            action: imported ? 'secret.imported' : 'secret.created',
            targetType: 'secret',
            targetId: sql`s.id`,
            targetName: sql`s.name`,
            // An import names its source (ids and types only: never a value).
            details: imported
              ? sql`jsonb_build_object('credentialType', s.credential_type, 'source', ${imported.source}::text,
                                       'sourceId', ${imported.sourceId}::text, 'sourceType', ${imported.sourceType}::text)`
              : sql`jsonb_build_object('credentialType', s.credential_type)`,
          },
          sql`s`,
        )})
        select exists (select 1 from me) as found, exists (select 1 from k) as counted, r.*
        from (select 1) one
        left join (select ${META_SQL} from s join users u on u.id = s.created_by) r on true`.execute(svc.db);
        result = rows[0];
      } catch (error) {
        if (isUniqueViolation(error)) {
          if ((error as { constraint?: unknown }).constraint === IMPORT_SOURCE_INDEX) {
            throw new AlreadyImportedError();
          }
          throw duplicateName(svc, input.credentialType, input.name);
        }
        throw error;
      }
      // No membership under the lock: not a member (or removed meanwhile).
      if (!result?.found) throw new NotFoundError('Workspace');
      if (!result.counted) return KEY_EXHAUSTED;
      return result;
    },
  );
  return toMeta(svc.registry, row as MetaRow);
}

/**
 * The row of a guarded write: `found` (the membership or the secret still exists), `counted` (the data key may
 * be used: `keyGuard` returned its row), and the written row's metadata (all null when nothing was written).
 */
type WriteOutcome = { found: boolean; counted: boolean } & { [K in keyof MetaRow]: MetaRow[K] | null };

/**
 * Replaces a secret's value — and its public fields, e.g. an HTTP Request credential's allowed domains — in
 * place: same id, so every node that uses it keeps working. Three statements and no explicit transaction: the
 * secret with the caller's membership (its type decides how the value is validated and encrypted), the active
 * data key, and one write. The write checks the permission again itself (`manageGateCtes`: a member demoted or
 * removed since the read changes nothing), updates, and appends the audit event with every public field that
 * changed, old and new, in one CTE; the encryption is counted before (`withinDataKeyLimit`). A data key at its
 * limit is followed by the next version, and the value encrypted again with it.
 */
export async function replaceSecret(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; secretId: string; data: unknown },
): Promise<SecretMeta> {
  const existing = await manageableSecret(svc, actor, input.workspaceId, input.secretId);
  // A connection's envelope holds its tokens too: its client settings change by connecting again.
  if (existing.kind === 'oauth2') {
    throw new InvalidInputError([
      {
        path: ['secretId'],
        message:
          'This is an OAuth2 connection: its tokens come from its service. Reconnect it, or delete it and connect a new one with other client settings',
      },
    ]);
  }
  const valid = validOrThrow(svc, existing.credential_type, input.data);
  const first = await svc.keys.active(svc.db, input.workspaceId);
  const binding = {
    workspaceId: input.workspaceId,
    secretId: existing.id,
    credentialType: existing.credential_type,
  };
  const row = await encryptedWrite(svc, binding, valid, first, {}, async (ciphertext, key) => {
    const { rows } = await sql<WriteOutcome & GateOutcome>`
      with ${manageGateCtes(input.workspaceId, actor.userId, existing.id, { write: true })},
      ${keyGuard('k', key, sql`exists (select 1 from allowed)`)},
      s as (
        update secrets set ciphertext = ${ciphertext}::bytea, key_version = k.version,
                           public_fields = ${JSON.stringify(valid.publicFields)}::jsonb, updated_at = now()
        from k
        where secrets.id = ${existing.id} and secrets.workspace_id = ${input.workspaceId}
          and exists (select 1 from allowed)
        returning secrets.*
      ),
      audit as (${auditInsert(
        {
          workspaceId: sql`s.workspace_id`,
          actorId: actor.userId,
          action: 'secret.replaced',
          targetType: 'secret',
          targetId: sql`s.id`,
          targetName: sql`s.name`,
          details: sql`jsonb_build_object('credentialType', s.credential_type) || coalesce((
                 -- Public fields are not secret: a change (an HTTP Request credential's allowed domains) is
                 -- recorded with its old and new value. ("allowed" holds the row as it was before this update.)
                 select jsonb_build_object('publicFieldChanges', jsonb_object_agg(f.name,
                          jsonb_build_object('old', a.public_fields -> f.name, 'new', s.public_fields -> f.name)))
                 from (select jsonb_object_keys(a.public_fields) union select jsonb_object_keys(s.public_fields)) f(name)
                 where a.public_fields -> f.name is distinct from s.public_fields -> f.name
                 having count(*) > 0
               ), '{}'::jsonb)`,
        },
        sql`s, allowed a`,
      )})
      select ${GATE_RESULT}, exists (select 1 from k) as counted, r.*
      from (select 1) one
      left join (select ${META_SQL} from s join users u on u.id = s.created_by) r on true`.execute(svc.db);
    const result = rows[0];
    requireGate(result);
    // Deleted meanwhile (another request, another server): nothing was written.
    if (result?.counted && result.id === null) throw new NotFoundError('Secret');
    if (!result?.counted) return KEY_EXHAUSTED;
    return result;
  });
  return toMeta(svc.registry, row as MetaRow);
}
