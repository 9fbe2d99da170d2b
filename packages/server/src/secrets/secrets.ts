import { credentialDestinations, type Registry, type ValidCredential } from '@latchkey/core';
import { type RawBuilder, sql } from 'kysely';
import { auditInsert } from '../audit/audit.js';
import { encryptSecretFields } from '../crypto/index.js';
import type { Plan, Role } from '../db/schema.js';
import {
  ConflictError,
  InvalidInputError,
  issuesUnder,
  isUniqueViolation,
  NotAllowedError,
  NotFoundError,
} from '../errors.js';
import { newId } from '../identity/tokens.js';
import { countEncryption, KEY_EXHAUSTED } from '../keys/key-usage.js';
import { withinDataKeyLimit } from '../keys/rotation.js';
import type { ActiveDataKey } from '../keys/workspace-keys.js';
import type { Actor, Services } from '../services.js';
import { type Membership, permissions, requirePermission } from '../workspaces/access.js';

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
  lastTest: { ok: boolean; message: string; testedAt: string } | null;
  /**
   * True for a credential whose type restricts its hosts but which lists none (saved before the list was
   * required): it is sent nowhere until its creator, an owner or an admin adds allowed domains.
   */
  needsAllowedDomains: boolean;
}

export interface AffectedNode {
  workflowId: string;
  workflowName: string;
  nodeId: string;
  nodeName: string;
}

const iso = (value: Date | string | null) => (value === null ? null : new Date(value).toISOString());

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
  's.last_tested_at',
] as const;

type MetaRow = {
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
  last_tested_at: Date | null;
};

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

function toMeta(registry: Registry, row: MetaRow): SecretMeta {
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
            testedAt: iso(row.last_tested_at) as string,
          },
    needsAllowedDomains: destinationsOf(registry, row.credential_type, row.public_fields)?.length === 0,
  };
}

/** The columns of `metaColumns` as SQL, for the single-statement queries below (`s` = secrets, `u` = users). */
const META_SQL = sql.raw(metaColumns.join(', '));

/*
 * Round trips (docs/performance.md; counted by src/perf/round-trips.test.ts). Every operation of this module
 * checks the caller's membership in the SAME statement that does its work: a CTE `me` yields the caller's
 * membership (none: the workspace is "not found", exactly as before), and the page, row or write hangs off
 * it. So list and selectable are one statement, create is one read plus one write statement, and deleting any
 * number of secrets is one statement.
 */

const ALL_ROLES: readonly Role[] = ['owner', 'admin', 'member'];
const CALLER = 'the caller';
const asMembership = (role: Role): Membership => ({
  workspaceId: '',
  userId: CALLER,
  role,
  plan: 'team',
  name: '',
});
/** Roles that list every secret of a workspace, derived from the one role table (access.ts). */
const LIST_ALL_ROLES = ALL_ROLES.filter((role) => permissions.listAllSecrets(asMembership(role)));
/** Roles that may change or delete any secret, and roles that may change or delete the ones they created. */
const MANAGE_ANY_ROLES = ALL_ROLES.filter((role) =>
  permissions.manageSecret(asMembership(role), 'another member'),
);
const MANAGE_OWN_ROLES = ALL_ROLES.filter((role) => permissions.manageSecret(asMembership(role), CALLER));
const MAY_NOT_MANAGE = 'Only owners, admins and the member who created a secret can change or delete it';

/**
 * `permissions.manageSecret` as SQL over a membership row (`role`, `user_id`) and a secret row (`created_by`),
 * derived from the role table above: a write that carries it checks the permission in its own statement, so a
 * member demoted or removed after an earlier read cannot complete it.
 */
function mayManageSecret(membership: string, secret: string): RawBuilder<unknown> {
  const m = sql.ref(membership);
  return sql`(${m}.role in (${sql.join(MANAGE_ANY_ROLES)})
    or (${m}.role in (${sql.join(MANAGE_OWN_ROLES)}) and ${sql.ref(`${secret}.created_by`)} = ${m}.user_id))`;
}

/**
 * The CTEs that gate a write on one secret by the caller's permission, evaluated in the write's own statement:
 *   me      — the caller's membership, share-locked so a removal or role change waits for this statement (or,
 *             committed first, is what this statement sees);
 *   found   — the secret (id, created_by, public_fields);
 *   allowed — the secret again, only when `me` may manage it.
 */
