import { credentialSubject, destinationRefusal, type IntegrationDefinition } from '@latchkey/core';
import { type Kysely, sql, type Transaction } from 'kysely';
import { membershipOf } from '../access/membership.js';
import { type AuditEvent, recordAudit } from '../audit/audit.js';
import type { Database } from '../db/schema.js';
import { InvalidInputError, issuesUnder, NotFoundError, SecretNotSelectableError } from '../errors.js';
import { newId } from '../identity/tokens.js';
import { destinationsOf } from '../secrets/meta.js';
import type { Actor, Services } from '../services.js';

export interface WorkflowNode {
  id: string;
  name: string;
  nodeType: string;
  params: Record<string, unknown>;
  secretId: string | null;
  status: 'ok' | 'needs-credential';
  lostSecretName?: string;
}

type NodeRow = {
  id: string;
  name: string;
  node_type: string;
  params: Record<string, unknown>;
  secret_id: string | null;
  lost_secret_name: string | null;
};

function toNode(row: NodeRow): WorkflowNode {
  const needsCredential = row.secret_id === null;
  return {
    id: row.id,
    name: row.name,
    nodeType: row.node_type,
    params: row.params,
    secretId: row.secret_id,
    status: needsCredential ? 'needs-credential' : 'ok',
    ...(row.lost_secret_name && needsCredential ? { lostSecretName: row.lost_secret_name } : {}),
  };
}

/** A workflow the caller can reach (a member of its workspace); anything else is "not found". */
async function reachableWorkflow(db: Kysely<Database>, actor: Actor, workflowId: string) {
  const workflow = await db
    .selectFrom('workflows as w')
    .innerJoin('memberships as m', (join) =>
      join.onRef('m.workspace_id', '=', 'w.workspace_id').on('m.user_id', '=', actor.userId),
    )
    .select(['w.id', 'w.workspace_id', 'w.name'])
    .where('w.id', '=', workflowId)
    .executeTakeFirst();
  if (!workflow) throw new NotFoundError('Workflow');
  return workflow;
}

function validParams(svc: Services, nodeType: string, params: unknown): Record<string, unknown> {
  const result = svc.registry.validateParams(nodeType, params, 'draft');
  if (!result.ok) {
    throw new InvalidInputError(issuesUnder('params', 'nodeType', result.issues));
  }
  return result.value;
}

type NodeSecret = {
  id: string;
  name: string;
  credential_type: string;
  public_fields: Record<string, string>;
};

/** A secret of the workflow's workspace, by id (another workspace's: "not found"). */
async function secretInWorkspace(svc: Services, workspaceId: string, secretId: string): Promise<NodeSecret> {
  const secret = await svc.db
    .selectFrom('secrets')
    .select(['id', 'name', 'credential_type', 'public_fields'])
    .where('id', '=', secretId)
    .where('workspace_id', '=', workspaceId)
    .executeTakeFirst();
  if (!secret) throw new NotFoundError('Secret');
  return secret;
}

/** Rule 1: a secret is selectable only by nodes of its type, and only inside its own workspace. */
async function selectableSecret(
  svc: Services,
  workspaceId: string,
  node: { name: string; nodeType: string },
  secretId: string,
): Promise<NodeSecret> {
  const secret = await secretInWorkspace(svc, workspaceId, secretId);
  if (!svc.registry.accepts(node.nodeType, secret.credential_type)) {
    const integration = svc.registry.integrationForNodeType(node.nodeType);
    throw new SecretNotSelectableError(node.name, integration?.displayName ?? node.nodeType);
  }
  return secret;
}

/**
 * A node is not saved pointing its credential where the credential may not go (the runner would refuse every
 * run): the URL in the integration's `destinationParam` must be a host the credential allows, with the very
 * message a run would give (`destinationRefusal`). The runner still checks every request; this is the editor's
 * early answer, and the server's, whatever client saves the node.
 */
function requireAllowedDestination(
  svc: Services,
  integration: IntegrationDefinition | undefined,
  params: Record<string, unknown>,
  secret: NodeSecret,
): void {
  const param = integration?.destinationParam;
  const url = param === undefined ? undefined : params[param];
  if (param === undefined || typeof url !== 'string') return;
  let host: string;
  try {
    host = new URL(url).hostname;
  } catch {
    return; // not a URL yet (a draft): nothing would be sent, and the params schema names what is wrong
  }
  const destinations = destinationsOf(svc.registry, secret.credential_type, secret.public_fields);
  const refusal = destinationRefusal(credentialSubject(secret.name), destinations, host);
  if (refusal) throw new InvalidInputError([{ path: ['params', param], message: refusal }]);
}

