import { z } from 'zod';
import { importN8nExport, N8N_EXPORT_MAX_CREDENTIALS } from '../../import/n8n.js';
import { connectSecret, reconnectSecret } from '../../oauth/connections.js';
import { testCredential } from '../../runner/runner.js';
import { deleteSecret, secretUsage } from '../../secrets/deletion.js';
import { listSecrets, selectableSecrets } from '../../secrets/list.js';
import { renameSecret } from '../../secrets/rename.js';
import { createSecret, replaceSecret } from '../../secrets/write.js';
import { displayName, id, nodeType } from '../inputs.js';
import { router, workspaceProcedure } from '../trpc.js';

const secretInput = z.object({ workspaceId: id, secretId: id });
// Credential data is checked against the integration's schema by the registry (field-level messages).
const data = z.unknown();
const newSecret = z.object({
  workspaceId: id,
  credentialType: z.string().min(1).max(64),
  name: displayName,
  data,
});

export const secretsRouter = router({
  create: workspaceProcedure
    .input(newSecret)
    .mutation(({ ctx, input }) => createSecret(ctx.svc, ctx.actor, input)),
  /** Starts an OAuth2 (authorization code) connection: `{secretId, authorizationUrl}` for the browser. */
  connect: workspaceProcedure
    .input(newSecret)
    .mutation(({ ctx, input }) => connectSecret(ctx.svc, ctx.actor, input)),
  /** Connects an existing OAuth2 connection again (same id: its nodes keep working): `{authorizationUrl}`. */
  reconnect: workspaceProcedure
    .input(secretInput)
    .mutation(({ ctx, input }) => reconnectSecret(ctx.svc, ctx.actor, input)),
  list: workspaceProcedure
    .input(
      z.object({
        workspaceId: id,
        nodeType: nodeType.optional(),
        integrationId: z.string().min(1).max(64).optional(),
        kind: z.enum(['static', 'oauth2']).optional(),
        createdBy: id.optional(),
        search: z.string().max(120).optional(),
        cursor: z.string().max(512).optional(),
        limit: z.number().int().min(1).max(100).optional(),
      }),
    )
    .query(({ ctx, input }) => listSecrets(ctx.svc, ctx.actor, input)),
  selectable: workspaceProcedure
    .input(z.object({ workspaceId: id, nodeType }))
    .query(({ ctx, input }) => selectableSecrets(ctx.svc, ctx.actor, input)),
  usage: workspaceProcedure
    .input(secretInput)
    .query(({ ctx, input }) => secretUsage(ctx.svc, ctx.actor, input)),
  replace: workspaceProcedure
    .input(secretInput.extend({ data }))
    .mutation(({ ctx, input }) => replaceSecret(ctx.svc, ctx.actor, input)),
  /** A new name, same id and value (its nodes keep working); audited as `secret.renamed`. */
  rename: workspaceProcedure
    .input(secretInput.extend({ name: displayName }))
    .mutation(({ ctx, input }) => renameSecret(ctx.svc, ctx.actor, input)),
  delete: workspaceProcedure
    .input(secretInput)
    .mutation(({ ctx, input }) => deleteSecret(ctx.svc, ctx.actor, input)),
  /**
   * Imports an n8n credentials export read in the browser (docs/import.md): the same table as the CLI. The key
   * (encrypted form) is used for this request only. `dryRun` writes nothing.
   */
  importN8n: workspaceProcedure
    .input(
      z.object({
        workspaceId: id,
        credentials: z.array(z.unknown()).max(N8N_EXPORT_MAX_CREDENTIALS),
        n8nKey: z.string().min(1).max(4096).optional(),
        dryRun: z.boolean(),
      }),
    )
    .mutation(({ ctx, input }) => importN8nExport(ctx.svc, ctx.actor, input)),
  /** Checks a saved secret, or unsaved form data, against its service: `{ok, message}`. */
  test: workspaceProcedure
    .input(
      z.union([secretInput, z.object({ workspaceId: id, credentialType: z.string().min(1).max(64), data })]),
    )
    .mutation(({ ctx, input }) => testCredential(ctx.svc, ctx.actor, input)),
});
