import { randomBytes } from 'node:crypto';
import { createServices } from '../app.js';
import { LocalKeyProvider, parseMasterKey } from '../crypto/index.js';
import { type DatabaseHandle, type OpenOptions, openDatabase } from '../db/connect.js';
import type { Services } from '../services.js';
import { createCaller } from '../trpc/router.js';
import type { Context } from '../trpc/trpc.js';

/** Cheap scrypt for tests; production uses OWASP_SCRYPT (a test checks that default separately). */
export const TEST_SCRYPT = { log2N: 10, r: 8, p: 1 };

export type Backend = 'pglite' | 'postgres';

export function testBackend(): Backend {
  return process.env.LATCHKEY_TEST_BACKEND === 'postgres' ? 'postgres' : 'pglite';
}

/**
 * A fresh, empty database for one test file: in-memory PGlite, or a schema of its own on the PostgreSQL
 * server of TEST_DATABASE_URL (dropped on close), so parallel test files never see each other's rows.
 */
export async function openTestDatabase(
  backend: Backend = testBackend(),
  options: OpenOptions = {},
): Promise<DatabaseHandle & { schema?: string }> {
  if (backend === 'pglite') return openDatabase({ kind: 'pglite', dataDir: null }, options);
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error('TEST_DATABASE_URL is not set');
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const handle = await openDatabase({ kind: 'postgres', url, schema, poolSize: 4 }, options);
  return {
    ...handle,
    schema,
    async close() {
      await handle.close();
      const pg = (await import('pg')).default;
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      await admin.query(`drop schema if exists ${schema} cascade`);
      await admin.end();
    },
  };
}

export function testMasterKey() {
  return parseMasterKey(randomBytes(32).toString('base64'), 'test key');
}

export interface TestApp {
  svc: Services;
  database: DatabaseHandle;
  close(): Promise<void>;
}

export async function createTestApp(
  backend: Backend = testBackend(),
  options: OpenOptions = {},
): Promise<TestApp> {
  const database = await openTestDatabase(backend, options);
  const key = testMasterKey();
  const svc = await createServices({
    database,
    keyProvider: new LocalKeyProvider({ active: key, all: [key] }),
    passwordCost: TEST_SCRYPT,
  });
  return { svc, database, close: () => database.close() };
}

export type Caller = ReturnType<typeof createCaller>;

/** An in-process tRPC caller holding its own session, like one browser. */
export function clientFor(svc: Services): { caller: Caller; session: { token: string | undefined } } {
  const session: { token: string | undefined } = { token: undefined };
  const ctx: Context = {
    svc,
    get sessionToken() {
      return session.token;
    },
    setSession(token) {
      session.token = token;
    },
    clearSession() {
      session.token = undefined;
    },
  };
  return { caller: createCaller(ctx), session };
}

let counter = 0;

/** Signs up a user (with their personal workspace) and returns a signed-in caller. */
export async function signedInUser(svc: Services, name = 'Test User') {
  counter += 1;
  const { caller, session } = clientFor(svc);
  const email = `user-${counter}-${randomBytes(3).toString('hex')}@example.test`;
  const password = 'correct horse battery staple';
  const { user } = await caller.auth.signUp({ email, password, name });
  return { caller, session, user, email, password };
}

/** A team workspace with an owner, an admin and a member (all signed in). */
export async function teamWorkspace(svc: Services) {
  const owner = await signedInUser(svc, 'Olivia Owner');
  const admin = await signedInUser(svc, 'Adam Admin');
  const member = await signedInUser(svc, 'Mia Member');
  const workspace = await owner.caller.workspaces.create({ name: 'Acme', plan: 'team' });
  for (const [person, role] of [
    [admin, 'admin'],
    [member, 'member'],
  ] as const) {
    const invite = await owner.caller.workspaces.invite({
      workspaceId: workspace.id,
      email: person.email,
      role,
    });
    await person.caller.workspaces.acceptInvite({ token: invite.token });
  }
  return { workspaceId: workspace.id, owner, admin, member };
}

/** Obviously fake credential data for each credential type (never shaped like a real key). */
export const FAKE_DATA: Record<string, Record<string, string>> = {
  httpBearerToken: { token: 'fake-bearer-token-for-tests' },
  httpBasicAuth: { username: 'fake-user', password: 'fake-password-for-tests' },
  httpHeaderAuth: { headerName: 'X-Api-Key', headerValue: 'fake-header-value-for-tests' },
  httpQueryAuth: { paramName: 'api_key', paramValue: 'fake-query-value-for-tests' },
  sendgridApiKey: { apiKey: 'SG.fake-id-for-tests.fake-secret-for-tests' },
  mailgunApiKey: { apiKey: 'fake-mailgun-key-for-tests', domain: 'mg.example.test', region: 'eu' },
  slackBotToken: { token: 'xoxb-fake-token-for-tests' },
  slackWebhook: { webhookUrl: 'https://hooks.slack.com/services/TFAKE/BFAKE/fakefakefakefake' },
  twilioApiCredentials: {
    accountSid: 'ACffffffffffffffffffffffffffffffff',
    authToken: 'fake-twilio-auth-token-for-tests',
  },
};
