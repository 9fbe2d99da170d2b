/**
 * Canary test: every secret field gets an unmistakable value, the secrets go through every path of the API
 * over real HTTP, and then every response body, redirect, cookie, log line, error message and database byte is
 * searched for those values — in plain text, base64 (at every byte alignment, standard and URL alphabets) and
 * hex. OAuth2 connections too: a real authorization server (oidc-provider) whose client secret and every access,
 * refresh and client-credentials token it issues are canaries.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isBase64Form, secretValueForms } from '@latchkey/core';
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServices } from '../app.js';
import { readConfig } from '../config.js';
import { LocalKeyProvider } from '../crypto/index.js';
import { type DatabaseHandle, openDatabase } from '../db/connect.js';
import type { Database } from '../db/schema.js';
import type { Services } from '../services.js';
import { closedPort } from '../testing/fake-services.js';
import {
  FAKE_DATA,
  openTestDatabase,
  ownerOf,
  TEST_SCRYPT,
  testBackend,
  testMasterKey,
} from '../testing/harness.js';
import {
  type HttpClient,
  type HttpTestServer,
  signUpOverHttp,
  startHttpServer,
  trpcError,
} from '../testing/http-harness.js';
import { type OAuth2TestEnv, startOAuth2TestEnv } from '../testing/oauth2-connections.js';

const runnerSettingsOf = (env: NodeJS.ProcessEnv) => readConfig(env).runnerSettings;

const backend = testBackend();

// ---------------------------------------------------------------------------------------------------------
// Canaries and the forms they could leak in

interface Canary {
  label: string;
  value: string;
  /** The value and its encodings, any of which must never appear. */
  forms: { kind: string; text: string }[];
}

const canaries: Canary[] = [];

/** The value and its encodings (core's `secretValueForms`), both base64 alphabets labelled `base64`. */
function formsOf(value: string): { kind: string; text: string }[] {
  return secretValueForms(value).map((form) => ({
    kind: isBase64Form(form) ? 'base64' : form.kind,
    text: form.text,
  }));
}

/** A new canary: letters and digits only, so it fits every credential format once framed (SG., xoxb-, webhook). */
function mint(label: string): string {
  const value = `canary${randomUUID().replaceAll('-', '')}`;
  canaries.push({ label, value, forms: formsOf(value) });
  return value;
}

/** The OAuth2 client's secret at the authorization server (every OAuth2 credential of this test holds it). */
const oauthClientSecret = mint('oauth2 client secret');
/** Labels of the canaries the authorization server issued as tokens, by kind. */
const tokenLabel = (kind: string) => `oauth2 ${kind}`;

/** Which canaries (and in which form) a text contains. */
function leaksIn(text: string): string[] {
  const found: string[] = [];
  for (const canary of canaries) {
    for (const form of canary.forms)
      if (text.includes(form.text)) found.push(`${canary.label} (${form.kind})`);
  }
  return found;
}

function leaksInBytes(bytes: Buffer, where: string): string[] {
  const found: string[] = [];
  for (const canary of canaries) {
    for (const form of canary.forms) {
      if (bytes.includes(Buffer.from(form.text, 'utf8')))
        found.push(`${canary.label} (${form.kind}) in ${where}`);
    }
  }
  return found;
}

/** Puts a canary where the fake value's secret part is, keeping the shape its credential type requires. */
function withCanary(fake: string, canary: string): string {
  if (fake.startsWith('SG.')) return `SG.fake-id-for-tests.${canary}`;
  if (fake.startsWith('xoxb-')) return `xoxb-${canary}`;
  if (fake.startsWith('https://hooks.slack.com/services/')) return fake.replace(/[^/]+$/, canary);
  return canary;
}

// ---------------------------------------------------------------------------------------------------------
// A stand-in for the services the integrations call, so the execution path runs without the network

interface FakeService {
  url: string;
  requests: { method: string; url: string; headers: IncomingMessage['headers'] }[];
  close(): Promise<void>;
}

async function startFakeService(): Promise<FakeService> {
  const requests: FakeService['requests'] = [];
  const server: Server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    req.resume();
    const url = req.url ?? '';
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.startsWith('/v3/'))
      return json(401, { errors: [{ message: 'The provided authorization grant is invalid' }] });
    if (url.startsWith('/api/')) return json(200, { ok: false, error: 'invalid_auth' });
    if (url.startsWith('/services/')) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      return res.end('no_service');
    }
    if (url.startsWith('/protected')) return json(401, { message: 'Unauthorized' });
    return json(404, { message: 'Not found' });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// ---------------------------------------------------------------------------------------------------------
