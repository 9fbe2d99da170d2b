import { z } from 'zod';
import { runWorkflow } from '../../runner/runner.js';
import {
  addNode,
  createWorkflow,
  deleteWorkflow,
  getWorkflow,
  listWorkflows,
  removeNode,
  renameWorkflow,
  updateNode,
} from '../../workflows/workflows.js';
import { displayName, id, nodeType, workspaceInput } from '../inputs.js';
import { router, workflowProcedure, workspaceProcedure } from '../trpc.js';

const params = z.record(z.string().max(64), z.unknown());

export const workflowsRouter = router({
  create: workspaceProcedure
    .input(z.object({ workspaceId: id, name: displayName }))
    .mutation(({ ctx, input }) => createWorkflow(ctx.svc, ctx.actor, input)),
  list: workspaceProcedure
    .input(workspaceInput)
    .query(({ ctx, input }) => listWorkflows(ctx.svc, ctx.actor, input)),
  get: workflowProcedure
    .input(z.object({ workflowId: id }))
    .query(({ ctx, input }) => getWorkflow(ctx.svc, ctx.actor, input)),
  rename: workflowProcedure
    .input(z.object({ workflowId: id, name: displayName }))
    .mutation(({ ctx, input }) => renameWorkflow(ctx.svc, ctx.actor, input)),
  delete: workflowProcedure
    .input(z.object({ workflowId: id }))
    .mutation(({ ctx, input }) => deleteWorkflow(ctx.svc, ctx.actor, input)),
  addNode: workflowProcedure
    .input(
      z.object({
        workflowId: id,
        name: displayName,
        nodeType,
        params: params.default({}),
        secretId: id.optional(),
      }),
    )
    .mutation(({ ctx, input }) => addNode(ctx.svc, ctx.actor, input)),
  updateNode: workflowProcedure
    .input(
      z.object({
        workflowId: id,
        nodeId: id,
        name: displayName.optional(),
        params: params.optional(),
        secretId: id.nullable().optional(),
      }),
    )
    .mutation(({ ctx, input }) => updateNode(ctx.svc, ctx.actor, input)),
  removeNode: workflowProcedure
    .input(z.object({ workflowId: id, nodeId: id }))
    .mutation(({ ctx, input }) => removeNode(ctx.svc, ctx.actor, input)),
  run: workflowProcedure
    .input(z.object({ workflowId: id }))
    .mutation(({ ctx, input }) => runWorkflow(ctx.svc, ctx.actor, input)),
});
