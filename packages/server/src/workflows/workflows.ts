import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/schema.js';
import { scopeIndependent } from '../db/scope.js';
import { InvalidInputError, NotFoundError, SecretNotSelectableError } from '../errors.js';
import { newId } from '../identity/tokens.js';
import type { Actor, Services } from '../services.js';
import { membershipOf } from '../workspaces/access.js';

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

/**
 * The workspace of a workflow, for a member of it only (else undefined): the workflow procedures name a
 * workflow, not a workspace, and their row-level-security scope is its workspace. An owner-rights function
 * (migration 0005) that answers nothing to anyone else; its result does not depend on the connection's scope.
 */
export async function workspaceOfWorkflow(
  svc: Services,
  workflowId: string,
  userId: string,
): Promise<string | undefined> {
  const { rows } = await scopeIndependent(() =>
    sql<{ workspace_id: string | null }>`
      select latchkey_workflow_workspace(${workflowId}, ${userId}) as workspace_id`.execute(svc.db),
  );
  return rows[0]?.workspace_id ?? undefined;
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
    throw new InvalidInputError(
      result.issues.map((i) => (i.path[0] === 'nodeType' ? i : { ...i, path: ['params', ...i.path] })),
    );
  }
  return result.value;
}

const nodeColumns = ['id', 'name', 'node_type', 'params', 'secret_id', 'lost_secret_name'] as const;

export async function createWorkflow(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; name: string },
) {
  await membershipOf(svc.db, input.workspaceId, actor.userId);
  const id = newId();
  await svc.db
    .insertInto('workflows')
    .values({ id, workspace_id: input.workspaceId, name: input.name, updated_at: new Date() })
    .execute();
  return { id, workspaceId: input.workspaceId, name: input.name };
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
  input: { workflowId: string; name: string; nodeType: string; params: unknown },
): Promise<WorkflowNode> {
  const workflow = await reachableWorkflow(svc.db, actor, input.workflowId);
  const params = validParams(svc, input.nodeType, input.params);
  const id = newId();
  const row = await svc.db.transaction().execute(async (trx) => {
    const last = await trx
      .selectFrom('workflow_nodes')
      .select((eb) => eb.fn.max('position').as('max'))
      .where('workflow_id', '=', workflow.id)
      .executeTakeFirst();
    await trx
      .updateTable('workflows')
      .set({ updated_at: new Date() })
      .where('id', '=', workflow.id)
      .execute();
    return trx
      .insertInto('workflow_nodes')
      .values({
        id,
        workflow_id: workflow.id,
        workspace_id: workflow.workspace_id,
        name: input.name,
        node_type: input.nodeType,
        params: JSON.stringify(params),
        secret_id: null,
        lost_secret_name: null,
        position: (last?.max ?? 0) + 1,
        updated_at: new Date(),
      })
      .returning(nodeColumns)
      .executeTakeFirstOrThrow();
  });
  return toNode(row);
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
  if (input.params !== undefined)
    changes.params = JSON.stringify(validParams(svc, node.node_type, input.params));
  if (input.secretId === null) {
    changes.secret_id = null;
    changes.lost_secret_name = null;
  } else if (input.secretId !== undefined) {
    // Rule 1: a secret is selectable only by nodes of its type, and only inside its own workspace.
    const secret = await svc.db
      .selectFrom('secrets')
      .select(['id', 'credential_type'])
      .where('id', '=', input.secretId)
      .where('workspace_id', '=', workflow.workspace_id)
      .executeTakeFirst();
    if (!secret) throw new NotFoundError('Secret');
    if (!svc.registry.accepts(node.node_type, secret.credential_type)) {
      const integration = svc.registry.integrationForNodeType(node.node_type);
      throw new SecretNotSelectableError(input.name ?? node.name, integration?.displayName ?? node.node_type);
    }
    changes.secret_id = secret.id;
    changes.lost_secret_name = null;
  }
  if (Object.keys(changes).length === 0) return toNode(node);
  const updated = await svc.db.transaction().execute(async (trx) => {
    await trx
      .updateTable('workflows')
      .set({ updated_at: new Date() })
      .where('id', '=', workflow.id)
      .execute();
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
  const removed = await svc.db
    .deleteFrom('workflow_nodes')
    .where('id', '=', input.nodeId)
    .where('workflow_id', '=', workflow.id)
    .returning('id')
    .executeTakeFirst();
  if (!removed) throw new NotFoundError('Node');
  return { id: removed.id };
}