// The database as text (rows, and bytea columns in every encoding Postgres offers)

async function databaseText(db: Kysely<Database>): Promise<{ table: string; text: string }[]> {
  const tables = await sql<{ name: string }>`
    select table_name as name from information_schema.tables
    where table_schema = current_schema() and table_type = 'BASE TABLE' order by table_name`.execute(db);
  const byteaColumns = await sql<{ table: string; column: string }>`
    select table_name as table, column_name as column from information_schema.columns
    where table_schema = current_schema() and data_type = 'bytea'`.execute(db);
  const out: { table: string; text: string }[] = [];
  for (const { name } of tables.rows) {
    const rows = await sql<{ row: string }>`select t::text as row from ${sql.table(name)} t`.execute(db);
    for (const { row } of rows.rows) out.push({ table: name, text: row });
  }
  for (const { table, column } of byteaColumns.rows) {
    const col = sql.ref(column);
    const rows = await sql<{ b64: string; hex: string; esc: string }>`
      select encode(${col}, 'base64') as b64, encode(${col}, 'hex') as hex, encode(${col}, 'escape') as esc
      from ${sql.table(table)}`.execute(db);
    for (const { b64, hex, esc } of rows.rows) {
      out.push({ table: `${table}.${column} (base64)`, text: b64.replace(/\s+/g, '') });
      out.push({ table: `${table}.${column} (hex)`, text: hex });
      out.push({ table: `${table}.${column} (escape)`, text: esc });
    }
  }
  return out;
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

// ---------------------------------------------------------------------------------------------------------

let tempDir: string | undefined;
let dataDir: string | undefined;
let database: DatabaseHandle;
let svc: Services;
let http: HttpTestServer;
let fake: FakeService;
let oauth: OAuth2TestEnv;
let closed = false;
/** Every error a call produced (message and wire shape), to be searched for canaries. */
const errors: string[] = [];
/** Every Location the OAuth2 callback redirected the browser to. */
const redirects: string[] = [];

async function failed(call: Promise<unknown>) {
  const error = await trpcError(call);
  errors.push(error.message, JSON.stringify(error.shape ?? null), String(error.stack));
  return error;
}

beforeAll(async () => {
  if (backend === 'pglite') {
    tempDir = await mkdtemp(path.join(tmpdir(), 'latchkey-canary-'));
    dataDir = path.join(tempDir, 'pgdata');
    database = await openDatabase({ kind: 'pglite', dataDir });
  } else {
    database = await openTestDatabase('postgres');
  }
  fake = await startFakeService();
  const refused = `http://127.0.0.1:${await closedPort()}`;
  const key = testMasterKey();
  svc = await createServices({
    database,
    keyProvider: new LocalKeyProvider({ active: key, all: [key] }),
    passwordCost: TEST_SCRYPT,
    runnerSettings: runnerSettingsOf({
      LATCHKEY_BASE_URL_SENDGRID: fake.url,
      LATCHKEY_BASE_URL_MAILGUN_US: fake.url,
      LATCHKEY_BASE_URL_MAILGUN_EU: refused,
      LATCHKEY_BASE_URL_SLACK: `${fake.url}/api`,
      LATCHKEY_BASE_URL_SLACK_HOOKS: fake.url,
      LATCHKEY_BASE_URL_TWILIO: fake.url,
      LATCHKEY_OUTBOUND_ALLOW: '127.0.0.1',
      LATCHKEY_OUTBOUND_TIMEOUT_MS: '5000',
    }),
  });
  http = await startHttpServer(svc);
  oauth = await startOAuth2TestEnv(svc, {
    http,
    authorizationServer: { clientSecret: oauthClientSecret, tokenValue: (kind) => mint(tokenLabel(kind)) },
  });
});

afterAll(async () => {
  await oauth?.close();
  if (!closed) {
    await http?.close();
    await database?.close();
  }
  await fake?.close();
  if (tempDir) await rm(tempDir, { recursive: true, force: true });
});

describe('canary secret values never leave the server or reach the disk in clear', () => {
  let owner: Awaited<ReturnType<typeof signUpOverHttp>>;
  let member: Awaited<ReturnType<typeof signUpOverHttp>>;
  let workspaceId: string;
  let secretFieldsOf: Map<string, { nodeType: string; secretFields: string[] }>;
  const ownerSecrets = new Map<string, string>(); // credential type → secret id
  const memberSecrets = new Map<string, string>();
  let workflowId: string;
  const nodeFor = new Map<string, string>(); // secret id → node id
  /** The canaries currently stored (after replacement), per secret id; the execution path must send these. */
  const current = new Map<string, string[]>();
  /** OAuth2 connections (name → secret id): their client secret and tokens are canaries. */
  const ownerConnections = new Map<string, string>();
  const memberConnections = new Map<string, string>();
  const connectionCount = () => ownerConnections.size + memberConnections.size;

  async function connectAs(person: { client: HttpClient }, name: string): Promise<string> {
    const { secretId, location } = await oauth.connect(person.client, workspaceId, name);
    redirects.push(location);
    expect(location).toBe(`/w/${workspaceId}/integrations?connected=${secretId}`);
    return secretId;
  }

  function canaryData(credentialType: string, tag: string): Record<string, string> {
    const fakeData = FAKE_DATA[credentialType];
    const description = secretFieldsOf.get(credentialType);
    if (!fakeData || !description) throw new Error(`No fake data for credential type ${credentialType}`);
    const data = { ...fakeData };
    for (const field of description.secretFields) {
      data[field] = withCanary(fakeData[field] ?? '', mint(`${tag} ${credentialType}.${field}`));
    }
    return data;
  }

  function canariesIn(data: Record<string, string>): string[] {
    return canaries.filter((c) => Object.values(data).some((v) => v.includes(c.value))).map((c) => c.value);
  }

  it('creates a secret of every credential type over HTTP, and reads them back by every query', async () => {
    owner = await signUpOverHttp(http, 'Olivia Owner');
    member = await signUpOverHttp(http, 'Mia Member');
    const team = await owner.client.trpc.workspaces.create.mutate({ name: 'Canary team', plan: 'team' });
    workspaceId = team.id;
    const invite = await owner.client.trpc.workspaces.invite.mutate({
      workspaceId,
      email: member.email,
      role: 'member',
    });
    await member.client.trpc.workspaces.acceptInvite.mutate({ token: invite.token });

    const integrations = await owner.client.trpc.integrations.list.query();
    secretFieldsOf = new Map(
      // OAuth2 connections are connected below (their values come from the authorization server).
      integrations.flatMap((i) =>
        i.credentialTypes
          .filter((c) => c.kind === 'static')
          .map((c) => [c.type, { nodeType: i.nodeType, secretFields: c.secretFields }] as const),
      ),
    );
    expect(secretFieldsOf.size).toBeGreaterThanOrEqual(8);
    // Every credential type the server offers is covered (a new one needs FAKE_DATA).
    expect([...secretFieldsOf.keys()].filter((type) => !FAKE_DATA[type])).toEqual([]);

    for (const type of secretFieldsOf.keys()) {
      for (const [who, person, into] of [
        ['owner', owner, ownerSecrets],
        ['member', member, memberSecrets],
      ] as const) {
        const data = canaryData(type, who);
        const meta = await person.client.trpc.secrets.create.mutate({
          workspaceId,
          credentialType: type,
          name: `${who} ${type}`,
          data,
        });
        into.set(type, meta.id);
        current.set(meta.id, canariesIn(data));
      }
    }

    // OAuth2 connections: authorization code with PKCE by each person, client credentials by the owner.
    ownerConnections.set('owner connection', await connectAs(owner, 'owner connection'));
    memberConnections.set('member connection', await connectAs(member, 'member connection'));
    const serviceAccount = await owner.client.trpc.secrets.create.mutate({
      workspaceId,
      credentialType: 'httpOAuth2ClientCredentials',
      name: 'owner service account',
      data: {
        clientId: oauth.as.clientId,
        clientSecret: oauthClientSecret,
        tokenUrl: oauth.as.tokenUrl,
        allowedDomains: '127.0.0.1',
      },
    });
    expect(serviceAccount.connection?.status).toBe('connected');
    ownerConnections.set('owner service account', serviceAccount.id);
    // The authorization server issued canaries: an access and a refresh token per consent, one client token.
    expect(canaries.filter((c) => c.label === tokenLabel('AccessToken'))).toHaveLength(2);
    expect(canaries.filter((c) => c.label === tokenLabel('RefreshToken'))).toHaveLength(2);
    expect(canaries.filter((c) => c.label === tokenLabel('ClientCredentials'))).toHaveLength(1);

    const all = await owner.client.trpc.secrets.list.query({ workspaceId, limit: 100 });
    expect(all.items).toHaveLength(secretFieldsOf.size * 2 + connectionCount());
    const own = await member.client.trpc.secrets.list.query({ workspaceId });
    expect(own.items).toHaveLength(secretFieldsOf.size + memberConnections.size);
    const connections = await owner.client.trpc.secrets.list.query({ workspaceId, kind: 'oauth2' });
    expect(connections.items.map((c) => c.connection?.status)).toEqual(
      Array(connectionCount()).fill('connected'),
    );
    const selectable = await member.client.trpc.secrets.selectable.query({
      workspaceId,
      nodeType: 'httpRequest',
    });
    expect(selectable.map((s) => s.id)).toEqual(
      expect.arrayContaining([...ownerConnections.values(), ...memberConnections.values()]),
    );
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await owner.client.trpc.secrets.list.query({
        workspaceId,
        limit: 3,
        ...(cursor ? { cursor } : {}),
      });
      cursor = page.nextCursor ?? undefined;
      pages += 1;
    } while (cursor);
    expect(pages).toBeGreaterThan(1);
    for (const filter of [
      { nodeType: 'slack' },
      { integrationId: 'sendgrid' },
      { search: 'owner' },
      { createdBy: member.user.id },
    ]) {
      expect(
        (await owner.client.trpc.secrets.list.query({ workspaceId, ...filter })).items.length,
      ).toBeGreaterThan(0);
    }
    for (const nodeType of new Set([...secretFieldsOf.values()].map((d) => d.nodeType))) {
      expect(
        (await member.client.trpc.secrets.selectable.query({ workspaceId, nodeType })).length,
      ).toBeGreaterThan(0);
    }
    expect((await owner.client.trpc.auth.me.query())?.workspaces).toHaveLength(2);
    expect(await owner.client.trpc.workspaces.members.query({ workspaceId })).toHaveLength(2);
  });

  it('uses them in workflow nodes and reports their usage', async () => {
    const workflow = await owner.client.trpc.workflows.create.mutate({ workspaceId, name: 'Canary flow' });
    workflowId = workflow.id;
    for (const [who, secrets] of [
      ['owner', ownerSecrets],
      ['member', memberSecrets],
    ] as const) {
      for (const [type, secretId] of secrets) {
        const nodeType = secretFieldsOf.get(type)?.nodeType as string;
        const node = await owner.client.trpc.workflows.addNode.mutate({
          workflowId,
          name: `${who} ${type} node`,
          nodeType,
          params: paramsFor(nodeType, fake.url),
        });
        await owner.client.trpc.workflows.updateNode.mutate({ workflowId, nodeId: node.id, secretId });
        nodeFor.set(secretId, node.id);
      }
    }
    // Each connection calls the stand-in, which refuses its token (401): a refresh (new canary tokens), a retry.
    for (const [name, secretId] of [...ownerConnections, ...memberConnections]) {
      const node = await owner.client.trpc.workflows.addNode.mutate({
        workflowId,
        name: `${name} node`,
        nodeType: 'httpRequest',
        params: paramsFor('httpRequest', fake.url),
      });
      await owner.client.trpc.workflows.updateNode.mutate({ workflowId, nodeId: node.id, secretId });
      nodeFor.set(secretId, node.id);
    }
    const got = await owner.client.trpc.workflows.get.query({ workflowId });
    expect(got.nodes.every((n) => n.status === 'ok')).toBe(true);
    expect(await owner.client.trpc.workflows.list.query({ workspaceId })).toHaveLength(1);
    for (const secretId of [...ownerSecrets.values(), ...ownerConnections.values()]) {
      const usage = await owner.client.trpc.secrets.usage.query({ workspaceId, secretId });
      expect(usage.map((u) => u.nodeId)).toEqual([nodeFor.get(secretId)]);
    }
    // Selection across node types is refused (the error names the node, never the value).
    const slackNode = nodeFor.get(ownerSecrets.get('slackBotToken') as string) as string;
    const refused = await failed(
      owner.client.trpc.workflows.updateNode.mutate({
        workflowId,
        nodeId: slackNode,
        secretId: ownerSecrets.get('sendgridApiKey') as string,
      }),
    );
    expect(refused.data?.code).toBe('BAD_REQUEST');
  });

  it('replaces every owner secret in place with another canary', async () => {
    for (const [type, secretId] of ownerSecrets) {
      const data = canaryData(type, 'replacement');
      const meta = await owner.client.trpc.secrets.replace.mutate({ workspaceId, secretId, data });
      expect(meta.id).toBe(secretId);
      current.set(secretId, canariesIn(data));
    }
    const type = 'sendgridApiKey';
    const secretId = memberSecrets.get(type) as string;
    const data = canaryData(type, 'member replacement');
    await member.client.trpc.secrets.replace.mutate({ workspaceId, secretId, data });
    current.set(secretId, canariesIn(data));

    // A connection's value is replaced by connecting it again: Reconnect, consent, callback (new canary tokens).
    const connectionId = ownerConnections.get('owner connection') as string;
    const { authorizationUrl } = await owner.client.trpc.secrets.reconnect.mutate({
      workspaceId,
      secretId: connectionId,
    });
    const callback = await oauth.consentAt(authorizationUrl);
    const landed = await oauth.open(owner.client, callback);
    const location = landed.headers.get('location') ?? '';
    redirects.push(location);
    expect(location).toBe(`/w/${workspaceId}/integrations?connected=${connectionId}`);
  });

  it('tests and runs them against a stand-in service, which receives the current values', async () => {
    for (const secretId of ownerSecrets.values()) {
      const outcome = await owner.client.trpc.secrets.test.mutate({ workspaceId, secretId });
      expect(outcome.ok).toBe(false);
      expect(outcome.message.length).toBeGreaterThan(0);
    }
    for (const type of ['sendgridApiKey', 'slackBotToken', 'mailgunApiKey']) {
      const outcome = await member.client.trpc.secrets.test.mutate({
        workspaceId,
        credentialType: type,
        data: canaryData(type, 'unsaved test'),
      });
      expect(outcome.ok).toBe(false);
    }
    for (const secretId of [...ownerConnections.values(), ...memberConnections.values()]) {
      const outcome = await owner.client.trpc.secrets.test.mutate({ workspaceId, secretId });
      expect(outcome.ok).toBe(false);
    }
    const unsaved = await member.client.trpc.secrets.test.mutate({
      workspaceId,
      credentialType: 'httpOAuth2AuthorizationCode',
      data: oauth.formData({ clientSecret: mint('unsaved oauth2 client secret') }),
    });
    expect(unsaved.ok).toBe(false);
    const issuedBefore = canaries.filter((c) => c.label.startsWith('oauth2 ')).length;
    const run = await owner.client.trpc.workflows.run.mutate({ workflowId });
    expect(run.ok).toBe(false);
    expect(run.nodes).toHaveLength(ownerSecrets.size + memberSecrets.size + connectionCount());
    expect(run.nodes.every((n) => !n.ok && typeof n.error === 'string')).toBe(true);
    // Every connection was refreshed after the stand-in's 401: the server now holds new canary tokens.
    expect(canaries.filter((c) => c.label.startsWith('oauth2 ')).length).toBeGreaterThanOrEqual(
      issuedBefore + connectionCount(),
    );

    // The stand-in saw the stored values (decryption works, replacement took effect), never a replaced one.
    const seen = JSON.stringify(fake.requests);
    for (const type of [
      'sendgridApiKey',
      'slackBotToken',
      'slackWebhook',
      'httpBearerToken',
      'httpQueryAuth',
    ]) {
      const values = current.get(ownerSecrets.get(type) as string) ?? [];
      expect(values.length, type).toBeGreaterThan(0);
      for (const value of values) expect(seen.includes(value), `${type} reached the service`).toBe(true);
    }
    const replacedAway = canaries.filter((c) => c.label.startsWith('owner ')).map((c) => c.value);
    expect(replacedAway.filter((value) => seen.includes(value))).toEqual([]);
    // The connections' access tokens (canaries) reached the stand-in: those are what the server holds and uses.
    const accessTokens = canaries
      .filter((c) => c.label === tokenLabel('AccessToken') || c.label === tokenLabel('ClientCredentials'))
      .map((c) => c.value);
    const sent = accessTokens.filter((value) => seen.includes(`Bearer ${value}`));
    expect(sent.length).toBeGreaterThanOrEqual(connectionCount() * 2);
  });

  it('refuses invalid canary-bearing values, duplicates and foreign workspaces without echoing them', async () => {
    const attempts: { credentialType: string; data: unknown; why: string }[] = [
      {
        credentialType: 'sendgridApiKey',
        data: { apiKey: `fake-${mint('no SG. prefix')}` },
        why: 'no SG. prefix',
      },
      { credentialType: 'slackBotToken', data: { token: `xoxp-${mint('wrong slack prefix')}` }, why: 'xoxp' },
      {
        credentialType: 'slackWebhook',
        data: { webhookUrl: `https://hooks.example.test/services/TFAKE/BFAKE/${mint('wrong webhook host')}` },
        why: 'webhook host',
      },
      {
        credentialType: 'httpBearerToken',
        data: { token: `${mint('over-long')}${'x'.repeat(9000)}` },
        why: 'too long',
      },
      {
        credentialType: 'httpHeaderAuth',
        data: { headerName: 'X-Api-Key', headerValue: `${mint('control char')}\u0001` },
        why: 'control',
      },
      {
        credentialType: 'httpBearerToken',
        data: { token: `${mint('newline')}\nX-Injected: 1` },
        why: 'newline',
      },
      {
        credentialType: 'httpBearerToken',
        data: { token: `with space ${mint('space in token')}` },
        why: 'pattern',
      },
      { credentialType: 'httpBearerToken', data: mint('data as a string'), why: 'not an object' },
      { credentialType: 'httpBearerToken', data: { token: [mint('in an array')] }, why: 'array' },
      {
        credentialType: 'httpBearerToken',
        data: { token: 'fake-token', extra: mint('unknown field') },
        why: 'extra field',
      },
      {
        credentialType: 'mailgunApiKey',
        data: { apiKey: mint('missing domain'), region: 'eu' },
        why: 'missing field',
      },
      {
        credentialType: 'mailgunApiKey',
        data: { apiKey: mint('bad region'), domain: 'mg.example.test', region: 'mars' },
        why: 'region',
      },
      {
        credentialType: 'httpBearerToken',
        data: { token: mint('too big overall'), pad: 'x'.repeat(70_000) },
        why: 'size',
      },
      { credentialType: 'noSuchCredentialType', data: { token: mint('unknown type') }, why: 'unknown type' },
    ];
    for (const attempt of attempts) {
      const error = await failed(
        member.client.trpc.secrets.create.mutate({
          workspaceId,
          credentialType: attempt.credentialType,
          name: `Invalid ${attempt.why}`,
          data: attempt.data,
        }),
      );
      expect(error.data?.code, attempt.why).toBe('BAD_REQUEST');
    }
    const badReplace = await failed(
      owner.client.trpc.secrets.replace.mutate({
        workspaceId,
        secretId: ownerSecrets.get('sendgridApiKey') as string,
        data: { apiKey: `SG.${mint('replace with bad shape')}` },
      }),
    );
    expect(badReplace.data?.code).toBe('BAD_REQUEST');

    const duplicate = await failed(
      owner.client.trpc.secrets.create.mutate({
        workspaceId,
        credentialType: 'sendgridApiKey',
        name: 'owner sendgridApiKey',
        data: canaryData('sendgridApiKey', 'duplicate'),
      }),
    );
    expect(duplicate.data?.code).toBe('CONFLICT');

    const foreign = await failed(
      member.client.trpc.secrets.create.mutate({
        workspaceId: owner.workspaceId,
        credentialType: 'slackBotToken',
        name: 'Into a foreign workspace',
        data: canaryData('slackBotToken', 'foreign workspace'),
      }),
    );
    expect(foreign.data?.code).toBe('NOT_FOUND');
    const forbidden = await failed(
      member.client.trpc.secrets.replace.mutate({
        workspaceId,
        secretId: ownerSecrets.get('slackBotToken') as string,
        data: canaryData('slackBotToken', 'forbidden replace'),
      }),
    );
    expect(forbidden.data?.code).toBe('FORBIDDEN');
    const outsideAllowed = await failed(
      owner.client.trpc.secrets.connect.mutate({
        workspaceId,
        credentialType: 'httpOAuth2AuthorizationCode',
        name: 'Token URL outside the allowed domains',
        data: oauth.formData({ clientSecret: mint('connect refused'), allowedDomains: 'api.example.test' }),
      }),
    );
    expect(outsideAllowed.data?.code).toBe('BAD_REQUEST');
    const refusedClient = await failed(
      owner.client.trpc.secrets.create.mutate({
        workspaceId,
        credentialType: 'httpOAuth2ClientCredentials',
        name: 'Client the service refuses',
        data: {
          clientId: oauth.as.clientId,
          clientSecret: mint('refused client secret'),
          tokenUrl: oauth.as.tokenUrl,
          allowedDomains: '127.0.0.1',
        },
      }),
    );
    expect(refusedClient.message).toContain('data.clientSecret');
    const replaceConnection = await failed(
      owner.client.trpc.secrets.replace.mutate({
        workspaceId,
        secretId: ownerConnections.get('owner connection') as string,
        data: oauth.formData({ clientSecret: mint('replace a connection') }),
      }),
    );
    expect(replaceConnection.data?.code).toBe('BAD_REQUEST');
    const foreignConnect = await failed(
      member.client.trpc.secrets.connect.mutate({
        workspaceId: owner.workspaceId,
        credentialType: 'httpOAuth2AuthorizationCode',
        name: 'Into a foreign workspace',
        data: oauth.formData({ clientSecret: mint('foreign connect') }),
      }),
    );
    expect(foreignConnect.data?.code).toBe('NOT_FOUND');
    const signedOut = await failed(
      http.client().trpc.secrets.create.mutate({
        workspaceId,
        credentialType: 'httpBearerToken',
        name: 'Signed out',
        data: canaryData('httpBearerToken', 'signed out'),
      }),
    );
    expect(signedOut.data?.code).toBe('UNAUTHORIZED');
  });

  it('removes the member with their secrets, deletes a secret, and writes the audit log', async () => {
    const preview = await owner.client.trpc.workspaces.removalPreview.query({
      workspaceId,
      userId: member.user.id,
    });
    expect(preview.secrets).toBe(memberSecrets.size + memberConnections.size);
    const removal = await owner.client.trpc.workspaces.removeMember.mutate({
      workspaceId,
      userId: member.user.id,
    });
    expect(removal.deletedSecrets).toBe(memberSecrets.size + memberConnections.size);
    expect(removal.affectedNodes).toHaveLength(memberSecrets.size + memberConnections.size);

    const deleted = await owner.client.trpc.secrets.delete.mutate({
      workspaceId,
      secretId: ownerSecrets.get('httpBasicAuth') as string,
    });
    expect(deleted.affectedNodes).toHaveLength(1);
    const deletedConnection = await owner.client.trpc.secrets.delete.mutate({
      workspaceId,
      secretId: ownerConnections.get('owner connection') as string,
    });
    expect(deletedConnection.affectedNodes).toHaveLength(1);
    const got = await owner.client.trpc.workflows.get.query({ workflowId });
    expect(got.nodes.filter((n) => n.status === 'needs-credential')).toHaveLength(
      memberSecrets.size + memberConnections.size + 2,
    );
    const afterRun = await owner.client.trpc.workflows.run.mutate({ workflowId });
    expect(afterRun.nodes.some((n) => n.error?.includes('was deleted'))).toBe(true);
    for (const name of ['member connection', 'owner connection']) {
      expect(afterRun.nodes.find((n) => n.nodeName === `${name} node`)?.error).toBe(
        `Node '${name} node' needs an HTTP Request credential: the one it used ('${name}') was deleted. Select another credential for this node.`,
      );
    }

    const actions: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await owner.client.trpc.audit.list.query({ workspaceId, ...(cursor ? { cursor } : {}) });
      actions.push(...page.items.map((e) => e.action));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(actions).toEqual(
      expect.arrayContaining([
        'secret.created',
        'secret.replaced',
        'secret.deleted',
        'member.removed',
        'secret.connected',
        'secret.reconnected',
        'secret.refreshed',
      ]),
    );
    expect((await owner.client.trpc.secrets.list.query({ workspaceId })).items).toHaveLength(
      ownerSecrets.size - 1 + ownerConnections.size - 1,
    );
  });

  it('the detector finds a canary in plain text, hex and base64 at any offset (self-check)', () => {
    const probe = mint('detector self-check');
    for (const prefix of ['', 'a', 'ab', 'abc']) {
      const text = `${prefix}{"token":"${probe}"}`;
      expect(leaksIn(text).some((l) => l.startsWith('detector self-check (plain)'))).toBe(true);
      expect(leaksIn(Buffer.from(text).toString('base64')).some((l) => l.includes('(base64)'))).toBe(true);
      expect(leaksIn(Buffer.from(text).toString('base64url')).some((l) => l.includes('(base64)'))).toBe(true);
      expect(leaksIn(Buffer.from(text).toString('hex')).some((l) => l.includes('(hex)'))).toBe(true);
    }
    canaries.splice(
      canaries.findIndex((c) => c.value === probe),
      1,
    );
  });

  it('never returned a canary in any response body', () => {
    expect(canaries.length).toBeGreaterThan(40);
    expect(http.recorded.responses.length).toBeGreaterThan(100);
    const leaks = http.recorded.responses.flatMap((body, i) =>
      leaksIn(body).map((l) => `response #${i}: ${l}`),
    );
    expect(leaks).toEqual([]);
  });

  it('never put a canary in a redirect or a cookie', () => {
    expect(redirects.length).toBeGreaterThanOrEqual(3);
    const leaks = [...redirects, ...http.recorded.setCookies].flatMap((text) => leaksIn(text));
    expect(leaks).toEqual([]);
  });

  it('never wrote a canary to a log line', () => {
    expect(http.recorded.logs.length).toBeGreaterThan(100);
    const leaks = http.recorded.logs.flatMap((line, i) => leaksIn(line).map((l) => `log line #${i}: ${l}`));
    expect(leaks).toEqual([]);
  });

  it('never put a canary in an error message', () => {
    expect(errors.length).toBeGreaterThan(15 * 3);
    const leaks = errors.flatMap((text) => leaksIn(text));
    expect(leaks).toEqual([]);
  });

  it('stores no canary in any database row, in clear, base64 or hex', async () => {
    const texts = await databaseText(ownerOf(database));
    // The scan sees the data: public fields and names are there in clear.
    expect(
      texts.some((t) => t.table === 'secrets' && t.text.includes(FAKE_DATA.mailgunApiKey?.domain as string)),
    ).toBe(true);
    expect(texts.some((t) => t.table.startsWith('secrets.ciphertext'))).toBe(true);
    const leaks = texts.flatMap(({ table, text }) => leaksIn(text).map((l) => `${table}: ${l}`));
    expect(leaks).toEqual([]);
  });

  it.runIf(backend === 'pglite')('stores no canary in any file of the PGlite data directory', async () => {
    await http.close();
    await database.close();
    closed = true;
    const files = await filesUnder(dataDir as string);
    expect(files.length).toBeGreaterThan(10);
    let sawOwner = false;
    const leaks: string[] = [];
    for (const file of files) {
      const bytes = await readFile(file);
      if (bytes.includes(Buffer.from(owner.email))) sawOwner = true;
      leaks.push(...leaksInBytes(bytes, path.relative(dataDir as string, file)));
    }
    // The scan reads the data: the owner's email is stored in clear in some file.
    expect(sawOwner).toBe(true);
    expect(leaks).toEqual([]);
  });
});

/** Complete parameters for a node of each type, aimed at the stand-in service. */
function paramsFor(nodeType: string, fakeUrl: string): Record<string, unknown> {
  switch (nodeType) {
    case 'httpRequest':
      return { method: 'GET', url: `${fakeUrl}/protected` };
    case 'sendgrid':
    case 'mailgun':
      return {
        from: 'team@example.test',
        to: 'someone@example.test',
        subject: 'Hello',
        text: 'A canary test',
      };
    case 'slack':
      return { channel: 'CFAKECHANNEL', text: 'A canary test' };
    default:
      return {};
  }
}
