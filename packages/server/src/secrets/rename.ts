import { sql } from 'kysely';
import { auditInsert } from '../audit/audit.js';
import { InvalidInputError, isUniqueViolation } from '../errors.js';
import type { Actor, Services } from '../services.js';
import { GATE_RESULT, type GateOutcome, manageGateCtes, requireGate } from './manage-gate.js';
import { META_SQL, type MetaRow, type SecretMeta, toMeta } from './meta.js';

/**
 * Renames a secret (same id and value: its nodes keep working): whoever may change it — owners, admins, its
 * creator. ONE statement: the permission gate (`manageGateCtes`, so a demotion or removal since the page was
 * loaded changes nothing), the update, and a `secret.renamed` event with the old and new name — only when the
 * name changed. A name its type already uses in the workspace is a field error on `name`.
 */
export async function renameSecret(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; secretId: string; name: string },
): Promise<SecretMeta> {
  let rows: (GateOutcome & { [K in keyof MetaRow]: MetaRow[K] | null })[];
  try {
    ({ rows } = await sql<GateOutcome & { [K in keyof MetaRow]: MetaRow[K] | null }>`
      with ${manageGateCtes(input.workspaceId, actor.userId, input.secretId, { write: true })},
      before as (select name from secrets where id = (select id from allowed)),
      s as (
        -- updated_at stays: it dates the value (the list's "Rotated"), which a new name does not change.
        update secrets set name = ${input.name}
        where secrets.id = (select id from allowed) and secrets.workspace_id = ${input.workspaceId}
        returning secrets.*
      ),
      audit as (${auditInsert(
        {
          workspaceId: sql`s.workspace_id`,
          actorId: actor.userId,
          action: 'secret.renamed',
          targetType: 'secret',
          targetId: sql`s.id`,
          targetName: sql`s.name`,
          details: sql`jsonb_build_object('credentialType', s.credential_type, 'from', b.name, 'to', s.name)`,
        },
        sql`s, before b where b.name <> s.name`,
      )})
      select ${GATE_RESULT}, r.*
      from (select 1) one
      left join (select ${META_SQL} from s join users u on u.id = s.created_by) r on true`.execute(svc.db));
  } catch (error) {
    if (!isUniqueViolation(error)) throw error;
    throw new InvalidInputError([
      {
        path: ['name'],
        message: `Another secret of this type is already named '${input.name}'. Choose another name.`,
      },
    ]);
  }
  const result = rows[0];
  requireGate(result);
  return toMeta(svc.registry, result as MetaRow);
}
