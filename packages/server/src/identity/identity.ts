import { sql } from 'kysely';
import { scopeIndependent } from '../db/scope.js';
import { ConflictError, InvalidCredentialsError, InvalidInputError, isUniqueViolation } from '../errors.js';
import type { Actor, Services } from '../services.js';
import { hashPassword, passwordHashQueue, verifyPassword } from './passwords.js';
import {
  countAttempt,
  countSignUp,
  DEFAULT_SIGN_IN_LIMITS,
  type SignInLimits,
  type SignUpLimits,
  slowDown,
} from './rate-limit.js';
import { hashToken, newId, newToken } from './tokens.js';

/** Where a sign-in attempt comes from and the limits that apply (rate limiting; see rate-limit.ts). */
export interface AttemptContext {
  /** The client address (Fastify's `request.ip`: the peer, or what a trusted proxy in LATCHKEY_TRUST_PROXY says); none in-process. */
  address?: string | undefined;
  limits?: SignInLimits | undefined;
}

/** Where a sign-up comes from and its limits; without limits (in-process callers) sign-up is not throttled. */
export interface SignUpContext {
  address?: string | undefined;
  limits?: SignUpLimits | undefined;
}

/**
 * What sign-up answers when the email already has an account: the same status as a new account and a
 * message that does not say the email is taken, so the answer does not confirm that it is registered
 * (docs/security.md "Sign-up and account enumeration" has the trade-off).
 */
export const SIGN_UP_NOT_SIGNED_IN =
  'We could not sign you in with this email. If you already have an account, sign in with its password.';

/** A new account (signed in), or the neutral answer when the email is taken (nothing created, no session). */
export type SignUpResult = { signedIn: true; session: SessionStart } | { signedIn: false; message: string };

export interface PublicUser {
  id: string;
  email: string;
  name: string;
}

export interface SessionStart {
  user: PublicUser;
  /** The session token for the cookie; only its hash is stored. */
  token: string;
  expiresAt: Date;
}

// A hash to verify against when the email is unknown, so both answers take the same time.
let decoyHash: Promise<string> | undefined;

async function startSession(
  svc: Services,
  userId: string,
  db: Pick<Services['db'], 'insertInto'> = svc.db,
): Promise<{ token: string; expiresAt: Date }> {
  const { token, hash } = newToken();
  const expiresAt = new Date(Date.now() + svc.sessionTtlMs);
  await db
    .insertInto('sessions')
    .values({ token_hash: hash, user_id: userId, expires_at: expiresAt })
    .execute();
  return { token, expiresAt };
}

/**
 * Creates an account with a personal workspace, and signs it in. Throttled per client address and in total
 * (before any hashing); an email that already has an account gets the neutral answer after the same hashing
 * work as a new one.
 */
export async function signUp(
  svc: Services,
  input: { email: string; password: string; name: string },
  createWorkspace: (userId: string, name: string) => Promise<unknown>,
  from: SignUpContext = {},
): Promise<SignUpResult> {
  const email = input.email.trim().toLowerCase();
  passwordHashQueue().refuseWhenFull();
  if (from.limits) await countSignUp(svc.db, from.address, from.limits);
  const passwordHash = await hashPassword(input.password, svc.passwordCost);
  const id = newId();
  try {
    await svc.db
      .insertInto('users')
      .values({ id, email, name: input.name.trim(), password_hash: passwordHash })
      .execute();
  } catch (error) {
    if (isUniqueViolation(error)) return { signedIn: false, message: SIGN_UP_NOT_SIGNED_IN };
    throw error;
  }
  await createWorkspace(id, `${input.name.trim()}'s workspace`);
  const session = await startSession(svc, id);
  return { signedIn: true, session: { user: { id, email, name: input.name.trim() }, ...session } };
}

/** Signs in; the old session (if any) is ended so a fixed session id cannot be planted before sign-in. */
export async function signIn(
  svc: Services,
  input: { email: string; password: string },
  previousToken: string | undefined,
  attempt: AttemptContext = {},
): Promise<SessionStart> {
  const email = input.email.trim().toLowerCase();
  passwordHashQueue().refuseWhenFull();
  // Counted before the password is checked, whether or not the account exists (same answer either way).
  const counted = await countAttempt(
    svc.db,
    { email, address: attempt.address },
    attempt.limits ?? DEFAULT_SIGN_IN_LIMITS,
  );
  await slowDown(counted.delayMs);
  const user = await svc.db
    .selectFrom('users')
    .select(['id', 'email', 'name', 'password_hash'])
    .where('email', '=', email)
    .executeTakeFirst();
  if (!user) {
    decoyHash ??= hashPassword('decoy password', svc.passwordCost);
    await verifyPassword(input.password, await decoyHash);
    throw new InvalidCredentialsError();
  }
  if (!(await verifyPassword(input.password, user.password_hash))) throw new InvalidCredentialsError();
  await counted.succeeded();
  if (previousToken) await endSession(svc, previousToken);
  const session = await startSession(svc, user.id);
  return { user: { id: user.id, email: user.email, name: user.name }, ...session };
}

/** Ends one session (the one a browser had before signing in again: no session fixation). */
async function endSession(svc: Services, token: string): Promise<void> {
  await svc.db.deleteFrom('sessions').where('token_hash', '=', hashToken(token)).execute();
}

/**
 * Signs out everywhere: ends every session of the user the token belongs to (every browser, every device),
 * so signing out on one device also ends a session that was stolen or left open elsewhere.
 */
