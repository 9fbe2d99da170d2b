import { randomBytes } from 'node:crypto';
import { exampleSample } from '@latchkey/core/testing';
import type { Kysely } from 'kysely';
import { createServices } from '../app.js';
import { LocalKeyProvider, parseMasterKey } from '../crypto/index.js';
import { type DatabaseHandle, type OpenOptions, openDatabase } from '../db/connect.js';
import { ensureLoginRole } from '../db/roles.js';
import type { Database } from '../db/schema.js';
import { plugins } from '../plugins.js';
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
  if (backend === 'pglite') return registered(await openDatabase({ kind: 'pglite', dataDir: null }, options));
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error('TEST_DATABASE_URL is not set');
  const schema = `t_${randomBytes(6).toString('hex')}`;
  // The application connects as a restricted login role (row-level security binds it); the owner migrates.
  const appUrl = await ensureTestLoginRole();
  const handle = await openDatabase(
    { kind: 'postgres', url: appUrl, ownerUrl: url, schema, poolSize: 4 },
    options,
  );
  return registered({
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
  });
}

function registered<T extends DatabaseHandle>(handle: T): T {
  owners.set(handle.db, ownerOf(handle));
  return handle;
}

/** The login role tests and benchmarks connect as on PostgreSQL: a member of `latchkey_app`, nothing more. */
export const TEST_LOGIN_ROLE = 'latchkey_test_app';

/** Creates (once) the restricted login role of TEST_LOGIN_ROLE and returns TEST_DATABASE_URL with it as user. */
export function ensureTestLoginRole(): Promise<string> {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error('TEST_DATABASE_URL is not set');
  return ensureLoginRole(url, TEST_LOGIN_ROLE);
}

/** The owner connection of every test database, by its application connection. */
const owners = new WeakMap<Kysely<Database>, Kysely<Database>>();

/**
 * The tables' owner for a test app's services: tests read and arrange rows with it directly (row-level
 * security binds `svc.db`, which sees only the rows of the scope a request runs in).
 */
export function ownerDb(svc: Services): Kysely<Database> {
  const owner = owners.get(svc.db);
  if (!owner) throw new Error('These services do not use a database opened by openTestDatabase');
  return owner;
}

export function ownerOf(database: DatabaseHandle): Kysely<Database> {
  if (!database.owner) throw new Error('The test database has no owner connection');
  return database.owner;
}

export function testMasterKey() {
  return parseMasterKey(randomBytes(32).toString('base64'), 'test key');
}

export interface TestApp {
  svc: Services;
  database: DatabaseHandle;
  /**
   * The tables' owner, for tests that read or arrange rows directly: row-level security does not bind it
   * (the application's own `svc.db` sees only the rows of the scope it runs in).
   */
  owner: Kysely<Database>;
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
  return { svc, database, owner: ownerOf(database), close: () => database.close() };
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
  if (!user) throw new Error('sign-up of a fresh email did not sign in');
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

/**
 * The hosts the HTTP Request credentials of FAKE_DATA may be sent to (required since claim 29): the local fakes
 * (127.0.0.1, which LATCHKEY_OUTBOUND_ALLOW lets them reach over plain http) and a name that never resolves.
 */
export const FAKE_ALLOWED_DOMAINS = '127.0.0.1, api.example.test';

/** OAuth2 endpoints for FAKE_DATA: on an allowed domain that never resolves, so connecting sends nothing. */
export const FAKE_OAUTH2_ENDPOINTS = {
  authorizationUrl: 'https://api.example.test/oauth/authorize',
  tokenUrl: 'https://api.example.test/oauth/token',
};

/**
 * Every static credential type the server offers and the node type that uses it (from the plugins: a new one is
 * covered). OAuth2 types are connected through an authorization server, not created from form data alone:
 * src/oauth/oauth2.test.ts covers them against a real one (`OAUTH2_CREDENTIAL_TYPES`).
 */
export const CREDENTIAL_TYPES: readonly { credentialType: string; nodeType: string }[] = plugins.flatMap(
  (plugin) =>
    plugin.credentialTypes
      .filter((definition) => !definition.oauth2)
      .map((definition) => ({ credentialType: definition.type, nodeType: plugin.nodeType })),
);

/** The OAuth2 credential types the server offers. */
export const OAUTH2_CREDENTIAL_TYPES: readonly string[] = plugins.flatMap((plugin) =>
  plugin.credentialTypes.filter((definition) => definition.oauth2).map((definition) => definition.type),
);

/**
 * Obviously fake credential data for each credential type: each field's `example` from its plugin (fake by
 * the plugins' own rule, and valid: the conformance suite builds its samples from them), except the allowed
 * domains of the HTTP Request credentials, which name the hosts the tests reach.
 */
function fakeDataOf(oauth2: boolean): Record<string, Record<string, string>> {
  return Object.fromEntries(
    plugins.flatMap((plugin) =>
      plugin.credentialTypes
        .filter((definition) => Boolean(definition.oauth2) === oauth2)
        .map((definition) => {
          const { sample, missing } = exampleSample(definition.schema.shape);
          if (missing.length) throw new Error(`${definition.type} has no example for ${missing.join(', ')}`);
          const local =
            'allowedDomains' in sample ? { ...sample, allowedDomains: FAKE_ALLOWED_DOMAINS } : sample;
          // An OAuth2 type's endpoints on an allowed host that never resolves: connecting sends nothing.
          return [definition.type, 'tokenUrl' in local ? { ...local, ...FAKE_OAUTH2_ENDPOINTS } : local];
        }),
    ),
  );
}

/** Data of every static credential type (CREDENTIAL_TYPES): what `secrets.create` saves as it is. */
export const FAKE_DATA = fakeDataOf(false);

/** The form data of every OAuth2 type (OAUTH2_CREDENTIAL_TYPES), for `secrets.connect`. */
export const OAUTH2_FAKE_DATA = fakeDataOf(true);
