// Shared pieces of `pnpm bench` (run.mjs) and its HTTP server process (http-server.mjs): the built server
// (dist/), the database target, bulk data builders and timing statistics. Plain ESM, no build step of its own.
//
// Row-level security (db/scope.ts): the services' connection (`database.db`) is the application's; on
// PostgreSQL it logs in as a restricted role and sees a workspace's rows only inside `withDbScope`. The bench
// seeds its data through the tables' owner (`database.owner`, which row-level security does not bind) and
// runs every measured call, operation and baseline alike, inside the scope a request would have.
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { median, quantileSorted } from 'd3-array';
import { sql } from 'kysely';

const dist = new URL('../dist/', import.meta.url);
export const load = (path) => import(new URL(path, dist).href);

export const server = {
  connect: await load('db/connect.js'),
  scope: await load('db/scope.js'),
  roles: await load('db/roles.js'),
  app: await load('app.js'),
  crypto: await load('crypto/index.js'),
  secrets: {
    ...(await load('secrets/write.js')),
    ...(await load('secrets/list.js')),
    ...(await load('secrets/deletion.js')),
  },
  resolve: await load('runner/resolve-credential.js'),
  oauth: {
    ...(await load('oauth/connections.js')),
    ...(await load('oauth/refresh.js')),
    ...(await load('oauth/tokens.js')),
    ...(await load('oauth/protocol.js')),
  },
  runner: await load('runner/runner.js'),
  config: await load('config.js'),
  workspaces: await load('workspaces/workspaces.js'),
  http: await load('http/server.js'),
  identity: await load('identity/identity.js'),
  router: await load('trpc/router.js'),
};

/** Cheap password hashing for the bench's few accounts (production uses the OWASP cost). */
export const BENCH_SCRYPT = { log2N: 10, r: 8, p: 1 };

export function masterKeyFrom(base64) {
  const key = server.crypto.parseMasterKey(base64, 'bench master key');
  return new server.crypto.LocalKeyProvider({ active: key, all: [key] });
}

export const newMasterKeyText = () => randomBytes(32).toString('base64');

/**
 * The login role the bench's services use on PostgreSQL: a member of `latchkey_app`, not superuser, not
 * BYPASSRLS, owning nothing (the same role as the tests, testing/harness.ts TEST_LOGIN_ROLE). Created once
 * with the owner's (superuser) URL; returns that URL with the role as its user.
 */
export const BENCH_LOGIN_ROLE = 'latchkey_test_app';
export const applicationUrl = (ownerUrl) => server.roles.ensureLoginRole(ownerUrl, BENCH_LOGIN_ROLE);

/** Runs `fn` scoped like a signed-in request for `workspaceId` (db/scope.ts). */
export const inScope = (scope, fn) => server.scope.withDbScope(scope, fn);

/** Runs `fn`, whose statements set their own scope or touch no scoped table. */
export const scopeIndependent = server.scope.scopeIndependent;

/**
 * Opens the bench database through the server's own openDatabase: a PGlite data directory, or a schema of its
 * own on PostgreSQL with `target.url` (the restricted application role) and `target.ownerUrl` (the owner).
 * `--experiment=pglite-shared-buffers=SIZE` instead opens PGlite exactly as openDatabase does (the same
 * row-level-security dialect) plus `shared_buffers = SIZE`, to measure what that setting would change.
 * `options.onQuery` sees every statement (run.mjs counts them per HTTP request).
 */
export async function openTarget(target, experiment, options = {}) {
  const buffers = /^pglite-shared-buffers=(\w+)$/.exec(experiment ?? '')?.[1];
  if (target.kind === 'pglite' && buffers) {
    const { PGlite } = await import('@electric-sql/pglite');
    const { Kysely } = await import('kysely');
    const { PGliteDialect } = await import('kysely-pglite-dialect');
    const { mkdirSync } = await import('node:fs');
    const pathModule = await import('node:path');
    if (target.dataDir)
      mkdirSync(pathModule.dirname(pathModule.resolve(target.dataDir)), { recursive: true });
    const config = { postgresqlconf: `shared_buffers = ${buffers}` };
    const client = target.dataDir ? await PGlite.create(target.dataDir, config) : await PGlite.create(config);
    const dialect = server.scope.scopedDialect(new PGliteDialect(client), {
      runScript: async (_connection, script) => {
        await client.exec(script);
      },
      trace: options.onQuery,
      singleSession: true,
    });
    const log = options.onQuery ? (event) => options.onQuery(event.query.sql) : undefined;
    const db = new Kysely({ dialect, ...(log ? { log } : {}) });
    return { db, owner: db, kind: 'pglite', close: () => db.destroy() };
  }
  return target.kind === 'pglite'
    ? server.connect.openDatabase({ kind: 'pglite', dataDir: target.dataDir }, options)
    : server.connect.openDatabase(
        {
          kind: 'postgres',
          url: target.url,
          ownerUrl: target.ownerUrl,
          schema: target.schema,
          poolSize: 10,
        },
        options,
      );
}

