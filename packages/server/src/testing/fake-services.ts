import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
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
 * Small real HTTP servers on 127.0.0.1 that stand in for SendGrid, Mailgun (US and EU), Slack (Web API and
 * incoming webhooks) and a generic HTTP API. Each records exactly what it received and answers as
 * ../shared/SERVICES.md describes; each can be told to misbehave (401, never answer, redirect, echo the
 * credential back, send an oversized body) to exercise the runner's failure paths.
 */

export interface RecordedRequest {
  method: string;
  /** Path without the query string, as received (percent-encoding kept). */
  path: string;
  query: Record<string, string | string[]>;
  headers: IncomingHttpHeaders;
  body: string;
}

export type FakeBehaviour =
  /** Answers as the real service does for a valid credential. */
  | { kind: 'normal' }
  /** Answers as the real service does for a bad credential (SendGrid 401 JSON, Mailgun 401 `Forbidden`, Slack 200 ok:false). */
  | { kind: 'unauthorized' }
  /** Reads the request and never answers. */
  | { kind: 'timeout' }
  /** Answers 302 (or `status`) to `location`; with `fromPath`, only requests to that path are redirected. */
  | { kind: 'redirect'; location: string; status?: number; fromPath?: string }
  /**
   * Sends back everything it received that could be a credential (Authorization, the bearer token, the Basic
   * `user:password`, every header and query value, the path) in the body AND in response headers, shaped so
   * that each plugin's error parser reads it (`errors[].message`, `message`, `error`). Status 400 by default.
   */
  | { kind: 'echo'; status?: number }
  /** Answers 200 with a body of `bytes` bytes. */
  | { kind: 'oversized'; bytes: number }
  /** Starts a 200 answer and drops the connection before the announced body is complete. */
  | { kind: 'hangup' };

type Handler = (req: RecordedRequest, res: ServerResponse, fake: FakeService) => void;

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function text(res: ServerResponse, status: number, body: string, contentType = 'text/plain'): void {
  res.writeHead(status, { 'content-type': contentType });
  res.end(body);
}

/** What a request carried that could be a credential, for the echo behaviour. */
export function credentialMaterial(req: RecordedRequest): {
  authorization: string;
  token: string;
  basic: string;
} {
  const authorization = String(req.headers.authorization ?? '');
  const token = authorization.replace(/^(Bearer|Basic)\s+/i, '');
  const basic = /^Basic\s+/i.test(authorization) ? Buffer.from(token, 'base64').toString('utf8') : '';
  return { authorization, token: basic ? (basic.split(':').slice(1).join(':') ?? '') : token, basic };
}

function echo(req: RecordedRequest, res: ServerResponse, status: number): void {
  const { authorization, token, basic } = credentialMaterial(req);
  if (req.path.startsWith('/services/')) {
    // Incoming webhooks answer plain text; the webhook's secret is its path.
    res.writeHead(status, { 'content-type': 'text/plain', 'x-echo-path': req.path });
    res.end(`invalid_token ${req.path} ${req.body}`);
    return;
  }
  const everything = [
    authorization,
    // The bare credential of the Authorization header (base64 of user:password for Basic), without its scheme.
    authorization.replace(/^\S+\s+/, ''),
    token,
    basic,
    req.path,
    ...Object.values(req.query).flat(),
    ...Object.entries(req.headers)
      .filter(([name]) => !['host', 'content-length', 'content-type', 'connection'].includes(name))
      .map(([, value]) => String(value)),
  ]
    .filter(Boolean)
    .join(' ');
  const headerSafe = (value: string) => value.replace(/[^\x20-\x7e]/g, '?');
  res.writeHead(status, {
    'content-type': 'application/json',
    'x-echo-authorization': headerSafe(authorization),
    'x-echo-token': headerSafe(token),
    'x-echo-everything': headerSafe(everything),
    'www-authenticate': `Bearer error="invalid_token", error_description="${headerSafe(token)}"`,
  });
  res.end(
    JSON.stringify({
      ok: false,
      error: `invalid_auth ${everything}`,
      message: `Forbidden: ${everything}`,
      errors: [
        { message: `The provided authorization grant is invalid: ${everything}`, field: null, help: null },
      ],
      received: { authorization, token, basic, path: req.path, query: req.query, headers: req.headers },
    }),
  );
}