export async function signOut(svc: Services, token: string): Promise<void> {
  await svc.db
    .deleteFrom('sessions')
    .where('user_id', 'in', (eb) =>
      eb.selectFrom('sessions').select('user_id').where('token_hash', '=', hashToken(token)),
    )
    .execute();
}

/**
 * Changes the caller's password after checking the current one (rate-limited like sign-in), ends every
 * session of the user — this browser's included — and starts a fresh session for the caller, all in one
 * transaction.
 */
export async function changePassword(
  svc: Services,
  actor: Actor,
  input: { currentPassword: string; newPassword: string },
  attempt: AttemptContext = {},
): Promise<SessionStart> {
  const user = await svc.db
    .selectFrom('users')
    .select(['id', 'email', 'name', 'password_hash'])
    .where('id', '=', actor.userId)
    .executeTakeFirstOrThrow();
  passwordHashQueue().refuseWhenFull();
  const counted = await countAttempt(
    svc.db,
    { email: user.email, address: attempt.address },
    attempt.limits ?? DEFAULT_SIGN_IN_LIMITS,
  );
  await slowDown(counted.delayMs);
  if (!(await verifyPassword(input.currentPassword, user.password_hash))) {
    throw new InvalidInputError([{ path: ['currentPassword'], message: 'Is not your current password' }]);
  }
  await counted.succeeded();
  if (input.newPassword === input.currentPassword) {
    throw new InvalidInputError([
      { path: ['newPassword'], message: 'Must be different from the current password' },
    ]);
  }
  const passwordHash = await hashPassword(input.newPassword, svc.passwordCost);
  const session = await svc.db.transaction().execute(async (trx) => {
    const updated = await trx
      .updateTable('users')
      .set({ password_hash: passwordHash })
      .where('id', '=', user.id)
      .where('password_hash', '=', user.password_hash)
      .returning('id')
      .executeTakeFirst();
    if (!updated) throw new ConflictError('The password was changed meanwhile: sign in again');
    await trx.deleteFrom('sessions').where('user_id', '=', user.id).execute();
    return startSession(svc, user.id, trx);
  });
  return { user: { id: user.id, email: user.email, name: user.name }, ...session };
}

/** The user a session token belongs to, or undefined when the token is unknown, expired or idle too long. */
export async function userForSession(svc: Services, token: string): Promise<PublicUser | undefined> {
  return (await callerForSession(svc, token))?.user;
}

/** What a request names as its workspace, before anything is known about the caller's right to it. */
export interface NamedWorkspace {
  workspaceId?: string | undefined;
  /** The workflow procedures name a workflow: its workspace is the one meant. */
  workflowId?: string | undefined;
}

export interface SessionCaller {
  user: PublicUser;
  /** The workspace the request names, only when the user is a member of it; otherwise undefined. */
  workspaceId: string | undefined;
}

/**
 * Sessions are touched (`last_seen_at`) at most this often, so a busy user costs a write every few minutes,
 * not one per request; the idle timeout is therefore exact to within this much.
 */
export const SESSION_TOUCH_MS = 5 * 60 * 1000;

/**
 * The signed-in user of a session token, and the workspace the request names if the user is a member of it —
 * ONE statement, so a request's row-level-security scope is set only after membership is verified and costs
 * no round trip of its own. A session is live until its absolute end (`expires_at`) and while it has been used
 * within the idle timeout (`svc.sessionIdleMs`); using it moves `last_seen_at` on, at most every
 * SESSION_TOUCH_MS (a data-modifying CTE of the same statement, which writes nothing when the session is fresh).
 */
export async function callerForSession(
  svc: Services,
  token: string,
  named: NamedWorkspace = {},
): Promise<SessionCaller | undefined> {
  const idleMs = svc.sessionIdleMs;
  const touchMs = Math.min(SESSION_TOUCH_MS, Math.floor(idleMs / 4));
  // The membership lookups are owner-rights functions (migrations 0005, 0010): their answer does not depend on
  // the scope the connection holds.
  const workspace = named.workspaceId
    ? sql<string | null>`latchkey_member_workspace(${named.workspaceId}, live.id)`
    : named.workflowId
      ? sql<string | null>`latchkey_workflow_workspace(${named.workflowId}, live.id)`
      : sql<string | null>`null::text`;
  // Users and sessions are not workspace-scoped: the check runs under whatever scope the connection holds
  // (no round trip spent changing it, db/scope.ts).
  const { rows } = await scopeIndependent(() =>
    sql<PublicUser & { workspace_id: string | null }>`
      with live as (
        select u.id, u.email, u.name, s.token_hash, s.last_seen_at
        from sessions s join users u on u.id = s.user_id
        where s.token_hash = ${hashToken(token)}
          and s.expires_at > now()
          and s.last_seen_at > now() - ${idleMs}::double precision * interval '1 millisecond'
      ), touched as (
        update sessions set last_seen_at = now()
        where token_hash = (select token_hash from live)
          and last_seen_at < now() - ${touchMs}::double precision * interval '1 millisecond'
      )
      select live.id, live.email, live.name, ${workspace} as workspace_id from live`.execute(svc.db),
  );
  const row = rows[0];
  if (!row) return undefined;
  return {
    user: { id: row.id, email: row.email, name: row.name },
    workspaceId: row.workspace_id ?? undefined,
  };
}