function manageGateCtes(workspaceId: string, userId: string, secretId: string): RawBuilder<unknown> {
  return sql`me as (
      select user_id, role from memberships
      where workspace_id = ${workspaceId} and user_id = ${userId}
      for share
    ),
    found as (
      select id, created_by, public_fields from secrets where id = ${secretId} and workspace_id = ${workspaceId}
    ),
    allowed as (
      select found.id, found.public_fields from found, me where ${mayManageSecret('me', 'found')}
    )`;
}

/** The gate's verdict, in the final select of a gated write. */
const GATE_RESULT = sql`exists (select 1 from me) as member, exists (select 1 from found) as found,
  exists (select 1 from allowed) as allowed`;

type GateOutcome = { member: boolean; found: boolean; allowed: boolean };

/** Throws what the gate found missing: the membership ("not found"), the secret, or the permission. */
function requireGate(outcome: GateOutcome | undefined): void {
  if (!outcome?.member) throw new NotFoundError('Workspace');
  if (!outcome.found) throw new NotFoundError('Secret');
  if (!outcome.allowed) throw new NotAllowedError(MAY_NOT_MANAGE);
}

/** `me`: the caller's membership of the workspace (zero rows when they do not belong to it). */
function membershipCte(workspaceId: string, userId: string): RawBuilder<unknown> {
  return sql`me as (
    select m.workspace_id, m.user_id, m.role, w.plan, w.name as workspace_name
    from memberships m join workspaces w on w.id = m.workspace_id
    where m.workspace_id = ${workspaceId} and m.user_id = ${userId})`;
}

type MembershipColumns = {
  workspace_id: string;
  user_id: string;
  role: Role;
  plan: Plan;
  workspace_name: string;
};

function membershipFrom(row: MembershipColumns): Membership {
  return {
    workspaceId: row.workspace_id,
    userId: row.user_id,
    role: row.role,
    plan: row.plan,
    name: row.workspace_name,
  };
}

function validateData(svc: Services, credentialType: string, data: unknown): ValidCredential {
  const result = svc.registry.validateCredential(credentialType, data);
  if (!result.ok) {
    throw new InvalidInputError(issuesUnder('data', 'credentialType', result.issues));
  }
  return result.value;
}

function duplicateName(svc: Services, credentialType: string, name: string): ConflictError {
  const display = svc.registry.credentialType(credentialType)?.definition.displayName ?? credentialType;
  return new ConflictError(`A ${display} named '${name}' already exists in this workspace`);
}

/** The caller's membership (none: "not found") with the workspace's newest data key, in one read. */
async function membershipWithNewestKey(
  svc: Services,
  actor: Actor,
  workspaceId: string,
): Promise<ActiveDataKey> {
  const { rows } = await sql<{
    version: number | null;
    master_key_id: string | null;
    wrapped_key: Uint8Array | null;
  }>`
    select k.version, k.master_key_id, k.wrapped_key
    from memberships m
    left join lateral (
      select version, master_key_id, wrapped_key from workspace_keys
      where workspace_id = m.workspace_id order by version desc limit 1
    ) k on true
    where m.workspace_id = ${workspaceId} and m.user_id = ${actor.userId}`.execute(svc.db);
  const keyRow = rows[0];
  if (!keyRow) throw new NotFoundError('Workspace');
  if (keyRow.version === null || keyRow.master_key_id === null || keyRow.wrapped_key === null) {
    throw new Error('The workspace has no data key');
  }
  const key = {
    version: keyRow.version,
    key: await svc.keys.unwrap(workspaceId, {
      version: keyRow.version,
      master_key_id: keyRow.master_key_id,
      wrapped_key: keyRow.wrapped_key,
    }),
  };
  svc.keys.rememberActive(workspaceId, key);
  return key;
}

/**
 * Creates a secret in at most two statements and no explicit transaction:
 *   1. one read: the caller's membership joined with the workspace's active data key (the key must be known
 *      before the value can be encrypted) — skipped when this instance remembers the workspace's newest key;
 *   2. one write, atomic on its own: a CTE that re-checks the membership under a share lock, counts the
 *      encryption against the data key's limit (`countEncryption`), inserts the secret, appends the audit event
 *      and returns the new row with its creator.
 * The share lock keeps rule 4: a removal running now either finished first (the CTE finds no membership and
 * inserts nothing: "not found") or waits for this statement and then deletes the new secret with the others.
 * A data key at its encryption limit makes the write store nothing; then the next data-key version is added and
 * the value encrypted again with it (`withinDataKeyLimit`) — only then are there more statements.
 */
