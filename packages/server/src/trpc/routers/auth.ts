import { z } from 'zod';
import { signIn, signOut, signUp, userForSession } from '../../identity/identity.js';
import { createWorkspace, listWorkspaces } from '../../workspaces/workspaces.js';
import { displayName, email, password } from '../inputs.js';
import { authedProcedure, publicProcedure, router } from '../trpc.js';

export const authRouter = router({
  signUp: publicProcedure
    .input(z.object({ email, password, name: displayName }))
    .mutation(async ({ ctx, input }) => {
      const session = await signUp(ctx.svc, input, (userId, name) =>
        createWorkspace(ctx.svc, { userId }, { name, plan: 'personal' }),
      );
      ctx.setSession(session.token, session.expiresAt);
      return { user: session.user };
    }),
  signIn: publicProcedure
    .input(z.object({ email, password: z.string().min(1).max(1024) }))
    .mutation(async ({ ctx, input }) => {
      const session = await signIn(ctx.svc, input, ctx.sessionToken);
      ctx.setSession(session.token, session.expiresAt);
      return { user: session.user };
    }),
  signOut: publicProcedure.mutation(async ({ ctx }) => {
    if (ctx.sessionToken) await signOut(ctx.svc, ctx.sessionToken);
    ctx.clearSession();
    return { ok: true };
  }),
  me: publicProcedure.query(async ({ ctx }) => {
    const user = ctx.sessionToken ? await userForSession(ctx.svc, ctx.sessionToken) : undefined;
    if (!user) return null;
    return { user, workspaces: await listWorkspaces(ctx.svc, { userId: user.id }) };
  }),
});