export class FakeService {
  readonly requests: RecordedRequest[] = [];
  behaviour: FakeBehaviour = { kind: 'normal' };
  url = '';
  readonly #server: http.Server;
  readonly #sockets = new Set<Socket>();
  readonly #hanging = new Set<ServerResponse>();

  constructor(
    readonly name: string,
    private readonly handlers: { normal: Handler; unauthorized: Handler },
  ) {
    this.#server = http.createServer((req, res) => this.#handle(req, res));
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    const { port } = this.#server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
    return this;
  }

  get port(): number {
    return Number(new URL(this.url).port);
  }

  /** Sets how the fake answers from now on. */
  respond(behaviour: FakeBehaviour): this {
    this.behaviour = behaviour;
    return this;
  }

  /** Forgets recorded requests and answers normally again. */
  reset(): this {
    this.requests.length = 0;
    this.behaviour = { kind: 'normal' };
    return this;
  }

  /** The only request received since the last reset (fails loudly if there were none or several). */
  only(): RecordedRequest {
    if (this.requests.length !== 1) {
      throw new Error(`${this.name} fake received ${this.requests.length} requests, expected exactly 1`);
    }
    return this.requests[0] as RecordedRequest;
  }

  #handle(incoming: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      const url = new URL(incoming.url ?? '/', 'http://fake.invalid');
      const query: Record<string, string | string[]> = {};
      for (const [name, value] of url.searchParams) {
        const existing = query[name];
        query[name] =
          existing === undefined ? value : [...(Array.isArray(existing) ? existing : [existing]), value];
      }
      const recorded: RecordedRequest = {
        method: incoming.method ?? '',
        path: (incoming.url ?? '/').split('?')[0] ?? '/',
        query,
        headers: incoming.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      this.requests.push(recorded);
      const behaviour = this.behaviour;
      switch (behaviour.kind) {
        case 'timeout':
          this.#hanging.add(res);
          res.on('close', () => this.#hanging.delete(res));
          return;
        case 'redirect':
          if (behaviour.fromPath === undefined || behaviour.fromPath === recorded.path) {
            res.writeHead(behaviour.status ?? 302, {
              location: behaviour.location,
              'content-type': 'text/plain',
            });
            res.end('Found');
            return;
          }
          this.handlers.normal(recorded, res, this);
          return;
        case 'echo':
          echo(recorded, res, behaviour.status ?? 400);
          return;
        case 'oversized': {
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          const chunk = Buffer.alloc(64 * 1024, 'x');
          let left = behaviour.bytes;
          const pump = () => {
            while (left > 0 && !res.destroyed) {
              const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
              left -= piece.length;
              if (!res.write(piece)) {
                res.once('drain', pump);
                return;
              }
            }
            res.end();
          };
          res.on('error', () => {});
          pump();
          return;
        }
        case 'hangup':
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
          res.write('{"ok":');
          setTimeout(() => res.socket?.destroy(), 10);
          return;
        case 'unauthorized':
          this.handlers.unauthorized(recorded, res, this);
          return;
        default:
          this.handlers.normal(recorded, res, this);
      }
    });
  }

  async close(): Promise<void> {
    for (const res of this.#hanging) res.destroy();
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

const SENDGRID_INVALID = {
  errors: [
    { message: 'The provided authorization grant is invalid, expired, or revoked', field: null, help: null },
  ],
};

export function fakeSendgrid(): FakeService {
  return new FakeService('SendGrid', {
    normal(req, res) {
      if (!req.headers.authorization) {
        json(res, 401, { errors: [{ message: 'authorization required', field: null, help: null }] });
      } else if (req.method === 'POST' && req.path === '/v3/mail/send') {
        res.writeHead(202, { 'x-message-id': 'fake-message-id', 'x-ratelimit-remaining': '599' });
        res.end();
      } else if (req.method === 'GET' && req.path === '/v3/scopes') {
        json(res, 200, { scopes: ['mail.send', 'scopes.read'] });
      } else {
        json(res, 404, { errors: [{ message: 'not found', field: null, help: null }] });
      }
    },
    unauthorized(_req, res) {
      json(res, 401, SENDGRID_INVALID);
    },
  });
}

/** One Mailgun region; `domains` are the sending domains it knows (for GET /v4/domains/{domain}). */
export function fakeMailgun(region: 'us' | 'eu', domains: readonly string[]): FakeService {
  return new FakeService(`Mailgun ${region.toUpperCase()}`, {
    normal(req, res) {
      if (!req.headers.authorization) {
        text(res, 401, 'Forbidden');
        return;
      }
      const send = /^\/v3\/([^/]+)\/messages$/.exec(req.path);
      const domain = /^\/v4\/domains\/([^/]+)$/.exec(req.path);
      if (req.method === 'POST' && send) {
        json(res, 200, {
          id: `<20240101000000.fake.${region}@${decodeURIComponent(send[1] ?? '')}>`,
          message: 'Queued. Thank you.',
        });
      } else if (req.method === 'GET' && domain) {
        const name = decodeURIComponent(domain[1] ?? '');
        if (domains.includes(name)) {
          json(res, 200, {
            domain: { name, state: 'active' },
            receiving_dns_records: [],
            sending_dns_records: [],
          });
        } else {
          json(res, 404, { message: 'Domain not found' });
        }
      } else {
        json(res, 404, { message: 'Not found' });
      }
    },
    unauthorized(_req, res) {
      text(res, 401, 'Forbidden');
    },
  });
}

/** Slack: the Web API under /api/<method>, incoming webhooks under /services/T…/B…/…. */
export function fakeSlack(): FakeService {
  return new FakeService('Slack', {
    normal(req, res) {
      if (req.path.startsWith('/services/')) {
        text(res, 200, 'ok', 'text/html');
        return;
      }
      if (!req.headers.authorization) {
        json(res, 200, { ok: false, error: 'not_authed' });
      } else if (req.method === 'POST' && req.path === '/api/auth.test') {
        json(res, 200, {
          ok: true,
          url: 'https://fake.slack.test/',
          team: 'Fake Team',
          user: 'fakebot',
          team_id: 'T0FAKE',
          user_id: 'U0FAKE',
          bot_id: 'B0FAKE',
        });
      } else if (req.method === 'POST' && req.path === '/api/chat.postMessage') {
        let channel = '';
        try {
          channel = String((JSON.parse(req.body) as { channel?: unknown }).channel ?? '');
        } catch {
          json(res, 200, { ok: false, error: 'invalid_json' });
          return;
        }
        json(res, 200, { ok: true, channel, ts: '1503435956.000247', message: { text: 'fake' } });
      } else {
        json(res, 200, { ok: false, error: 'unknown_method' });
      }
    },
    unauthorized(req, res) {
      if (req.path.startsWith('/services/')) text(res, 403, 'invalid_token');
      else json(res, 200, { ok: false, error: 'invalid_auth' });
    },
  });
}

/** A generic HTTP API: 200 JSON on any path; `/status/<code>` answers that status. */
export function fakeHttp(name = 'HTTP'): FakeService {
  return new FakeService(name, {
    normal(req, res) {
      const status = /^\/status\/(\d{3})$/.exec(req.path);
      json(res, status ? Number(status[1]) : 200, { ok: true, path: req.path });
    },
    unauthorized(_req, res) {
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' });
      res.end(JSON.stringify({ error: 'unauthorized' }));
    },
  });
}

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
  const svc = await createServices({ database, keyProvider, passwordCost: TEST_SCRYPT, runner: settings });
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
        runner: { ...settings, ...runner },
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

/** The forms a secret value could take in text: as is, base64 (Basic auth), URL-encoded, hex. */
export function secretForms(value: string): string[] {
  return [
    value,
    Buffer.from(value).toString('base64').replace(/=+$/, ''),
    encodeURIComponent(value),
    Buffer.from(value).toString('hex'),
  ];
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
