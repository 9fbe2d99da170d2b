import type { FieldIssue } from '@latchkey/core';
import { initTRPC, TRPCError } from '@trpc/server';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ZodError, type z } from 'zod';
import { withDbScope } from '../db/scope.js';
import { DomainError, InvalidInputError, NotSignedInError } from '../errors.js';
import { type PublicUser, userForSession } from '../identity/identity.js';
import type { SignInLimits, SignUpLimits } from '../identity/rate-limit.js';
import type { Services } from '../services.js';
import { workspaceOfWorkflow } from '../workflows/workflows.js';
import { findUnacceptableInput } from './input-guard.js';

export const SESSION_COOKIE = 'latchkey_session';

export interface Context {
  svc: Services;
  sessionToken: string | undefined;
  /** Sets the session cookie (HttpOnly, SameSite=Lax, Secure over https). */
  setSession(token: string, expiresAt: Date): void;
  clearSession(): void;
  /** The client address (HTTP requests only; honours trustProxy). Sign-in rate limiting counts per address. */
  clientAddress?: string | undefined;
  /** Sign-in rate limits; the defaults (identity/rate-limit.ts) when not given. */
  signInLimits?: SignInLimits | undefined;
  /** Sign-up limits; sign-up is not throttled without them (in-process callers). */
  signUpLimits?: SignUpLimits | undefined;
}

/**
 * `secureCookies`: mark the session cookie Secure even when the request reached us over http — the case
 * behind a TLS-terminating proxy without `trustProxy`. On by default in production.
 */
export function createContextFactory(
  svc: Services,
  secureCookies = false,
  signInLimits?: SignInLimits,
  signUpLimits?: SignUpLimits,
) {
  return ({ req, res }: { req: FastifyRequest; res: FastifyReply }): Context => ({
    svc,
    sessionToken: req.cookies[SESSION_COOKIE] || undefined,
    clientAddress: req.ip,
    signInLimits,
    signUpLimits,
    setSession(token, expiresAt) {
      res.setCookie(SESSION_COOKIE, token, {
        httpOnly: true,
        sameSite: 'lax',
        secure: secureCookies || req.protocol === 'https',
        path: '/',
        expires: expiresAt,
      });
    },
    clearSession() {
      res.clearCookie(SESSION_COOKIE, { path: '/' });
    },
  });
}

/** Zod issues as field issues, worded without ever quoting the submitted value. */
function zodIssues(error: ZodError): FieldIssue[] {
  return error.issues.map((issue: z.core.$ZodIssue) => {
    const path = issue.path.map((p) => String(p).slice(0, 64));
    switch (issue.code) {
      case 'invalid_type':
        return { path, message: issue.input === undefined ? 'Required' : `Must be ${issue.expected}` };
      case 'too_small':
        return {
          path,
          message:
            issue.origin === 'string' && issue.minimum === 1
              ? 'Required'
              : `Must be at least ${issue.minimum}`,
        };
      case 'too_big':
        return {
          path,
          message: `Must be at most ${issue.maximum}${issue.origin === 'string' ? ' characters' : ''}`,
        };
      case 'invalid_value':
        return { path, message: `Must be one of: ${issue.values.map(String).join(', ')}` };
      case 'invalid_format':
        return {
          path,
          message: issue.format === 'email' ? 'Must be an email address' : 'Has the wrong format',
        };
      case 'unrecognized_keys':
        return { path, message: 'Unknown field' };
      default:
        return { path, message: 'Invalid value' };
    }
  });
}

const t = initTRPC.context<Context>().create({
  // Plain JSON on the wire (no transformer), so clients in any language can call the API.
  isDev: false,
  errorFormatter({ shape, error }) {
    let issues: FieldIssue[] | undefined;
    let message = shape.message;
    if (error.cause instanceof InvalidInputError) {
      issues = error.cause.issues;
    } else if (error.cause instanceof ZodError) {
      issues = zodIssues(error.cause);
      message = `Some fields are not valid: ${issues.map((i) => `${i.path.join('.') || '(input)'}: ${i.message}`).join('; ')}`;
    } else if (error.code === 'BAD_REQUEST' && !(error.cause instanceof DomainError)) {
      // Malformed requests (bad JSON, wrong method): a fixed message, never the parser's text.
      message = 'The request is not valid JSON for this procedure';
    }
    // tRPC's own "No procedure found on path …" (and data.path) would quote the requested path back.
    const unknownProcedure = error.code === 'NOT_FOUND' && !(error.cause instanceof DomainError);
    if (unknownProcedure) message = 'No such procedure';
    if (error.code === 'INTERNAL_SERVER_ERROR')
      message = 'Something went wrong on our side; the error was logged';
    const { stack: _stack, ...data } = shape.data;
    if (unknownProcedure) delete data.path;
    return { ...shape, message, data: { ...data, ...(issues ? { issues } : {}) } };
  },
});

/** Domain errors become tRPC errors with the same message; anything else stays an internal error. */
const domainErrors = t.middleware(async ({ next }) => {
  const result = await next();
  if (!result.ok && result.error.cause instanceof DomainError) {
    const cause = result.error.cause;
    throw new TRPCError({ code: cause.kind, message: cause.message, cause });
  }
  return result;
});

/** Refuses NUL characters, lone surrogates and absurd nesting anywhere in the input, before any procedure runs. */
const inputGuard = t.middleware(async ({ getRawInput, next }) => {
  let raw: unknown;
  try {
    raw = await getRawInput();
  } catch {
    // Unreadable input: the procedure's input parser answers it as before (procedures without input ignore it).
    return next();
  }
  const issue = findUnacceptableInput(raw);
  if (issue) throw new InvalidInputError([issue], 'The input is not accepted');
  return next();
});

export const router = t.router;
export const createCallerFactory = t.createCallerFactory;
export const publicProcedure = t.procedure.use(domainErrors).use(inputGuard);

/**
 * The workspace a call is about, for the row-level-security scope: the `workspaceId` of its input, or the
 * workspace of the `workflowId` it names when the caller is a member there. Undefined: the call's statements
 * see no workspace's rows.
 */
async function namedWorkspace(
  svc: Services,
  userId: string,
  getRawInput: () => Promise<unknown>,
): Promise<string | undefined> {
  const raw = (await getRawInput().catch(() => undefined)) as
    | { workspaceId?: unknown; workflowId?: unknown }
    | undefined;
  if (!raw || typeof raw !== 'object') return undefined;
  if (typeof raw.workspaceId === 'string') return raw.workspaceId;
  if (typeof raw.workflowId !== 'string') return undefined;
  return workspaceOfWorkflow(svc, raw.workflowId, userId);
}

/**
 * A procedure for signed-in users: the session is checked against the database on every request, and the
 * procedure's statements run scoped (db/scope.ts) to the signed-in user and the workspace its input names —
 * row-level security then hides every other workspace's rows, whatever a query's own filters say.
 */
export const authedProcedure = publicProcedure.use(async ({ ctx, next, getRawInput }) => {
  const user: PublicUser | undefined = ctx.sessionToken
    ? await userForSession(ctx.svc, ctx.sessionToken)
    : undefined;
  if (!user) throw new TRPCError({ code: 'UNAUTHORIZED', message: new NotSignedInError().message });
  const scope = { userId: user.id, workspaceId: await namedWorkspace(ctx.svc, user.id, getRawInput) };
  return withDbScope(scope, () => next({ ctx: { ...ctx, user, actor: { userId: user.id } } }));
});