/** The audit event of a change to a workflow (its target), written in the change's transaction. */
function workflowEvent(
  actor: Actor,
  workflow: { id: string; workspace_id: string; name: string },
  action: AuditEvent['action'],
  details: Record<string, unknown>,
): AuditEvent {
  return {
    workspaceId: workflow.workspace_id,
    actorId: actor.userId,
    action,
    targetType: 'workflow',
    targetId: workflow.id,
    targetName: workflow.name,
    details,
  };
}

/** The credential a node uses, by id and name, as the node events record it (`null`: none). */
function credentialDetails(
  secret: { id: string; name: string } | null | undefined,
  prefix: 'secret' | 'previousSecret' = 'secret',
): Record<string, string | null> {
  return { [`${prefix}Id`]: secret?.id ?? null, [`${prefix}Name`]: secret?.name ?? null };
}

/** The name of a secret of the workspace, if it still exists (a node's previous credential). */
async function secretName(
  db: Kysely<Database> | Transaction<Database>,
  workspaceId: string,
  secretId: string | null,
): Promise<{ id: string; name: string } | null> {
  if (secretId === null) return null;
  const row = await db
    .selectFrom('secrets')
    .select(['id', 'name'])
    .where('id', '=', secretId)
    .where('workspace_id', '=', workspaceId)
    .executeTakeFirst();
  return row ?? null;
}

/** A change to a workflow's nodes is a change to the workflow: its `updated_at` moves. */
async function touchWorkflow(trx: Transaction<Database>, workflowId: string): Promise<void> {
  await trx.updateTable('workflows').set({ updated_at: new Date() }).where('id', '=', workflowId).execute();
}

const nodeColumns = ['id', 'name', 'node_type', 'params', 'secret_id', 'lost_secret_name'] as const;

export async function createWorkflow(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; name: string },
) {
  await membershipOf(svc.db, input.workspaceId, actor.userId);
  const id = newId();
  await svc.db.transaction().execute(async (trx) => {
    await trx
      .insertInto('workflows')
      .values({ id, workspace_id: input.workspaceId, name: input.name, updated_at: new Date() })
      .execute();
    await recordAudit(
      trx,
      workflowEvent(actor, { id, workspace_id: input.workspaceId, name: input.name }, 'workflow.created', {}),
    );
  });
  return { id, workspaceId: input.workspaceId, name: input.name };
}

/** Renames a workflow (any member, like every other change to it). The same name changes nothing. */
export async function renameWorkflow(
  svc: Services,
  actor: Actor,
  input: { workflowId: string; name: string },
): Promise<{ id: string; workspaceId: string; name: string }> {
  const workflow = await reachableWorkflow(svc.db, actor, input.workflowId);
  if (workflow.name !== input.name) {
    await svc.db.transaction().execute(async (trx) => {
      const renamed = await trx
        .updateTable('workflows')
        .set({ name: input.name, updated_at: new Date() })
        .where('id', '=', workflow.id)
        .returning('id')
        .executeTakeFirst();
      if (!renamed) throw new NotFoundError('Workflow');
      await recordAudit(
        trx,
        workflowEvent(actor, { ...workflow, name: input.name }, 'workflow.renamed', {
          from: workflow.name,
          to: input.name,
        }),
      );
    });
  }
  return { id: workflow.id, workspaceId: workflow.workspace_id, name: input.name };
}

/** Deletes a workflow and its nodes (the secrets they used stay): one audit event naming the nodes. */
export async function deleteWorkflow(
  svc: Services,
  actor: Actor,
  input: { workflowId: string },
): Promise<{ id: string }> {
  const workflow = await reachableWorkflow(svc.db, actor, input.workflowId);
  await svc.db.transaction().execute(async (trx) => {
    const nodes = await trx
      .selectFrom('workflow_nodes')
      .select(['id', 'name'])
      .where('workflow_id', '=', workflow.id)
      .orderBy('position')
      .orderBy('id')
      .execute();
    const deleted = await trx
      .deleteFrom('workflows')
      .where('id', '=', workflow.id)
      .returning('id')
      .executeTakeFirst();
    if (!deleted) throw new NotFoundError('Workflow');
    await recordAudit(
      trx,
      workflowEvent(actor, workflow, 'workflow.deleted', {
        nodeCount: nodes.length,
        nodes: nodes.map((n) => ({ nodeId: n.id, nodeName: n.name })),
      }),
    );
  });
  return { id: workflow.id };
}

