import { z } from 'zod';
import { readAuditLog } from '../../audit/audit.js';
import { auditFilter, id } from '../inputs.js';
import { router, workspaceProcedure } from '../trpc.js';

export const auditRouter = router({
  list: workspaceProcedure
    .input(
      auditFilter.extend({
        workspaceId: id,
        cursor: z.string().max(32).optional(),
        limit: z.number().int().min(1).max(100).optional(),
      }),
    )
    .query(({ ctx, input }) => readAuditLog(ctx.svc, ctx.actor, input)),
});
