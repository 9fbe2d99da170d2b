import type { KyselyPlugin } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  freshFakeData,
  PARAMS,
  type RunnerTestEnv,
  type RunnerTestPerson,
  runnerTestPerson,
  startRunnerTestEnv,
  workflowWith,
} from '../testing/fake-services.js';
import { FAKE_ALLOWED_DOMAINS, signedInUser } from '../testing/harness.js';
import { resolveNodeCredential } from './resolve-credential.js';

// Every action, run through `workflows.run`, against its local fake: what the fake received is asserted
// exactly (auth header, host, path, content type, body), and so is what the run reports.

let env: RunnerTestEnv;
let person: Awaited<ReturnType<typeof signedInUser>>;
let workspaceId: string;
/** The person's shared helpers (testing/fake-services.ts). */
let you: RunnerTestPerson;

beforeAll(async () => {
  env = await startRunnerTestEnv();
  you = await runnerTestPerson(env, 'Runner Tester');
  ({ person, workspaceId } = you);
});
afterAll(() => env.close());
beforeEach(() => env.fakes.resetAll());

const secret: RunnerTestPerson['secret'] = (...args) => you.secret(...args);

const runOne: RunnerTestPerson['runOne'] = (...args) => you.runOne(...args);

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** Every fake except the ones named received nothing. */
function othersUntouched(...touched: string[]) {
  for (const fake of env.fakes.all) {
    if (!touched.includes(fake.name))
      expect(fake.requests, `${fake.name} should not have been called`).toEqual([]);
  }
}

describe('SendGrid: send an email', () => {
  it('POSTs the mail/send JSON with "Authorization: Bearer SG.…" and reports 202 as success', async () => {
    const data = freshFakeData().sendgridApiKey as { apiKey: string };
    const s = await secret('sendgridApiKey', data);
    const { node, result } = await runOne({
      name: 'Send welcome email',
      nodeType: 'sendgrid',
      params: PARAMS.sendgrid,
      secretId: s.id,
    });

    expect(result.ok).toBe(true);
    expect(node).toMatchObject({
      ok: true,
      nodeName: 'Send welcome email',
      summary: 'Email to 2 recipients accepted by SendGrid (202)',
    });
    expect(typeof node?.durationMs).toBe('number');
    const req = env.fakes.sendgrid.only();
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/v3/mail/send');
    expect(req.headers.authorization).toBe(`Bearer ${data.apiKey}`);
    expect(req.headers['content-type']).toBe('application/json');
    expect(JSON.parse(req.body)).toEqual({
      personalizations: [{ to: [{ email: 'a@example.test' }, { email: 'b@example.test' }] }],
      from: { email: 'sender@example.test' },
      subject: 'Welcome',
      content: [{ type: 'text/plain', value: 'Hello there' }],
    });
    othersUntouched('SendGrid');
  });
});

describe('Mailgun: send a message', () => {
  for (const region of ['eu', 'us'] as const) {
    it(`POSTs the form to /v3/{domain}/messages at the ${region.toUpperCase()} host with Basic api:<key>`, async () => {
      const data: Record<string, string> = {
        ...(freshFakeData().mailgunApiKey as Record<string, string>),
        region,
      };
      const s = await secret('mailgunApiKey', data);
      const { node } = await runOne({
        name: `Mailgun ${region}`,
        nodeType: 'mailgun',
        params: PARAMS.mailgun,
        secretId: s.id,
      });

      expect(node).toMatchObject({
        ok: true,
        summary: `Message queued by Mailgun for mg.example.test (${region.toUpperCase()})`,
      });
      const here = region === 'eu' ? env.fakes.mailgunEu : env.fakes.mailgunUs;
      const req = here.only();
      expect(req.method).toBe('POST');
      expect(req.path).toBe('/v3/mg.example.test/messages');
      expect(req.headers.authorization).toBe(basic('api', data.apiKey as string));
      expect(req.headers['content-type']).toBe('application/x-www-form-urlencoded');
      expect(Object.fromEntries(new URLSearchParams(req.body))).toEqual({
        from: 'Team <team@mg.example.test>',
        to: 'someone@example.test',
        subject: 'Hi',
        text: 'Plain body',
      });
      othersUntouched(here.name);
    });
  }
});

