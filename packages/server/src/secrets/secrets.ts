import type { FieldIssue, ValidCredential } from '@latchkey/core';
import { type Kysely, sql, type Transaction } from 'kysely';
import { recordAudit } from '../audit/audit.js';
import { encryptSecretFields } from '../crypto/index.js';
import type { Database } from '../db/schema.js';
import { ConflictError, InvalidInputError, isUniqueViolation, NotFoundError } from '../errors.js';
import { newId } from '../identity/tokens.js';
import type { Actor, Services } from '../services.js';
import { membershipOf, permissions, requirePermission } from '../workspaces/access.js';

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

function toMeta(row: MetaRow): SecretMeta {
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
  };
}

function metaQuery(db: Kysely<Database> | Transaction<Database>) {
  return db.selectFrom('secrets as s').innerJoin('users as u', 'u.id', 's.created_by').select(metaColumns);
}

function validateData(svc: Services, credentialType: string, data: unknown): ValidCredential {
  const result = svc.registry.validateCredential(credentialType, data);
  if (!result.ok) {
    const issues: FieldIssue[] = result.issues.map((issue) =>
      issue.path[0] === 'credentialType' ? issue : { ...issue, path: ['data', ...issue.path] },
    );
    throw new InvalidInputError(issues);
  }
  return result.value;
}

function duplicateName(svc: Services, credentialType: string, name: string): ConflictError {
  const display = svc.registry.credentialType(credentialType)?.definition.displayName ?? credentialType;
  return new ConflictError(`A ${display} named '${name}' already exists in this workspace`);
}

export async function createSecret(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; credentialType: string; name: string; data: unknown },
): Promise<SecretMeta> {
  await membershipOf(svc.db, input.workspaceId, actor.userId);
  const valid = validateData(svc, input.credentialType, input.data);
  const id = newId();
  const dataKey = await svc.keys.active(svc.db, input.workspaceId);
  const ciphertext = encryptSecretFields(
    dataKey.key,
    dataKey.version,
    { workspaceId: input.workspaceId, secretId: id, credentialType: input.credentialType },
    valid.secretFields,
  );
  try {
    await svc.db.transaction().execute(async (trx) => {
      // Re-check the membership under a share lock: a removal running now either finishes first (and we
      // refuse) or waits for this insert and then deletes the new secret with the others (rule 4).
      const stillMember = await trx
        .selectFrom('memberships')
        .select('user_id')
        .where('workspace_id', '=', input.workspaceId)
        .where('user_id', '=', actor.userId)
        .forShare()
        .executeTakeFirst();
      if (!stillMember) throw new NotFoundError('Workspace');
      await trx
        .insertInto('secrets')
        .values({
          id,
          workspace_id: input.workspaceId,
          name: input.name,
          integration_id: valid.integrationId,
          node_type: valid.nodeType,
          credential_type: input.credentialType,
          public_fields: JSON.stringify(valid.publicFields),
          ciphertext,
          key_version: dataKey.version,
          created_by: actor.userId,
          updated_at: new Date(),
        })
        .execute();
      await recordAudit(trx, {
        workspaceId: input.workspaceId,
        actorId: actor.userId,
        action: 'secret.created',
        targetType: 'secret',
        targetId: id,
        targetName: input.name,
        details: { credentialType: input.credentialType },
      });
    });
  } catch (error) {
    if (isUniqueViolation(error)) throw duplicateName(svc, input.credentialType, input.name);
    throw error;
  }
  const row = await metaQuery(svc.db).where('s.id', '=', id).executeTakeFirstOrThrow();
  return toMeta(row);
}

interface ListCursor {
  createdAt: string;
  id: string;
}

function encodeCursor(cursor: ListCursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAt, cursor.id])).toString('base64url');
}