export async function listWorkflows(svc: Services, actor: Actor, input: { workspaceId: string }) {
  await membershipOf(svc.db, input.workspaceId, actor.userId);
  const rows = await svc.db
    .selectFrom('workflows as w')
    .leftJoin('workflow_nodes as n', 'n.workflow_id', 'w.id')
    .select((eb) => [
      'w.id',
      'w.name',
      'w.updated_at',
      eb.fn.count<string>('n.id').as('node_count'),
      sql<string>`count(*) filter (where n.id is not null and n.secret_id is null)`.as('needing'),
    ])
    .where('w.workspace_id', '=', input.workspaceId)
    .groupBy(['w.id', 'w.name', 'w.updated_at', 'w.created_at'])
    .orderBy('w.created_at')
    .orderBy('w.id')
    .execute();
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    nodeCount: Number(r.node_count),
    needsAttention: Number(r.needing) > 0,
    updatedAt: new Date(r.updated_at).toISOString(),
  }));
}

export async function getWorkflow(svc: Services, actor: Actor, input: { workflowId: string }) {
  const workflow = await reachableWorkflow(svc.db, actor, input.workflowId);
  const nodes = await svc.db
    .selectFrom('workflow_nodes')
    .select(nodeColumns)
    .where('workflow_id', '=', workflow.id)
    .orderBy('position')
    .orderBy('id')
    .execute();
  return {
    id: workflow.id,
    workspaceId: workflow.workspace_id,
    name: workflow.name,
    nodes: nodes.map(toNode),
  };
}

export async function addNode(
  svc: Services,
  actor: Actor,
  input: {
    workflowId: string;
    name: string;
    nodeType: string;
    params: unknown;
    secretId?: string | undefined;
  },
): Promise<WorkflowNode> {
  const workflow = await reachableWorkflow(svc.db, actor, input.workflowId);
  const params = validParams(svc, input.nodeType, input.params);
  let secret: NodeSecret | undefined;
  if (input.secretId !== undefined) {
    secret = await selectableSecret(svc, workflow.workspace_id, input, input.secretId);
    requireAllowedDestination(svc, svc.registry.integrationForNodeType(input.nodeType), params, secret);
  }
  const id = newId();
  const row = await svc.db.transaction().execute(async (trx) => {
    const last = await trx
      .selectFrom('workflow_nodes')
      .select((eb) => eb.fn.max('position').as('max'))
      .where('workflow_id', '=', workflow.id)
      .executeTakeFirst();
    await touchWorkflow(trx, workflow.id);
    await recordAudit(
      trx,
      workflowEvent(actor, workflow, 'workflow.node_added', {
        nodeId: id,
        nodeName: input.name,
        nodeType: input.nodeType,
        ...credentialDetails(secret),
      }),
    );
    return trx
      .insertInto('workflow_nodes')
      .values({
        id,
        workflow_id: workflow.id,
        workspace_id: workflow.workspace_id,
        name: input.name,
        node_type: input.nodeType,
        params: JSON.stringify(params),
        secret_id: input.secretId ?? null,
        lost_secret_name: null,
        position: (last?.max ?? 0) + 1,
        updated_at: new Date(),
      })
      .returning(nodeColumns)
      .executeTakeFirstOrThrow();
  });
  return toNode(row);
}

/** JSON with object keys sorted (stored jsonb comes back in its own key order). */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/**
 * What a node change records: the node (its name now, and before if renamed), which parameters changed (their
 * names, never their values), and the credential it now uses with the one it used before when that changed.
 */
function describeNodeChange(
  node: NodeRow,
  input: { name?: string | undefined; params?: unknown },
  params: Record<string, unknown>,
  now: { id: string; name: string } | null,
  before: { id: string; name: string } | null,
  credentialChanged: boolean,
): Record<string, unknown> & { changed: string[] } {
  const changed: string[] = [];
  const name = input.name ?? node.name;
  if (name !== node.name) changed.push('name');
  const changedParams =
    input.params === undefined
      ? []
      : [...new Set([...Object.keys(node.params), ...Object.keys(params)])]
          .filter((key) => canonicalJson(node.params[key]) !== canonicalJson(params[key]))
          .sort();
  if (changedParams.length > 0) changed.push('params');
  if (credentialChanged) changed.push('credential');
  return {
    nodeId: node.id,
    nodeName: name,
    ...(name !== node.name ? { previousNodeName: node.name } : {}),
    nodeType: node.node_type,
    changed,
    ...(changedParams.length > 0 ? { changedParams } : {}),
    ...credentialDetails(now),
    ...(credentialChanged ? credentialDetails(before, 'previousSecret') : {}),
  };
}

