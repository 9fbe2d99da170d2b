import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FakeService } from '@latchkey/core/testing/fake-service';
import { fakeHttp } from '@latchkey/integration-http-request/fake';
import { fakeMailgun } from '@latchkey/integration-mailgun/fake';
import { fakeSendgrid } from '@latchkey/integration-sendgrid/fake';
import { fakeSlack } from '@latchkey/integration-slack/fake';
import { sql } from 'kysely';
import { createServices } from '../app.js';
import { LocalKeyProvider } from '../crypto/index.js';
import type { DatabaseHandle } from '../db/connect.js';
import { WORKSPACE_SCOPED_TABLES } from '../db/migrations.js';
import { parseOutboundAllow } from '../runner/outbound-guard.js';
import type { RunnerSettings } from '../runner/settings.js';
import type { Services } from '../services.js';
import {
  type Caller,
  clientFor,
  FAKE_ALLOWED_DOMAINS,
  openTestDatabase,
  ownerDb,
  signedInUser,
  TEST_SCRYPT,
  testMasterKey,
} from './harness.js';

/**
 * The plugins' fake services (each plugin's `src/fake-<id>.ts`) started together: SendGrid, Mailgun (US and
 * EU), Slack (Web API and incoming webhooks) and two generic HTTP APIs, with the base URL overrides that point
 * the runner at them.
 */
export interface FakeServices {
  sendgrid: FakeService;
  mailgunUs: FakeService;
  mailgunEu: FakeService;
  slack: FakeService;
  http: FakeService;
  /** A second generic HTTP server: another origin, for cross-origin redirects. */
  otherHttp: FakeService;
  all: FakeService[];
  /** `LATCHKEY_BASE_URL_*` overrides pointing every integration at its fake. */
  baseUrlOverrides: Record<string, string>;
  resetAll(): void;
  close(): Promise<void>;
}

export const FAKE_MAILGUN_DOMAINS = ['mg.example.test'];