function decodeCursor(text: string): ListCursor {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown[];
    if (typeof createdAt === 'string' && typeof id === 'string' && !Number.isNaN(Date.parse(createdAt))) {
      return { createdAt, id };
    }
  } catch {
    // fall through
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

/** Owners and admins see every secret of the workspace; members see the ones they created. Keyset-paginated. */
export async function listSecrets(
  svc: Services,
  actor: Actor,
  input: ListSecretsInput,
): Promise<{ items: SecretMeta[]; nextCursor: string | null }> {
  const membership = await membershipOf(svc.db, input.workspaceId, actor.userId);
  const limit = input.limit ?? 50;
  let query = metaQuery(svc.db).where('s.workspace_id', '=', input.workspaceId);
  if (!permissions.listAllSecrets(membership)) query = query.where('s.created_by', '=', actor.userId);
  if (input.createdBy) query = query.where('s.created_by', '=', input.createdBy);
  if (input.nodeType) query = query.where('s.node_type', '=', input.nodeType);
  if (input.integrationId) query = query.where('s.integration_id', '=', input.integrationId);
  if (input.search) {
    const pattern = `%${input.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    query = query.where('s.name', 'ilike', pattern);
  }
  if (input.cursor) {
    const cursor = decodeCursor(input.cursor);
    query = query.where(
      sql<boolean>`(s.created_at, s.id) < (${cursor.createdAt}::timestamptz, ${cursor.id})`,
    );
  }
  const rows = await query
    .orderBy('s.created_at', 'desc')
    .orderBy('s.id', 'desc')
    .limit(limit + 1)
    .execute();
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    items: page.map(toMeta),
    nextCursor:
      rows.length > limit && last
        ? encodeCursor({ createdAt: iso(last.created_at) as string, id: last.id })
        : null,
  };
}

/** Every member may pick any workspace secret whose credential type the node type accepts. */
export async function selectableSecrets(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; nodeType: string },
): Promise<{ id: string; name: string; credentialType: string }[]> {
  await membershipOf(svc.db, input.workspaceId, actor.userId);
  if (!svc.registry.integrationForNodeType(input.nodeType)) {
    throw new InvalidInputError([{ path: ['nodeType'], message: 'Unknown node type' }]);
  }
  const rows = await svc.db
    .selectFrom('secrets')
    .select(['id', 'name', 'credential_type'])
    .where('workspace_id', '=', input.workspaceId)
    .where('node_type', '=', input.nodeType)
    .orderBy('name')
    .orderBy('id')
    .execute();
  return rows.map((r) => ({ id: r.id, name: r.name, credentialType: r.credential_type }));
}

/** Loads a secret the caller may manage (owner/admin: any; member: their own). */
async function manageableSecret(svc: Services, actor: Actor, workspaceId: string, secretId: string) {
  const membership = await membershipOf(svc.db, workspaceId, actor.userId);
  const row = await metaQuery(svc.db)
    .where('s.id', '=', secretId)
    .where('s.workspace_id', '=', workspaceId)
    .executeTakeFirst();
  if (!row) throw new NotFoundError('Secret');
  requirePermission(
    permissions.manageSecret(membership, row.created_by),
    'Only owners, admins and the member who created a secret can change or delete it',
  );
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

/** Replaces a secret's value in place: same id, so every node that uses it keeps working. */
export async function replaceSecret(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; secretId: string; data: unknown },
): Promise<SecretMeta> {
  const existing = await manageableSecret(svc, actor, input.workspaceId, input.secretId);
  const valid = validateData(svc, existing.credential_type, input.data);
  const dataKey = await svc.keys.active(svc.db, input.workspaceId);
  const ciphertext = encryptSecretFields(
    dataKey.key,
    dataKey.version,
    { workspaceId: input.workspaceId, secretId: existing.id, credentialType: existing.credential_type },
    valid.secretFields,
  );
  await svc.db.transaction().execute(async (trx) => {
    const updated = await trx
      .updateTable('secrets')
      .set({
        ciphertext,
        key_version: dataKey.version,
        public_fields: JSON.stringify(valid.publicFields),
        updated_at: new Date(),
      })
      .where('id', '=', existing.id)
      .where('workspace_id', '=', input.workspaceId)
      .returning('id')
      .executeTakeFirst();
    if (!updated) throw new NotFoundError('Secret');
    await recordAudit(trx, {
      workspaceId: input.workspaceId,
      actorId: actor.userId,
      action: 'secret.replaced',
      targetType: 'secret',
      targetId: existing.id,
      targetName: existing.name,
      details: { credentialType: existing.credential_type },
    });
  });
  const row = await metaQuery(svc.db).where('s.id', '=', existing.id).executeTakeFirstOrThrow();
  return toMeta(row);
}

/**
 * Deletes secrets inside the caller's transaction and flags the nodes that used them: set-based, a
 * constant number of statements however many secrets match. The nodes keep the lost secret's name so
 * the editor can say what to replace.
 */
export async function deleteSecretsAndFlagNodes(
  trx: Transaction<Database>,
  where: { workspaceId: string; secretId: string } | { workspaceId: string; createdBy: string },
): Promise<{ deleted: { id: string; name: string }[]; affectedNodes: AffectedNode[] }> {
  const inWorkspace = trx.selectFrom('secrets').select('id').where('workspace_id', '=', where.workspaceId);
  const matching =
    'secretId' in where
      ? inWorkspace.where('id', '=', where.secretId)
      : inWorkspace.where('created_by', '=', where.createdBy);
  const flagged = await trx
    .updateTable('workflow_nodes as n')
    .from('secrets as s')
    .set((eb) => ({ lost_secret_name: eb.ref('s.name'), secret_id: null, updated_at: new Date() }))
    .whereRef('n.secret_id', '=', 's.id')
    .where('s.id', 'in', matching)
    .where('n.workspace_id', '=', where.workspaceId)
    .returning(['n.id as node_id', 'n.name as node_name', 'n.workflow_id'])
    .execute();
  const deleted = await trx
    .deleteFrom('secrets')
    .where('workspace_id', '=', where.workspaceId)
    .where('id', 'in', matching)
    .returning(['id', 'name'])
    .execute();
  const workflowNames = new Map<string, string>();
  if (flagged.length) {
    const workflows = await trx
      .selectFrom('workflows')
      .select(['id', 'name'])
      .where('id', 'in', [...new Set(flagged.map((f) => f.workflow_id))])
      .execute();
    for (const w of workflows) workflowNames.set(w.id, w.name);
  }
  return {
    deleted,
    affectedNodes: flagged.map((f) => ({
      workflowId: f.workflow_id,
      workflowName: workflowNames.get(f.workflow_id) ?? '',
      nodeId: f.node_id,
      nodeName: f.node_name,
    })),
  };
}

export async function deleteSecret(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; secretId: string },
): Promise<{ affectedNodes: AffectedNode[] }> {
  const existing = await manageableSecret(svc, actor, input.workspaceId, input.secretId);
  return svc.db.transaction().execute(async (trx) => {
    const result = await deleteSecretsAndFlagNodes(trx, {
      workspaceId: input.workspaceId,
      secretId: existing.id,
    });
    if (result.deleted.length === 0) throw new NotFoundError('Secret');
    await recordAudit(trx, {
      workspaceId: input.workspaceId,
      actorId: actor.userId,
      action: 'secret.deleted',
      targetType: 'secret',
      targetId: existing.id,
      targetName: existing.name,
      details: { credentialType: existing.credential_type, affectedNodes: result.affectedNodes.length },
    });
    return { affectedNodes: result.affectedNodes };
  });
}
