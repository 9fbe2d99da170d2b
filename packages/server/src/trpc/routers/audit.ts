import { z } from 'zod';
import { readAuditLog } from '../../audit/audit.js';
import { id } from '../inputs.js';
import { router, workspaceProcedure } from '../trpc.js';

export const auditRouter = router({
  list: workspaceProcedure
    .input(z.object({ workspaceId: id, cursor: z.string().max(32).optional() }))
    .query(({ ctx, input }) => readAuditLog(ctx.svc, ctx.actor, input)),
});
