import { z } from 'zod';
import { userForSession } from '../../identity/identity.js';
import {
  acceptInvite,
  createWorkspace,
  getWorkspace,
  inspectInvite,
  inviteMember,
  leaveWorkspace,
  listInvites,
  listMembers,
  listWorkspaces,
  removalPreview,
  removeMember,
  revokeInvite,
  setRole,
} from '../../workspaces/workspaces.js';
import { displayName, email, id, plan, role, workspaceInput } from '../inputs.js';
import { authedProcedure, publicProcedure, router, workspaceProcedure } from '../trpc.js';

const memberInput = z.object({ workspaceId: id, userId: id });
const inviteToken = z.string().min(1).max(256);

export const workspacesRouter = router({
  create: authedProcedure
    .input(z.object({ name: displayName, plan }))
    .mutation(({ ctx, input }) => createWorkspace(ctx.svc, ctx.actor, input)),
  list: authedProcedure.query(({ ctx }) => listWorkspaces(ctx.svc, ctx.actor)),
  get: workspaceProcedure
    .input(workspaceInput)
    .query(({ ctx, input }) => getWorkspace(ctx.svc, ctx.actor, input)),
  members: workspaceProcedure
    .input(workspaceInput)
    .query(({ ctx, input }) => listMembers(ctx.svc, ctx.actor, input)),
  invite: workspaceProcedure
    .input(z.object({ workspaceId: id, email, role }))
    .mutation(({ ctx, input }) => inviteMember(ctx.svc, ctx.actor, input)),
  invites: workspaceProcedure
    .input(workspaceInput)
    .query(({ ctx, input }) => listInvites(ctx.svc, ctx.actor, input)),
  revokeInvite: workspaceProcedure
    .input(z.object({ workspaceId: id, inviteId: id }))
    .mutation(({ ctx, input }) => revokeInvite(ctx.svc, ctx.actor, input)),
  // A POST, like acceptInvite: the token stays out of URLs (and so out of access logs).
  inspectInvite: publicProcedure.input(z.object({ token: inviteToken })).mutation(async ({ ctx, input }) => {
    const user = ctx.sessionToken ? await userForSession(ctx.svc, ctx.sessionToken) : undefined;
    return inspectInvite(ctx.svc, user ?? null, input);
  }),
  acceptInvite: authedProcedure
    .input(z.object({ token: inviteToken }))
    .mutation(({ ctx, input }) => acceptInvite(ctx.svc, ctx.actor, input)),
  setRole: workspaceProcedure
    .input(z.object({ workspaceId: id, userId: id, role }))
    .mutation(({ ctx, input }) => setRole(ctx.svc, ctx.actor, input)),
  removalPreview: workspaceProcedure
    .input(memberInput)
    .query(({ ctx, input }) => removalPreview(ctx.svc, ctx.actor, input)),
  removeMember: workspaceProcedure
    .input(memberInput)
    .mutation(({ ctx, input }) => removeMember(ctx.svc, ctx.actor, input)),
  leave: workspaceProcedure
    .input(workspaceInput)
    .mutation(({ ctx, input }) => leaveWorkspace(ctx.svc, ctx.actor, input)),
});