export async function updateNode(
  svc: Services,
  actor: Actor,
  input: {
    workflowId: string;
    nodeId: string;
    name?: string | undefined;
    params?: unknown;
    secretId?: string | null | undefined;
  },
): Promise<WorkflowNode> {
  const workflow = await reachableWorkflow(svc.db, actor, input.workflowId);
  const node = await svc.db
    .selectFrom('workflow_nodes')
    .select(nodeColumns)
    .where('id', '=', input.nodeId)
    .where('workflow_id', '=', workflow.id)
    .executeTakeFirst();
  if (!node) throw new NotFoundError('Node');

  const changes: Partial<{
    name: string;
    params: string;
    secret_id: string | null;
    lost_secret_name: string | null;
  }> = {};
  if (input.name !== undefined) changes.name = input.name;
  const params = input.params === undefined ? node.params : validParams(svc, node.node_type, input.params);
  if (input.params !== undefined) changes.params = JSON.stringify(params);
  let secret: NodeSecret | undefined;
  if (input.secretId === null) {
    changes.secret_id = null;
    changes.lost_secret_name = null;
  } else if (input.secretId !== undefined) {
    secret = await selectableSecret(
      svc,
      workflow.workspace_id,
      { name: input.name ?? node.name, nodeType: node.node_type },
      input.secretId,
    );
    changes.secret_id = secret.id;
    changes.lost_secret_name = null;
  } else if (input.params !== undefined && node.secret_id !== null) {
    // New parameters for the credential the node already has: its URL must still be one it may go to.
    secret = await secretInWorkspace(svc, workflow.workspace_id, node.secret_id);
  }
  if (secret)
    requireAllowedDestination(svc, svc.registry.integrationForNodeType(node.node_type), params, secret);
  const credentialChanged = changes.secret_id !== undefined && changes.secret_id !== node.secret_id;
  const nodeChange = async (trx: Transaction<Database>) => {
    const before = await secretName(trx, workflow.workspace_id, node.secret_id);
    const now =
      changes.secret_id === undefined ? before : changes.secret_id === null ? null : (secret ?? null);
    return describeNodeChange(node, input, params, now, before, credentialChanged);
  };
  if (Object.keys(changes).length === 0) return toNode(node);
  const updated = await svc.db.transaction().execute(async (trx) => {
    await touchWorkflow(trx, workflow.id);
    // Saving a node as it was (an editor that sends every field) is no change: nothing to record.
    const change = await nodeChange(trx);
    if (change.changed.length > 0)
      await recordAudit(trx, workflowEvent(actor, workflow, 'workflow.node_changed', change));
    return trx
      .updateTable('workflow_nodes')
      .set({ ...changes, updated_at: new Date() })
      .where('id', '=', node.id)
      .where('workflow_id', '=', workflow.id)
      .returning(nodeColumns)
      .executeTakeFirstOrThrow();
  });
  return toNode(updated);
}

export async function removeNode(svc: Services, actor: Actor, input: { workflowId: string; nodeId: string }) {
  const workflow = await reachableWorkflow(svc.db, actor, input.workflowId);
  return svc.db.transaction().execute(async (trx) => {
    const removed = await trx
      .deleteFrom('workflow_nodes')
      .where('id', '=', input.nodeId)
      .where('workflow_id', '=', workflow.id)
      .returning(['id', 'name', 'node_type', 'secret_id'])
      .executeTakeFirst();
    if (!removed) throw new NotFoundError('Node');
    await touchWorkflow(trx, workflow.id);
    await recordAudit(
      trx,
      workflowEvent(actor, workflow, 'workflow.node_removed', {
        nodeId: removed.id,
        nodeName: removed.name,
        nodeType: removed.node_type,
        ...credentialDetails(await secretName(trx, workflow.workspace_id, removed.secret_id)),
      }),
    );
    return { id: removed.id };
  });
}