describe('Slack: post a message', () => {
  it('with a bot token: chat.postMessage JSON (charset utf-8) with "Authorization: Bearer xoxb-…"', async () => {
    const data = freshFakeData().slackBotToken as { token: string };
    const s = await secret('slackBotToken', data);
    const { node } = await runOne({
      name: 'Tell the team',
      nodeType: 'slack',
      params: PARAMS.slack,
      secretId: s.id,
    });

    expect(node).toMatchObject({ ok: true, summary: 'Message posted to C0FAKECHAN' });
    const req = env.fakes.slack.only();
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/api/chat.postMessage');
    expect(req.headers.authorization).toBe(`Bearer ${data.token}`);
    expect(req.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(JSON.parse(req.body)).toEqual({ channel: 'C0FAKECHAN', text: 'Deploy finished ✓' });
    othersUntouched('Slack');
  });

  it('with an incoming webhook: POSTs {"text"} to the webhook path on the hooks host, with no Authorization', async () => {
    const data = freshFakeData().slackWebhook as { webhookUrl: string };
    const s = await secret('slackWebhook', data);
    const { node } = await runOne({
      name: 'Webhook post',
      nodeType: 'slack',
      params: { text: 'via hook' },
      secretId: s.id,
    });

    expect(node).toMatchObject({ ok: true, summary: 'Message posted through the Slack webhook' });
    const req = env.fakes.slack.only();
    expect(req.method).toBe('POST');
    expect(req.path).toBe(new URL(data.webhookUrl).pathname);
    expect(req.headers.authorization).toBeUndefined();
    expect(JSON.parse(req.body)).toEqual({ text: 'via hook' });
    othersUntouched('Slack');
  });
});

describe('HTTP Request', () => {
  const params = () =>
    PARAMS.http(`${env.fakes.http.url}/v1/items`, {
      method: 'POST',
      headers: 'X-Trace: trace-123\nContent-Type: application/json',
      query: 'page=2\nfilter=open items',
      body: '{"name":"widget"}',
    });

  function expectRequestShape() {
    const req = env.fakes.http.only();
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/v1/items');
    expect(req.headers['x-trace']).toBe('trace-123');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.body).toBe('{"name":"widget"}');
    return req;
  }

  it('sends method, headers, query and body with a Bearer token', async () => {
    const data = freshFakeData().httpBearerToken as { token: string };
    const s = await secret('httpBearerToken', data);
    const { node } = await runOne({
      name: 'Create item',
      nodeType: 'httpRequest',
      params: params(),
      secretId: s.id,
    });
    expect(node).toMatchObject({
      ok: true,
      summary: expect.stringMatching(/^HTTP 200 \(application\/json, \d+ bytes\)$/),
    });
    const req = expectRequestShape();
    expect(req.headers.authorization).toBe(`Bearer ${data.token}`);
    expect(req.query).toEqual({ page: '2', filter: 'open items' });
    othersUntouched('HTTP');
  });

  it('sends Basic auth as base64(user:password)', async () => {
    const data = freshFakeData().httpBasicAuth as { username: string; password: string };
    const s = await secret('httpBasicAuth', data);
    const { node } = await runOne({
      name: 'Basic call',
      nodeType: 'httpRequest',
      params: params(),
      secretId: s.id,
    });
    expect(node?.ok).toBe(true);
    expect(expectRequestShape().headers.authorization).toBe(basic(data.username, data.password));
  });

  it('sends header auth in the header the credential declares, and no Authorization', async () => {
    const data = {
      headerName: 'X-Declared-Key',
      headerValue: `fake-declared-${Math.random().toString(36).slice(2)}`,
      allowedDomains: FAKE_ALLOWED_DOMAINS,
    };
    const s = await secret('httpHeaderAuth', data);
    const { node } = await runOne({
      name: 'Header call',
      nodeType: 'httpRequest',
      params: params(),
      secretId: s.id,
    });
    expect(node?.ok).toBe(true);
    const req = expectRequestShape();
    expect(req.headers['x-declared-key']).toBe(data.headerValue);
    expect(req.headers.authorization).toBeUndefined();
  });

  it('sends query auth as the declared query parameter, next to the node’s own parameters', async () => {
    const data = freshFakeData().httpQueryAuth as { paramName: string; paramValue: string };
    const s = await secret('httpQueryAuth', data);
    const { node } = await runOne({
      name: 'Query call',
      nodeType: 'httpRequest',
      params: params(),
      secretId: s.id,
    });
    expect(node?.ok).toBe(true);
    const req = expectRequestShape();
    expect(req.query).toEqual({ page: '2', filter: 'open items', api_key: data.paramValue });
    expect(req.headers.authorization).toBeUndefined();
  });

  it('reports a non-2xx answer as a failure of the node, with the status', async () => {
    const s = await secret('httpBearerToken', freshFakeData().httpBearerToken as Record<string, string>);
    const { node } = await runOne({
      name: 'Missing thing',
      nodeType: 'httpRequest',
      params: PARAMS.http(`${env.fakes.http.url}/status/404`),
      secretId: s.id,
    });
    expect(node).toMatchObject({
      ok: false,
      error: "Node 'Missing thing': HTTP 404 (application/json, 32 bytes).",
    });
    expect(env.fakes.http.only().method).toBe('GET');
  });
});