export async function createSecret(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; credentialType: string; name: string; data: unknown },
): Promise<SecretMeta> {
  // The workspace's newest data key from memory when this instance has seen it: then the write is the only
  // statement. It may be stale (another instance rotated): the write then counts nothing and stores nothing,
  // and is retried with the newest key (withinDataKeyLimit), like a key at its limit.
  const remembered = svc.keys.lastActive(input.workspaceId);
  let valid: ValidCredential;
  let first: ActiveDataKey;
  if (remembered) {
    try {
      valid = validateData(svc, input.credentialType, input.data);
    } catch (error) {
      // As without a remembered key: someone who is not a member learns "not found", not what is invalid.
      if (error instanceof InvalidInputError) await membershipWithNewestKey(svc, actor, input.workspaceId);
      throw error;
    }
    first = remembered;
  } else {
    first = await membershipWithNewestKey(svc, actor, input.workspaceId);
    valid = validateData(svc, input.credentialType, input.data);
  }
  const id = newId();
  const row = await withinDataKeyLimit(svc, input.workspaceId, first, async (dataKey) => {
    const ciphertext = encryptSecretFields(
      dataKey.key,
      dataKey.version,
      {
        workspaceId: input.workspaceId,
        secretId: id,
        credentialType: input.credentialType,
        publicFields: valid.publicFields,
      },
      valid.secretFields,
    );
    const counted = {
      workspaceId: input.workspaceId,
      version: dataKey.version,
      limit: svc.dataKeyMaxEncryptions,
      newestOnly: true,
    };
    let result: WriteOutcome | undefined;
    try {
      const { rows } = await sql<WriteOutcome>`
        with me as (
          select user_id from memberships
          where workspace_id = ${input.workspaceId} and user_id = ${actor.userId}
          for share
        ),
        ${countEncryption('k', counted, sql`exists (select 1 from me)`)},
        s as (
          insert into secrets (id, workspace_id, name, integration_id, node_type, credential_type, public_fields,
                               ciphertext, key_version, created_by, updated_at)
          select ${id}, ${input.workspaceId}, ${input.name}, ${valid.integrationId}, ${valid.nodeType},
                 ${input.credentialType}, ${JSON.stringify(valid.publicFields)}::jsonb, ${ciphertext}::bytea,
                 k.version, me.user_id, now()
          from me, k
          returning *
        ),
        audit as (${auditInsert(
          {
            workspaceId: sql`s.workspace_id`,
            actorId: sql`s.created_by`,
            action: 'secret.created',
            targetType: 'secret',
            targetId: sql`s.id`,
            targetName: sql`s.name`,
            details: sql`jsonb_build_object('credentialType', s.credential_type)`,
          },
          sql`s`,
        )})
        select exists (select 1 from me) as found, exists (select 1 from k) as counted, r.*
        from (select 1) one
        left join (select ${META_SQL} from s join users u on u.id = s.created_by) r on true`.execute(svc.db);
      result = rows[0];
    } catch (error) {
      if (isUniqueViolation(error)) throw duplicateName(svc, input.credentialType, input.name);
      throw error;
    }
    // No membership under the lock: the caller was removed since the read above.
    if (!result?.found) throw new NotFoundError('Workspace');
    if (!result.counted) return KEY_EXHAUSTED;
    return result;
  });
  return toMeta(svc.registry, row as MetaRow);
}

/**
 * The row of a counted write: `found` (the membership or the secret still exists), `counted` (the data key was
 * below its limit and counted this encryption), and the written row's metadata (all null when nothing was written).
 */
type WriteOutcome = { found: boolean; counted: boolean } & { [K in keyof MetaRow]: MetaRow[K] | null };

interface ListCursor {
  createdAt: string;
  id: string;
}

function encodeCursor(cursor: ListCursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAt, cursor.id])).toString('base64url');
}

/**
 * Exactly what `encodeCursor` writes for a row: `toISOString()` of a millisecond timestamp (years 0001–9999,
 * inside PostgreSQL's range; year 0000 does not exist there) and a UUID id (`newId`). Anything else — including
 * the dates `Date.parse` accepts loosely (`2024-02-30`, `1`, `+275760-…`) that PostgreSQL would refuse with
 * an error quoting them — is an invalid cursor, answered without repeating any of it.
 */
