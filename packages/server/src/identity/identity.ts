import { sql } from 'kysely';
import { ConflictError, InvalidCredentialsError, isUniqueViolation } from '../errors.js';
import type { Services } from '../services.js';
import { hashPassword, verifyPassword } from './passwords.js';
import { hashToken, newId, newToken } from './tokens.js';

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

async function startSession(svc: Services, userId: string): Promise<{ token: string; expiresAt: Date }> {
  const { token, hash } = newToken();
  const expiresAt = new Date(Date.now() + svc.sessionTtlMs);
  await svc.db
    .insertInto('sessions')
    .values({ token_hash: hash, user_id: userId, expires_at: expiresAt })
    .execute();
  return { token, expiresAt };
}

/** Creates an account with a personal workspace, and signs it in. */
export async function signUp(
  svc: Services,
  input: { email: string; password: string; name: string },
  createWorkspace: (userId: string, name: string) => Promise<unknown>,
): Promise<SessionStart> {
  const email = input.email.trim().toLowerCase();
  const passwordHash = await hashPassword(input.password, svc.passwordCost);
  const id = newId();
  try {
    await svc.db
      .insertInto('users')
      .values({ id, email, name: input.name.trim(), password_hash: passwordHash })
      .execute();
  } catch (error) {
    if (isUniqueViolation(error)) throw new ConflictError('An account with this email already exists');
    throw error;
  }
  await createWorkspace(id, `${input.name.trim()}'s workspace`);
  const session = await startSession(svc, id);
  return { user: { id, email, name: input.name.trim() }, ...session };
}

/** Signs in; the old session (if any) is ended so a fixed session id cannot be planted before sign-in. */
export async function signIn(
  svc: Services,
  input: { email: string; password: string },
  previousToken: string | undefined,
): Promise<SessionStart> {
  const email = input.email.trim().toLowerCase();
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
  if (previousToken) await signOut(svc, previousToken);
  const session = await startSession(svc, user.id);
  return { user: { id: user.id, email: user.email, name: user.name }, ...session };
}

export async function signOut(svc: Services, token: string): Promise<void> {
  await svc.db.deleteFrom('sessions').where('token_hash', '=', hashToken(token)).execute();
}

/** The user a session token belongs to, or undefined when the token is unknown or expired. */
export async function userForSession(svc: Services, token: string): Promise<PublicUser | undefined> {
  return svc.db
    .selectFrom('sessions as s')
    .innerJoin('users as u', 'u.id', 's.user_id')
    .select(['u.id', 'u.email', 'u.name'])
    .where('s.token_hash', '=', hashToken(token))
    .where('s.expires_at', '>', sql<Date>`now()`)
    .executeTakeFirst();
}