/** The tables' owner of an open bench database (PGlite: the same client, unscoped = superuser). */
export function ownerOf(database) {
  if (!database.owner) throw new Error('the bench database has no owner connection');
  return database.owner;
}

export async function dropSchema(url, schema) {
  const pg = (await import('pg')).default;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    // Another session's statements on the same server (a test suite beside the bench) can meet the drop in a
    // deadlock; PostgreSQL then cancels one side, so the drop is tried again.
    for (let attempt = 1; ; attempt++) {
      try {
        await admin.query(`drop schema if exists ${schema} cascade`);
        break;
      } catch (error) {
        if (error?.code !== '40P01' || attempt >= 3) throw error;
      }
    }
  } finally {
    await admin.end();
  }
}

/** Obviously fake credential data for each credential type (never shaped like a real key). */
export const FAKE_DATA = {
  httpBearerToken: { token: 'fake-bearer-token-for-bench', allowedDomains: '127.0.0.1' },
  httpBasicAuth: { username: 'fake-user', password: 'fake-password-for-bench', allowedDomains: '127.0.0.1' },
  httpHeaderAuth: {
    headerName: 'X-Api-Key',
    headerValue: 'fake-header-value-for-bench',
    allowedDomains: '127.0.0.1',
  },
  httpQueryAuth: {
    paramName: 'api_key',
    paramValue: 'fake-query-value-for-bench',
    allowedDomains: '127.0.0.1',
  },
  sendgridApiKey: { apiKey: 'SG.fake-id-for-bench.fake-secret-for-bench' },
  mailgunApiKey: { apiKey: 'fake-mailgun-key-for-bench', domain: 'mg.example.test', region: 'eu' },
  slackBotToken: { token: 'xoxb-fake-token-for-bench' },
  slackWebhook: { webhookUrl: 'https://hooks.slack.com/services/TFAKE/BFAKE/fakefakefakefake' },
};
export const CREDENTIAL_TYPES = Object.keys(FAKE_DATA);

/** A signed-up account (through the public API) and its session token. */
export async function signUp(svc, name) {
  let token;
  const caller = server.router.createCaller({
    svc,
    sessionToken: undefined,
    setSession(value) {
      token = value;
    },
    clearSession() {},
  });
  const email = `${name.toLowerCase().replace(/\W+/g, '-')}-${randomBytes(3).toString('hex')}@example.test`;
  const { user } = await caller.auth.signUp({ email, password: 'correct horse battery staple', name });
  return { user, token, actor: { userId: user.id } };
}

/** An account that never signs in (bench members and leavers), inserted directly. */
export async function plainUser(db, name) {
  const id = randomUUID();
  await db
    .insertInto('users')
    .values({ id, email: `${name}-${id.slice(0, 8)}@example.test`, name, password_hash: 'x' })
    .execute();
  return id;
}

export async function teamWorkspace(svc, actor, name) {
  return (await server.workspaces.createWorkspace(svc, actor, { name, plan: 'team' })).id;
}

export async function addMember(db, workspaceId, userId, role = 'member') {
  await db.insertInto('memberships').values({ workspace_id: workspaceId, user_id: userId, role }).execute();
}

const templates = new Map();
function template(svc, credentialType) {
  let t = templates.get(credentialType);
  if (!t) {
    const result = svc.registry.validateCredential(credentialType, FAKE_DATA[credentialType]);
    if (!result.ok) throw new Error(`bench fake data for ${credentialType} is not valid`);
    t = result.value;
    templates.set(credentialType, t);
  }
  return t;
}

async function insertChunked(db, table, rows, chunk = 1000) {
  for (let i = 0; i < rows.length; i += chunk) {
    await db
      .insertInto(table)
      .values(rows.slice(i, i + chunk))
      .execute();
  }
}

/**
 * Inserts `count` real, encrypted secrets in bulk (1,000 rows a statement), spread evenly over the credential
 * types and over time (one per second back from `until`), so pages and indexes look like a grown workspace.
 * Written by `owner` (the tables' owner: seeding is not what is measured).
 */