const CURSOR_TIMESTAMP = /^(?!0000)\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const CURSOR_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function decodeCursor(text: string): ListCursor {
  try {
    const bytes = Buffer.from(text, 'base64url');
    // Buffer.from skips characters that are not base64url: only the canonical text of some bytes is a cursor.
    if (bytes.toString('base64url') === text) {
      const parsed: unknown = JSON.parse(bytes.toString('utf8'));
      if (Array.isArray(parsed) && parsed.length === 2) {
        const [createdAt, id] = parsed as unknown[];
        if (
          typeof createdAt === 'string' &&
          typeof id === 'string' &&
          CURSOR_TIMESTAMP.test(createdAt) &&
          new Date(createdAt).toISOString() === createdAt &&
          CURSOR_ID.test(id)
        ) {
          return { createdAt, id };
        }
      }
    }
  } catch {
    // not base64url JSON (or an invalid date): fall through to the one answer for every malformed cursor
  }
  throw new InvalidInputError([{ path: ['cursor'], message: 'Not a cursor returned by secrets.list' }]);
}

export interface ListSecretsInput {
  workspaceId: string;
  nodeType?: string | undefined;
  integrationId?: string | undefined;
  createdBy?: string | undefined;
  search?: string | undefined;
  cursor?: string | undefined;
  limit?: number | undefined;
}

/**
 * Owners and admins see every secret of the workspace; members see the ones they created. Keyset-paginated.
 * ONE statement: `me` yields the caller's role, and two index-ordered branches (everything, for roles that list
 * all; the caller's own, by the creator index, for the others) hang off it; the branch the role does not take
 * is a one-time filter that reads nothing. No row at all means "not a member" (NOT_FOUND); a row without a
 * secret is an empty page.
 */
