import { type RawBuilder, sql } from 'kysely';
import { auditInsert } from '../audit/audit.js';
import { NotFoundError } from '../errors.js';
import type { Actor, Services } from '../services.js';
import { GATE_RESULT, type GateOutcome, manageGateCtes, requireGate } from './manage-gate.js';
import type { AffectedNode } from './meta.js';

export type SecretsToDelete =
  | { workspaceId: string; secretId: string }
  | { workspaceId: string; createdBy: string };

/**
 * What deleting secrets does, defined once, for a caller to put in front of its own statement (its audit
 * event, a membership it ends): set-based, one statement however many secrets match.
 *   doomed  — the matching secrets (id, name, credential_type);
 *   flagged — the nodes that used them, now without a secret but keeping its name (node_id, node_name,
 *             workflow_id, position), so the editor can say what to replace;
 *   deleted — the secrets deleted (id, name, credential_type).
 * `preview` builds the same CTEs as reads that change nothing: the delete and removal previews are exactly
 * what deletion would do, from this one definition. The foreign key's ON DELETE SET NULL still guards any node
 * a deleting statement did not see.
 */
export function secretDeletionCtes(
  where: SecretsToDelete,
  onlyIf: RawBuilder<unknown> = sql`true`,
  mode: 'delete' | 'preview' = 'delete',
): RawBuilder<unknown> {
  // Each CTE names the rows by its own index (the primary key, or the creator index), never by a join through
  // `doomed`: the plan must not depend on statistics (PGlite has no autovacuum to keep them fresh).
  const one = 'secretId' in where;
  const match = one ? sql`s.id = ${where.secretId}` : sql`s.created_by = ${where.createdBy}`;
  const nodeMatch = one ? sql`and n.secret_id = ${where.secretId}` : sql``;
  const doomed = sql`doomed as (
      select s.id, s.name, s.credential_type from secrets s
      where s.workspace_id = ${where.workspaceId} and ${match} and ${onlyIf}
    )`;
  if (mode === 'preview') {
    return sql`${doomed},
    flagged as (
      select n.id as node_id, n.name as node_name, n.workflow_id, n.position
      from workflow_nodes n join doomed d on n.secret_id = d.id
      where n.workspace_id = ${where.workspaceId} ${nodeMatch}
    ),
    deleted as (select id, name, credential_type from doomed)`;
  }
  return sql`${doomed},
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

/** The nodes a deletion flagged, by id and name with their workflows', for its audit event (jsonb). */
export const FLAGGED_NODES_JSONB = sql`coalesce((
    select jsonb_agg(jsonb_build_object('workflowId', w.id, 'workflowName', w.name,
                                        'nodeId', f.node_id, 'nodeName', f.node_name)
                     order by w.name, f.position, f.node_id)
    from flagged f join workflows w on w.id = f.workflow_id
  ), '[]'::jsonb)`;

/** The secrets a deletion deleted, by id and name, for its audit event (jsonb). */
export const DELETED_SECRETS_JSONB = sql`coalesce((
    select jsonb_agg(jsonb_build_object('secretId', d.id, 'secretName', d.name) order by d.name, d.id)
    from deleted d
  ), '[]'::jsonb)`;

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
    with ${manageGateCtes(input.workspaceId, actor.userId, input.secretId, { write: true })},
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
                                        'affectedNodes', (select count(*) from flagged),
                                        'nodes', ${FLAGGED_NODES_JSONB})`,
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

/** What deleting a secret would do (`secretDeletionCtes` as a preview): the nodes that would lose it. */
export async function secretUsage(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; secretId: string },
): Promise<AffectedNode[]> {
  const { rows } = await sql<SecretDeletionResult & GateOutcome>`
    with ${manageGateCtes(input.workspaceId, actor.userId, input.secretId, { write: false })},
    ${secretDeletionCtes({ workspaceId: input.workspaceId, secretId: input.secretId }, sql`exists (select 1 from allowed)`, 'preview')}
    select ${GATE_RESULT}, ${SECRET_DELETION_RESULT}`.execute(svc.db);
  requireGate(rows[0]);
  return affectedNodesOf(rows[0] as SecretDeletionResult);
}
