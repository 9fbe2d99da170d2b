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

/** The user a session token belongs to, or undefined when the token is unknown or expired. */
export async function userForSession(svc: Services, token: string): Promise<PublicUser | undefined> {
  // Users and sessions are not workspace-scoped: the check runs under whatever scope the connection holds
  // (no round trip spent changing it, db/scope.ts).
  return scopeIndependent(() =>
    svc.db
      .selectFrom('sessions as s')
      .innerJoin('users as u', 'u.id', 's.user_id')
      .select(['u.id', 'u.email', 'u.name'])
      .where('s.token_hash', '=', hashToken(token))
      .where('s.expires_at', '>', sql<Date>`now()`)
      .executeTakeFirst(),
  );
}