export async function listSecrets(
  svc: Services,
  actor: Actor,
  input: ListSecretsInput,
): Promise<{ items: SecretMeta[]; nextCursor: string | null }> {
  const limit = input.limit ?? 50;
  const filters: RawBuilder<unknown>[] = [];
  if (input.createdBy) filters.push(sql`and s.created_by = ${input.createdBy}`);
  if (input.nodeType) filters.push(sql`and s.node_type = ${input.nodeType}`);
  if (input.integrationId) filters.push(sql`and s.integration_id = ${input.integrationId}`);
  if (input.search) {
    const pattern = `%${input.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    filters.push(sql`and s.name ilike ${pattern}`);
  }
  if (input.cursor) {
    const cursor = decodeCursor(input.cursor);
    filters.push(sql`and (s.created_at, s.id) < (${cursor.createdAt}::timestamptz, ${cursor.id})`);
  }
  const where = sql.join(filters, sql` `);
  const branch = (scope: RawBuilder<unknown>) => sql`(
    select ${META_SQL} from secrets s join users u on u.id = s.created_by
    where s.workspace_id = ${input.workspaceId} and ${scope} ${where}
    order by s.created_at desc, s.id desc
    limit ${limit + 1})`;
  const listsAll = sql`me.role in (${sql.join(LIST_ALL_ROLES)})`;
  const { rows } = await sql<{ role: Role } & { [K in keyof MetaRow]: MetaRow[K] | null }>`
    with ${membershipCte(input.workspaceId, actor.userId)}
    select me.role, p.* from me
    left join lateral (
      ${branch(listsAll)}
      union all
      ${branch(sql`not (${listsAll}) and s.created_by = me.user_id`)}
    ) p on true
    order by p.created_at desc, p.id desc`.execute(svc.db);
  if (rows.length === 0) throw new NotFoundError('Workspace');
  const found = rows.filter((r): r is { role: Role } & MetaRow => r.id !== null);
  const page = found.slice(0, limit);
  const last = page[page.length - 1];
  return {
    items: page.map((row) => toMeta(svc.registry, row)),
    nextCursor:
      found.length > limit && last
        ? encodeCursor({ createdAt: iso(last.created_at) as string, id: last.id })
        : null,
  };
}

/**
 * Every member may pick any workspace secret whose credential type the node type accepts. ONE statement: the
 * membership and the index-ordered list together (no row: not a member; one row without an id: none to pick).
 */
export interface SelectableSecret {
  id: string;
  name: string;
  credentialType: string;
  /**
   * The hosts the credential may be sent to (subdomains included), for the node editor to show next to the
   * picker: `null` when its type does not restrict hosts; empty when it needs allowed domains first.
   */
  allowedHosts: string[] | null;
}

export async function selectableSecrets(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; nodeType: string },
): Promise<SelectableSecret[]> {
  const known = Boolean(svc.registry.integrationForNodeType(input.nodeType));
  const { rows } = await sql<{
    id: string | null;
    name: string | null;
    credential_type: string | null;
    public_fields: Record<string, string> | null;
  }>`
    with ${membershipCte(input.workspaceId, actor.userId)}
    select p.id, p.name, p.credential_type, p.public_fields from me
    left join lateral (
      select s.id, s.name, s.credential_type, s.public_fields from secrets s
      where s.workspace_id = me.workspace_id and s.node_type = ${input.nodeType} and ${known}::boolean
      order by s.name, s.id
    ) p on true
    order by p.name, p.id`.execute(svc.db);
  // Membership first, as everywhere: a stranger learns nothing, not even which node types exist here.
  if (rows.length === 0) throw new NotFoundError('Workspace');
  if (!known) throw new InvalidInputError([{ path: ['nodeType'], message: 'Unknown node type' }]);
  return rows.flatMap((r) =>
    r.id === null || r.credential_type === null
      ? []
      : [
          {
            id: r.id,
            name: r.name as string,
            credentialType: r.credential_type,
            allowedHosts: destinationsOf(svc.registry, r.credential_type, r.public_fields ?? {}),
          },
        ],
  );
}

/**
 * Loads a secret the caller may manage (owner/admin: any; member: their own): ONE statement, the membership
 * and the secret together.
 */
async function manageableSecret(svc: Services, actor: Actor, workspaceId: string, secretId: string) {
  const { rows } = await sql<MembershipColumns & { [K in keyof MetaRow]: MetaRow[K] | null }>`
    with ${membershipCte(workspaceId, actor.userId)}
    select me.workspace_id, me.user_id, me.role, me.plan, me.workspace_name, p.* from me
    left join lateral (
      select ${META_SQL} from secrets s join users u on u.id = s.created_by
      where s.id = ${secretId} and s.workspace_id = me.workspace_id
    ) p on true`.execute(svc.db);
  const found = rows[0];
  if (!found) throw new NotFoundError('Workspace');
  if (found.id === null) throw new NotFoundError('Secret');
  const row = found as MetaRow & MembershipColumns;
  requirePermission(permissions.manageSecret(membershipFrom(row), row.created_by), MAY_NOT_MANAGE);
  return row;
}

export async function secretUsage(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; secretId: string },
): Promise<AffectedNode[]> {
  await manageableSecret(svc, actor, input.workspaceId, input.secretId);
  const rows = await svc.db
    .selectFrom('workflow_nodes as n')
    .innerJoin('workflows as w', 'w.id', 'n.workflow_id')
    .select(['w.id as workflow_id', 'w.name as workflow_name', 'n.id as node_id', 'n.name as node_name'])
    .where('n.secret_id', '=', input.secretId)
    .where('n.workspace_id', '=', input.workspaceId)
    .orderBy('w.name')
    .orderBy('n.position')
    .execute();
  return rows.map((r) => ({
    workflowId: r.workflow_id,
    workflowName: r.workflow_name,
    nodeId: r.node_id,
    nodeName: r.node_name,
  }));
}

/**
 * Replaces a secret's value — and its public fields, e.g. an HTTP Request credential's allowed domains — in
 * place: same id, so every node that uses it keeps working. Three statements and no explicit transaction: the
 * secret with the caller's membership (its type decides how the value is validated and encrypted), the active
 * data key, and one write. The write checks the permission again itself (`manageGateCtes`: a member demoted or
 * removed since the read changes nothing), counts the encryption against the data key's limit, updates, and
 * appends the audit event with every public field that changed, old and new, in one CTE. A data key at its
 * limit makes the write store nothing; then the next version is added and the value encrypted again.
 */
export async function replaceSecret(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; secretId: string; data: unknown },
): Promise<SecretMeta> {
  const existing = await manageableSecret(svc, actor, input.workspaceId, input.secretId);
  const valid = validateData(svc, existing.credential_type, input.data);
  const first = await svc.keys.active(svc.db, input.workspaceId);
  const row = await withinDataKeyLimit(svc, input.workspaceId, first, async (dataKey) => {
    const ciphertext = encryptSecretFields(
      dataKey.key,
      dataKey.version,
      {
        workspaceId: input.workspaceId,
        secretId: existing.id,
        credentialType: existing.credential_type,
        publicFields: valid.publicFields,
      },
      valid.secretFields,
    );
    const counted = {
      workspaceId: input.workspaceId,
      version: dataKey.version,
      limit: svc.dataKeyMaxEncryptions,
    };
    const { rows } = await sql<WriteOutcome & GateOutcome>`
      with ${manageGateCtes(input.workspaceId, actor.userId, existing.id)},
      ${countEncryption('k', counted, sql`exists (select 1 from allowed)`)},
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

export type SecretsToDelete =
  | { workspaceId: string; secretId: string }
  | { workspaceId: string; createdBy: string };

/**
 * The CTEs that delete secrets and flag the nodes that used them, for a caller to put in front of its own
 * statement (its audit event, a membership it ends): set-based, one statement however many secrets match.
 *   doomed  — the matching secrets (id, name, credential_type);
 *   flagged — the nodes that used them, now without a secret but keeping its name (node_id, node_name,
 *             workflow_id, position), so the editor can say what to replace;
 *   deleted — the secrets deleted (id, name, credential_type).
 * The foreign key's ON DELETE SET NULL still guards any node this statement did not see.
 */
export function secretDeletionCtes(
  where: SecretsToDelete,
  onlyIf: RawBuilder<unknown> = sql`true`,
): RawBuilder<unknown> {
  // Each CTE names the rows by its own index (the primary key, or the creator index), never by a join through
  // `doomed`: the plan must not depend on statistics (PGlite has no autovacuum to keep them fresh).
  const one = 'secretId' in where;
  const match = one ? sql`s.id = ${where.secretId}` : sql`s.created_by = ${where.createdBy}`;
  const nodeMatch = one ? sql`and n.secret_id = ${where.secretId}` : sql``;
  return sql`doomed as (
      select s.id, s.name, s.credential_type from secrets s
      where s.workspace_id = ${where.workspaceId} and ${match} and ${onlyIf}
    ),
    flagged as (
      update workflow_nodes n
      set lost_secret_name = d.name, secret_id = null, updated_at = now()
      from doomed d
      where n.secret_id = d.id and n.workspace_id = ${where.workspaceId} ${nodeMatch}
      returning n.id as node_id, n.name as node_name, n.workflow_id, n.position
    ),
    deleted as (
      delete from secrets s
      where s.workspace_id = ${where.workspaceId} and ${match} and ${onlyIf}
      returning s.id, s.name, s.credential_type
    )`;
}

/** Columns for the final select of a statement built on `secretDeletionCtes`: the counts and the nodes. */
export const SECRET_DELETION_RESULT = sql`
  (select count(*) from deleted)::integer as deleted_count,
  coalesce((
    select json_agg(json_build_object('workflowId', w.id, 'workflowName', w.name,
                                      'nodeId', f.node_id, 'nodeName', f.node_name)
                    order by w.name, f.position, f.node_id)
    from flagged f join workflows w on w.id = f.workflow_id
  ), '[]'::json) as affected_nodes`;

export interface SecretDeletionResult {
  deleted_count: number;
  /** json from PostgreSQL; PGlite and pg both parse it. */
  affected_nodes: AffectedNode[] | string;
}

export function affectedNodesOf(row: SecretDeletionResult): AffectedNode[] {
  return typeof row.affected_nodes === 'string'
    ? (JSON.parse(row.affected_nodes) as AffectedNode[])
    : row.affected_nodes;
}

/**
 * Deletes one secret in ONE statement, atomic without an explicit transaction: the permission check
 * (`manageGateCtes`: membership share-locked, the role table as SQL), the deletion, the flagging of its nodes
 * and the audit event together — so a member demoted or removed meanwhile deletes nothing.
 */
export async function deleteSecret(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; secretId: string },
): Promise<{ affectedNodes: AffectedNode[] }> {
  const { rows } = await sql<SecretDeletionResult & GateOutcome>`
    with ${manageGateCtes(input.workspaceId, actor.userId, input.secretId)},
    ${secretDeletionCtes({ workspaceId: input.workspaceId, secretId: input.secretId }, sql`exists (select 1 from allowed)`)},
    audit as (${auditInsert(
      {
        workspaceId: input.workspaceId,
        actorId: actor.userId,
        action: 'secret.deleted',
        targetType: 'secret',
        targetId: sql`d.id`,
        targetName: sql`d.name`,
        details: sql`jsonb_build_object('credentialType', d.credential_type,
                                        'affectedNodes', (select count(*) from flagged))`,
      },
      sql`deleted d`,
    )})
    select ${GATE_RESULT}, ${SECRET_DELETION_RESULT}`.execute(svc.db);
  const row = rows[0];
  requireGate(row);
  // Deleted meanwhile (another request, another server): nothing was written.
  if (!row || row.deleted_count === 0) throw new NotFoundError('Secret');
  return { affectedNodes: affectedNodesOf(row) };
}