describe('a workflow of several nodes', () => {
  it('runs the nodes in order, each with its own credential, and reports each', async () => {
    const d = freshFakeData();
    const sg = await secret('sendgridApiKey', d.sendgridApiKey as Record<string, string>);
    const sl = await secret('slackBotToken', d.slackBotToken as Record<string, string>);
    const hb = await secret('httpBearerToken', d.httpBearerToken as Record<string, string>);
    const { workflowId, nodes } = await workflowWith(person.caller, workspaceId, 'Onboarding', [
      { name: 'Email', nodeType: 'sendgrid', params: PARAMS.sendgrid, secretId: sg.id },
      { name: 'Ping', nodeType: 'slack', params: PARAMS.slack, secretId: sl.id },
      {
        name: 'Record',
        nodeType: 'httpRequest',
        params: PARAMS.http(`${env.fakes.http.url}/record`),
        secretId: hb.id,
      },
    ]);
    const result = await person.caller.workflows.run({ workflowId });
    expect(result.ok).toBe(true);
    expect(result.nodes.map((n) => [n.nodeId, n.nodeName, n.ok])).toEqual([
      [nodes[0]?.id, 'Email', true],
      [nodes[1]?.id, 'Ping', true],
      [nodes[2]?.id, 'Record', true],
    ]);
    expect(env.fakes.sendgrid.only().headers.authorization).toBe(`Bearer ${d.sendgridApiKey?.apiKey}`);
    expect(env.fakes.slack.only().headers.authorization).toBe(`Bearer ${d.slackBotToken?.token}`);
    expect(env.fakes.http.only().headers.authorization).toBe(`Bearer ${d.httpBearerToken?.token}`);
  });

  it('is not runnable by someone outside the workspace (NOT_FOUND), and nothing is sent', async () => {
    const s = await secret('sendgridApiKey', freshFakeData().sendgridApiKey as Record<string, string>);
    const { workflowId } = await workflowWith(person.caller, workspaceId, 'Private', [
      { name: 'Email', nodeType: 'sendgrid', params: PARAMS.sendgrid, secretId: s.id },
    ]);
    const stranger = await signedInUser(env.svc, 'Stranger');
    await expect(stranger.caller.workflows.run({ workflowId })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(env.fakes.sendgrid.requests).toEqual([]);
  });
});

describe('resolving a credential', () => {
  it('takes one query per resolve, decrypts afresh every time, and sees a replaced value at once', async () => {
    const data = freshFakeData().sendgridApiKey as { apiKey: string };
    const s = await secret('sendgridApiKey', data);
    const queries: string[] = [];
    const counting: KyselyPlugin = {
      transformQuery: (args) => {
        queries.push(args.node.kind);
        return args.node;
      },
      transformResult: async (args) => args.result,
    };
    const svc = { ...env.svc, db: env.svc.db.withPlugin(counting) };
    const integration = env.svc.registry.integrationForNodeType('sendgrid');
    if (!integration) throw new Error('no sendgrid integration');
    const node = { id: 'n', name: 'Send', nodeType: 'sendgrid', secretId: s.id, lostSecretName: null };

    const first = await resolveNodeCredential(svc, workspaceId, node, integration);
    expect(queries).toEqual(['RawNode']);
    expect(first.credential.fields().apiKey).toBe(data.apiKey);
    expect(JSON.stringify(first)).not.toContain(data.apiKey);

    const next = freshFakeData().sendgridApiKey as { apiKey: string };
    await person.caller.secrets.replace({ workspaceId, secretId: s.id, data: next });
    const second = await resolveNodeCredential(svc, workspaceId, node, integration);
    expect(queries).toEqual(['RawNode', 'RawNode']);
    expect(second.credential.fields().apiKey).toBe(next.apiKey);
    expect(second.credential).not.toBe(first.credential);
  });
});
