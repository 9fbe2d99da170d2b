import { type FieldIssue, fieldIssuesFromZod } from '@latchkey/core';
import { initTRPC, TRPCError } from '@trpc/server';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ZodError } from 'zod';
import { withDbScope } from '../db/scope.js';
import { DomainError, InvalidInputError, NotSignedInError } from '../errors.js';
import { callerForSession, type NamedWorkspace } from '../identity/identity.js';
import type { SignInLimits, SignUpLimits } from '../identity/rate-limit.js';
import type { Services } from '../services.js';
import { findUnacceptableInput } from './input-guard.js';
import { id } from './inputs.js';

/** The session cookie over plain http (local development, tests). */
export const SESSION_COOKIE = 'latchkey_session';
/**
 * The session cookie over https. Browsers accept a `__Host-` cookie only from a secure origin, with Secure,
 * Path=/ and no Domain: a sibling subdomain or a plain-http page cannot set or overwrite it (cookie tossing).
 */
export const SECURE_SESSION_COOKIE = '__Host-latchkey_session';

/**
 * Whether a request gets the https treatment (the `__Host-` Secure cookie, HSTS): it reached us over https,
 * or LATCHKEY_SECURE_COOKIES says a TLS-terminating proxy sits in front.
 */
export function isSecureRequest(req: FastifyRequest, secureCookies: boolean): boolean {
  return secureCookies || req.protocol === 'https';
}

/** The session token a request carries: over https only the `__Host-` cookie counts. */
export function sessionTokenOf(req: FastifyRequest, secureCookies: boolean): string | undefined {
  return (
    req.cookies[isSecureRequest(req, secureCookies) ? SECURE_SESSION_COOKIE : SESSION_COOKIE] || undefined
  );
}

export interface Context {
  svc: Services;
  sessionToken: string | undefined;
  /** Sets the session cookie (HttpOnly, SameSite=Lax; over https `__Host-` prefixed and Secure). */
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
  return ({ req, res }: { req: FastifyRequest; res: FastifyReply }): Context => {
    const secure = isSecureRequest(req, secureCookies);
    const cookieName = secure ? SECURE_SESSION_COOKIE : SESSION_COOKIE;
    return {
      svc,
      sessionToken: sessionTokenOf(req, secureCookies),
      clientAddress: req.ip,
      signInLimits,
      signUpLimits,
      setSession(token, expiresAt) {
        // No Domain attribute: host-only (and required for the __Host- prefix).
        res.setCookie(cookieName, token, {
          httpOnly: true,
          sameSite: 'lax',
          secure,
          path: '/',
          expires: expiresAt,
        });
      },
      clearSession() {
        res.clearCookie(cookieName, { httpOnly: true, sameSite: 'lax', secure, path: '/' });
      },
    };
  };
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
      issues = fieldIssuesFromZod(error.cause.issues);
      message = new InvalidInputError(issues).message;
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

type Scope = 'user' | 'workspace' | 'workflow';

/**
 * What a call names as its workspace, by the scope its procedure states: the `workspaceId` of its input
 * (`workspaceProcedure`), the workspace of its `workflowId` (`workflowProcedure`), or none (`authedProcedure`).
 * Only a name: the session check verifies membership before it becomes the call's scope.
 */
async function namedWorkspace(scope: Scope, getRawInput: () => Promise<unknown>): Promise<NamedWorkspace> {
  if (scope === 'user') return {};
  const raw = (await getRawInput().catch(() => undefined)) as
    | { workspaceId?: unknown; workflowId?: unknown }
    | undefined;
  if (!raw || typeof raw !== 'object') return {};
  // Only what could be an id is looked up; the procedure's own input schema refuses the rest.
  const value = scope === 'workspace' ? raw.workspaceId : raw.workflowId;
  if (typeof value !== 'string' || !id.safeParse(value).success) return {};
  return scope === 'workspace' ? { workspaceId: value } : { workflowId: value };
}

/**
 * A procedure for signed-in users: the session is checked against the database on every request, and the
 * procedure's statements run scoped (db/scope.ts) to the signed-in user and, for a workspace or workflow
 * procedure, to the workspace its input names when the user is a member there — verified in the session
 * check's own statement, so a non-member's call never runs in that workspace's scope. Row-level security then
 * hides every other workspace's rows, whatever a query's own filters say.
 */
function signedIn(scope: Scope) {
  return publicProcedure.use(async ({ ctx, next, getRawInput }) => {
    const caller = ctx.sessionToken
      ? await callerForSession(ctx.svc, ctx.sessionToken, await namedWorkspace(scope, getRawInput))
      : undefined;
    if (!caller) throw new TRPCError({ code: 'UNAUTHORIZED', message: new NotSignedInError().message });
    const { user, workspaceId } = caller;
    return withDbScope({ userId: user.id, workspaceId }, () =>
      next({ ctx: { ...ctx, user, actor: { userId: user.id } } }),
    );
  });
}

/** Signed in; scoped to the user only (their own workspaces, their account). */
export const authedProcedure = signedIn('user');
/** Signed in, in the workspace of the input's `workspaceId`. */
export const workspaceProcedure = signedIn('workspace');
/** Signed in, in the workspace of the workflow of the input's `workflowId`. */
export const workflowProcedure = signedIn('workflow');
