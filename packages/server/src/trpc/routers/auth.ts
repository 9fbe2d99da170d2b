import { z } from 'zod';
import { changePassword, signIn, signOut, signUp, userForSession } from '../../identity/identity.js';
import { createWorkspace, listWorkspaces } from '../../workspaces/workspaces.js';
import { displayName, email, password } from '../inputs.js';
import { authedProcedure, publicProcedure, router } from '../trpc.js';

export const authRouter = router({
  /**
   * Throttled per client address and in total (TOO_MANY_REQUESTS with Retry-After). A new email is signed in
   * (`user`); an email that already has an account gets `user: null` and a neutral `message`, same status.
   */
  signUp: publicProcedure
    .input(z.object({ email, password, name: displayName }))
    .mutation(async ({ ctx, input }) => {
      const result = await signUp(
        ctx.svc,
        input,
        (userId, name) => createWorkspace(ctx.svc, { userId }, { name, plan: 'personal' }),
        { address: ctx.clientAddress, limits: ctx.signUpLimits },
      );
      if (!result.signedIn) return { user: null, message: result.message };
      ctx.setSession(result.session.token, result.session.expiresAt);
      return { user: result.session.user, message: null };
    }),
  /**
   * Throttled per (account, client address) and per address: TOO_MANY_REQUESTS (429, Retry-After) past the
   * limit; many failures on one account slow its attempts down instead of locking it.
   */
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