export async function bulkSecrets(
  svc,
  owner,
  { workspaceId, count, createdBy, prefix = 'Secret', until = Date.now() },
) {
  const dataKey = await svc.keys.active(owner, workspaceId);
  const ids = [];
  const rows = [];
  for (let i = 0; i < count; i++) {
    const credentialType = CREDENTIAL_TYPES[i % CREDENTIAL_TYPES.length];
    const valid = template(svc, credentialType);
    const id = randomUUID();
    ids.push(id);
    const at = new Date(until - (count - i) * 1000);
    rows.push({
      id,
      workspace_id: workspaceId,
      name: `${prefix} ${String(i).padStart(6, '0')}`,
      integration_id: valid.integrationId,
      node_type: valid.nodeType,
      credential_type: credentialType,
      public_fields: JSON.stringify(valid.publicFields),
      ciphertext: server.crypto.encryptSecretFields(
        dataKey.key,
        dataKey.version,
        { workspaceId, secretId: id, credentialType, publicFields: valid.publicFields },
        valid.secretFields,
      ),
      key_version: dataKey.version,
      created_by: typeof createdBy === 'function' ? createdBy(i) : createdBy,
      created_at: at,
      updated_at: at,
    });
  }
  await insertChunked(owner, 'secrets', rows);
  return ids;
}

/** `perWorkflow` nodes per workflow, node i using secretIds[i] (all SendGrid nodes). */
export async function bulkNodes(db, { workspaceId, secretIds, perWorkflow = 100, nodeType = 'sendgrid' }) {
  const workflows = [];
  const nodes = [];
  for (let i = 0; i < secretIds.length; i++) {
    if (i % perWorkflow === 0) {
      workflows.push({
        id: randomUUID(),
        workspace_id: workspaceId,
        name: `Flow ${workflows.length}`,
        updated_at: new Date(),
      });
    }
    nodes.push({
      id: randomUUID(),
      workflow_id: workflows[workflows.length - 1].id,
      workspace_id: workspaceId,
      name: `Node ${i}`,
      node_type: nodeType,
      params: JSON.stringify({}),
      secret_id: secretIds[i],
      position: i % perWorkflow,
      updated_at: new Date(),
    });
  }
  await insertChunked(db, 'workflows', workflows);
  await insertChunked(db, 'workflow_nodes', nodes);
  return { workflows: workflows.length, nodes: nodes.length };
}

export async function analyze(db) {
  await sql`analyze`.execute(db);
}

// ---------------------------------------------------------------------------------------------------------
// Statistics: d3-array's quantiles (linear interpolation between closest ranks); the interleaving that makes
// the operation and its baseline comparable is `compare`'s own (docs/performance.md).

export function summarize(samplesMs) {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  return {
    n: sorted.length,
    medianMs: quantileSorted(sorted, 0.5) ?? Number.NaN,
    p95Ms: quantileSorted(sorted, 0.95) ?? Number.NaN,
  };
}

/** Runs `fn` `batch` times in a row; returns each call's duration (ms) and the batch's throughput (ops/s). */
export async function timeBatch(fn, batch) {
  const samples = [];
  const started = performance.now();
  for (let i = 0; i < batch; i++) {
    const t0 = performance.now();
    await fn(i);
    samples.push(performance.now() - t0);
  }
  return { samples, opsPerSec: (batch * 1000) / (performance.now() - started) };
}

/**
 * Measures an operation and its baseline in the same run, interleaved round by round (A B, B A, A B, …) so
 * that a noisy neighbour hits both alike. Returns per-call latency (median, p95) and the median over rounds of
 * the throughput.
 */
export async function compare(op, base, { rounds, batch, warmup = Math.min(batch, 20) }) {
  await timeBatch(op, warmup);
  await timeBatch(base, warmup);
  const a = { samples: [], rates: [] };
  const b = { samples: [], rates: [] };
  for (let r = 0; r < rounds; r++) {
    const order =
      r % 2 === 0
        ? [
            [op, a],
            [base, b],
          ]
        : [
            [base, b],
            [op, a],
          ];
    for (const [fn, into] of order) {
      const { samples, opsPerSec } = await timeBatch(fn, batch);
      into.samples.push(...samples);
      into.rates.push(opsPerSec);
    }
  }
  const stats = (x) => ({
    ...summarize(x.samples),
    opsPerSec: median(x.rates) ?? Number.NaN,
  });
  return { op: stats(a), base: stats(b) };
}

export function readProcStatus(pid = 'self') {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? Number.NaN);
    const mine = pid === 'self' ? process.memoryUsage() : undefined;
    return {
      rssMb: kb('VmRSS') / 1024,
      peakRssMb: kb('VmHWM') / 1024,
      ...(mine ? { heapMb: mine.heapTotal / 1048576, externalMb: mine.external / 1048576 } : {}),
    };
  } catch {
    const usage = process.memoryUsage();
    return {
      rssMb: usage.rss / 1048576,
      peakRssMb: Number.NaN,
      heapMb: usage.heapTotal / 1048576,
      externalMb: usage.external / 1048576,
    };
  }
}