export async function startFakeServices(): Promise<FakeServices> {
  const sendgrid = await fakeSendgrid().listen();
  const mailgunUs = await fakeMailgun('us', FAKE_MAILGUN_DOMAINS).listen();
  const mailgunEu = await fakeMailgun('eu', FAKE_MAILGUN_DOMAINS).listen();
  const slack = await fakeSlack().listen();
  const httpFake = await fakeHttp('HTTP').listen();
  const otherHttp = await fakeHttp('other HTTP').listen();
  const all = [sendgrid, mailgunUs, mailgunEu, slack, httpFake, otherHttp];
  return {
    sendgrid,
    mailgunUs,
    mailgunEu,
    slack,
    http: httpFake,
    otherHttp,
    all,
    baseUrlOverrides: {
      LATCHKEY_BASE_URL_SENDGRID: sendgrid.url,
      LATCHKEY_BASE_URL_MAILGUN_US: mailgunUs.url,
      LATCHKEY_BASE_URL_MAILGUN_EU: mailgunEu.url,
      LATCHKEY_BASE_URL_SLACK: `${slack.url}/api`,
      LATCHKEY_BASE_URL_SLACK_HOOKS: slack.url,
    },
    resetAll() {
      for (const fake of all) fake.reset();
    },
    async close() {
      await Promise.all(all.map((fake) => fake.close()));
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// A server set up against the fakes (for the runner's tests): its own database, services whose runner
// points at the fakes, and helpers to build more services on the same database with other runner settings.

export interface RunnerTestEnv {
  fakes: FakeServices;
  database: DatabaseHandle & { schema?: string };
  keyProvider: LocalKeyProvider;
  settings: RunnerSettings;
  svc: Services;
  /** Another set of services on the same database (as a second server instance would be), with other runner settings. */
  servicesWith(runner: Partial<RunnerSettings>): Promise<Services>;
  close(): Promise<void>;
}

/** A port nothing listens on: calls to it fail with "connection refused" (ECONNREFUSED). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Runner settings pointing every integration at the fakes, allowing the HTTP Request node to reach 127.0.0.1. */
export function runnerSettingsFor(
  fakes: FakeServices,
  overrides: Partial<RunnerSettings> = {},
): RunnerSettings {
  return {
    baseUrlOverrides: { ...fakes.baseUrlOverrides },
    policy: parseOutboundAllow('127.0.0.1'),
    timeoutMs: 5_000,
    maxResponseBytes: 256 * 1024,
    maxRedirects: 5,
    ...overrides,
  };
}

export async function startRunnerTestEnv(overrides: Partial<RunnerSettings> = {}): Promise<RunnerTestEnv> {
  const fakes = await startFakeServices();
  const database = await openTestDatabase();
  const key = testMasterKey();
  const keyProvider = new LocalKeyProvider({ active: key, all: [key] });
  const settings = runnerSettingsFor(fakes, overrides);
  const svc = await createServices({
    database,
    keyProvider,
    passwordCost: TEST_SCRYPT,
    runnerSettings: settings,
  });
  return {
    fakes,
    database,
    keyProvider,
    settings,
    svc,
    servicesWith: (runner) =>
      createServices({
        database,
        keyProvider,
        passwordCost: TEST_SCRYPT,
        runnerSettings: { ...settings, ...runner },
      }),
    async close() {
      await fakes.close();
      await database.close();
    },
  };
}

/** Every row of every table, as text: what "the server's records" hold (bytea columns appear as bytes). */
export async function everythingStored(svc: Services): Promise<string> {
  const tables = ['users', 'sessions', ...WORKSPACE_SCOPED_TABLES];
  const dump: Record<string, unknown[]> = {};
  for (const table of tables) {
    const { rows } = await sql.raw(`select * from ${table}`).execute(ownerDb(svc));
    dump[table] = rows.map((row) =>
      Object.fromEntries(
        Object.entries(row as Record<string, unknown>).map(([k, v]) => [
          k,
          v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : v,
        ]),
      ),
    );
  }
  return JSON.stringify(dump);
}

let fakeCounter = 0;

/**
 * Obviously fake credential data, different on every call (so a search for one value cannot match another
 * test's), and never shaped like a real SendGrid, Slack or Mailgun key.
 */
export function freshFakeData(): Record<string, Record<string, string>> {
  fakeCounter += 1;
  const n = `${process.pid.toString(36)}x${fakeCounter}x${Math.random().toString(36).slice(2, 8)}`;
  return {
    httpBearerToken: { token: `fake-bearer-${n}`, allowedDomains: FAKE_ALLOWED_DOMAINS },
    httpBasicAuth: {
      username: `fake-user-${n}`,
      password: `fake-pass-${n}`,
      allowedDomains: FAKE_ALLOWED_DOMAINS,
    },
    httpHeaderAuth: {
      headerName: 'X-Fake-Api-Key',
      headerValue: `fake-header-${n}`,
      allowedDomains: FAKE_ALLOWED_DOMAINS,
    },
    httpQueryAuth: {
      paramName: 'api_key',
      paramValue: `fake-query-${n}`,
      allowedDomains: FAKE_ALLOWED_DOMAINS,
    },
    sendgridApiKey: { apiKey: `SG.fakeid-${n}.fakesecret-${n}` },
    mailgunApiKey: { apiKey: `fake-mailgun-${n}`, domain: 'mg.example.test', region: 'eu' },
    slackBotToken: { token: `xoxb-fake-${n}` },
    slackWebhook: {
      webhookUrl: `https://hooks.slack.com/services/TFAKE/BFAKE/fakehook${n.replace(/[^A-Za-z0-9]/g, '')}`,
    },
  };
}

export interface NodeSpec {
  name: string;
  nodeType: string;
  params: Record<string, unknown>;
  secretId?: string;
}

/** A workflow of the given nodes (in order), each with its params and, optionally, a selected secret. */
export async function workflowWith(caller: Caller, workspaceId: string, name: string, nodes: NodeSpec[]) {
  const workflow = await caller.workflows.create({ workspaceId, name });
  const created = [];
  for (const spec of nodes) {
    const node = await caller.workflows.addNode({
      workflowId: workflow.id,
      name: spec.name,
      nodeType: spec.nodeType,
      params: spec.params,
    });
    if (spec.secretId)
      await caller.workflows.updateNode({
        workflowId: workflow.id,
        nodeId: node.id,
        secretId: spec.secretId,
      });
    created.push(node);
  }
  return { workflowId: workflow.id, nodes: created };
}

/** The personal workspace a signed-up user starts with. */
export async function personalWorkspace(caller: Caller): Promise<string> {
  const me = await caller.auth.me();
  const personal = me?.workspaces.find((w) => w.plan === 'personal');
  if (!personal) throw new Error('no personal workspace');
  return personal.id;
}

/**
 * A signed-up person of a runner test file, in their personal workspace, with the helpers those files share:
 * `secret` saves one, `runOne` runs a one-node workflow (through other services when given), `callerOn` is the
 * same signed-in person through other services (another runner configuration on the same database).
 */
export async function runnerTestPerson(env: RunnerTestEnv, name: string) {
  const person = await signedInUser(env.svc, name);
  const workspaceId = await personalWorkspace(person.caller);
  const callerOn = (svc: Services) => {
    const client = clientFor(svc);
    client.session.token = person.session.token;
    return client.caller;
  };
  return {
    person,
    workspaceId,
    callerOn,
    secret(
      credentialType: string,
      data: Record<string, string>,
      secretName = `${credentialType} ${Math.random()}`,
    ) {
      return person.caller.secrets.create({ workspaceId, credentialType, name: secretName, data });
    },
    async runOne(node: NodeSpec, svc?: Services) {
      const { workflowId, nodes } = await workflowWith(person.caller, workspaceId, `WF ${node.name}`, [node]);
      const result = await (svc ? callerOn(svc) : person.caller).workflows.run({ workflowId });
      return { workflowId, nodeId: nodes[0]?.id as string, result, node: result.nodes[0] };
    },
  };
}

export type RunnerTestPerson = Awaited<ReturnType<typeof runnerTestPerson>>;

/** Parameters that make each node type fully configured. */
export const PARAMS = {
  sendgrid: {
    from: 'sender@example.test',
    to: 'a@example.test, b@example.test',
    subject: 'Welcome',
    text: 'Hello there',
  },
  mailgun: {
    from: 'Team <team@mg.example.test>',
    to: 'someone@example.test',
    subject: 'Hi',
    text: 'Plain body',
  },
  slack: { channel: 'C0FAKECHAN', text: 'Deploy finished ✓' },
  http: (url: string, extra: Record<string, unknown> = {}) => ({ method: 'GET', url, ...extra }),
};
