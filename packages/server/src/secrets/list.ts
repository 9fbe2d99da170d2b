import type { Role } from '@latchkey/core/roles';
import { type RawBuilder, sql } from 'kysely';
import { membershipCte } from '../access/membership.js';
import { listsAllSecretsSql } from '../access/permissions.js';
import { InvalidInputError, NotFoundError } from '../errors.js';
import type { Actor, Services } from '../services.js';
import {
  destinationsOf,
  iso,
  META_SQL,
  type MetaRow,
  type SecretMeta,
  servesNodeType,
  toMeta,
} from './meta.js';

export interface ListSecretsInput {
  workspaceId: string;
  nodeType?: string | undefined;
  integrationId?: string | undefined;
  /** Static secrets (Secrets & API Keys) or OAuth2 connections (Integrations). */
  kind?: 'static' | 'oauth2' | undefined;
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
  if (input.nodeType) filters.push(sql`and ${servesNodeType(svc.registry, input.nodeType)}`);
  if (input.integrationId) filters.push(sql`and s.integration_id = ${input.integrationId}`);
  if (input.kind) filters.push(sql`and s.kind = ${input.kind}`);
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
  const listsAll = listsAllSecretsSql('me');
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
  /** For the picker's groups: pasted keys, and OAuth2 connections with their status. */
  kind: 'static' | 'oauth2';
  connectionStatus?: 'pending' | 'connected' | 'needs-reconnect';
  /** Who added it, by name: the picker shows it beside the type. */
  createdBy: string;
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
    kind: 'static' | 'oauth2' | null;
    connection_status: SelectableSecret['connectionStatus'] | null;
    creator_name: string | null;
  }>`
    with ${membershipCte(input.workspaceId, actor.userId)}
    select p.id, p.name, p.credential_type, p.public_fields, p.kind, p.connection_status, p.creator_name from me
    left join lateral (
      select s.id, s.name, s.credential_type, s.public_fields, s.kind, s.connection_status,
             u.name as creator_name
      from secrets s join users u on u.id = s.created_by
      where s.workspace_id = me.workspace_id and ${servesNodeType(svc.registry, input.nodeType)}
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
            kind: r.kind ?? 'static',
            ...(r.connection_status ? { connectionStatus: r.connection_status } : {}),
            createdBy: r.creator_name ?? '',
          },
        ],
  );
}

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
