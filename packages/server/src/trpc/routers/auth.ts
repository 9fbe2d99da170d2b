import { z } from 'zod';
import { changePassword, signIn, signOut, signUp, userForSession } from '../../identity/identity.js';
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
  /** Rate-limited per account and per client address: TOO_MANY_REQUESTS (429) past the limit. */
  signIn: publicProcedure
    .input(z.object({ email, password: z.string().min(1).max(1024) }))
    .mutation(async ({ ctx, input }) => {
      const session = await signIn(ctx.svc, input, ctx.sessionToken, {
        address: ctx.clientAddress,
        limits: ctx.signInLimits,
      });
      ctx.setSession(session.token, session.expiresAt);
      return { user: session.user };
    }),
  /** Ends every session of the signed-in user (all browsers and devices), and clears this browser's cookie. */
  signOut: publicProcedure.mutation(async ({ ctx }) => {
    if (ctx.sessionToken) await signOut(ctx.svc, ctx.sessionToken);
    ctx.clearSession();
    return { ok: true };
  }),
  /**
   * Changes the password. Every session of the user ends (other devices are signed out); the caller gets a
   * fresh session. A wrong current password is BAD_REQUEST on `currentPassword`, rate-limited like sign-in.
   */
  changePassword: authedProcedure
    .input(z.object({ currentPassword: z.string().min(1).max(1024), newPassword: password }))
    .mutation(async ({ ctx, input }) => {
      const session = await changePassword(ctx.svc, ctx.actor, input, {
        address: ctx.clientAddress,
        limits: ctx.signInLimits,
      });
      ctx.setSession(session.token, session.expiresAt);
      return { user: session.user };
    }),
  me: publicProcedure.query(async ({ ctx }) => {
    const user = ctx.sessionToken ? await userForSession(ctx.svc, ctx.sessionToken) : undefined;
    if (!user) return null;
    return { user, workspaces: await listWorkspaces(ctx.svc, { userId: user.id }) };
  }),
});
