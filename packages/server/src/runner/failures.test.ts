import { inspect } from 'node:util';
import { secretValueForms } from '@latchkey/core';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Services } from '../services.js';
import {
  everythingStored,
  freshFakeData,
  PARAMS,
  type RunnerTestEnv,
  type RunnerTestPerson,
  runnerTestPerson,
  startRunnerTestEnv,
  workflowWith,
} from '../testing/fake-services.js';
import { ownerDb, type signedInUser } from '../testing/harness.js';

// Failures a user can act on, run through `workflows.run`: each names the node and says what to do, and
// none of them (nor results, audit log, stored rows or console output) contains a secret value, even when
// the remote service echoes the credential back in its body and headers.

let env: RunnerTestEnv;
let person: Awaited<ReturnType<typeof signedInUser>>;
let workspaceId: string;
/** The person's shared helpers (testing/fake-services.ts). */
let you: RunnerTestPerson;
const logged: string[] = [];

beforeAll(async () => {
  env = await startRunnerTestEnv();
  you = await runnerTestPerson(env, 'Failure Tester');
  ({ person, workspaceId } = you);
});
afterAll(() => env.close());
beforeEach(() => {
  env.fakes.resetAll();
  logged.length = 0;
  for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
      logged.push(args.map((a) => (typeof a === 'string' ? a : inspect(a, { depth: 8 }))).join(' '));
    });
  }
});
afterEach(() => {
  vi.restoreAllMocks();
});

const secret: RunnerTestPerson['secret'] = (...args) => you.secret(...args);

const runOne: RunnerTestPerson['runOne'] = (...args) => you.runOne(...args);

/** The same signed-in person, through other services (another runner configuration on the same database). */
const callerOn = (svc: Services) => you.callerOn(svc);

/** Fails if any form of any secret value appears in any of the texts. */
function expectNoSecretIn(texts: Record<string, string>, values: readonly string[]) {
  for (const value of values) {
    for (const { text: form } of secretValueForms(value)) {
      for (const [where, text] of Object.entries(texts)) {
        expect(
          text.includes(form),
          `${where} contains a form of a secret value (${form.slice(0, 12)}…)`,
        ).toBe(false);
      }
    }
  }
}

describe('a node whose credential cannot be used', () => {
  it('fails, naming the node and the deleted secret, when its secret was deleted; nothing is sent', async () => {
    const s = await secret(
      'sendgridApiKey',
      freshFakeData().sendgridApiKey as Record<string, string>,
      'Marketing key',
    );
    const { workflowId, nodes } = await workflowWith(person.caller, workspaceId, 'Welcome', [
      { name: 'Send welcome email', nodeType: 'sendgrid', params: PARAMS.sendgrid, secretId: s.id },
    ]);
    expect((await person.caller.workflows.run({ workflowId })).ok).toBe(true);
    env.fakes.resetAll();

    await person.caller.secrets.delete({ workspaceId, secretId: s.id });
    const result = await person.caller.workflows.run({ workflowId });
    expect(result.ok).toBe(false);
    expect(result.nodes).toEqual([
      {
        nodeId: nodes[0]?.id,
        nodeName: 'Send welcome email',
        ok: false,
        error:
          "Node 'Send welcome email' needs a SendGrid credential: the one it used ('Marketing key') was deleted. " +
          'Select another credential for this node.',
        // The node's card in the editor shows its name already.
        reason:
          "Needs a SendGrid credential: the one it used ('Marketing key') was deleted. " +
          'Select another credential for this node.',
        durationMs: expect.any(Number),
      },
    ]);
    expect(env.fakes.sendgrid.requests).toEqual([]);
  });

  it('fails, naming the node, when no credential is selected', async () => {
    const { node } = await runOne({
      name: 'Unconfigured email',
      nodeType: 'sendgrid',
      params: PARAMS.sendgrid,
    });
    expect(node).toMatchObject({
      ok: false,
      error:
        "Node 'Unconfigured email' needs a SendGrid credential: none is selected. Select one in the node editor.",
    });
    expect(env.fakes.sendgrid.requests).toEqual([]);
  });

  it('refuses a secret of a type the node does not accept (pointed at behind the API), sending nothing', async () => {
    const slackToken = await secret('slackBotToken', freshFakeData().slackBotToken as Record<string, string>);
    const { workflowId, nodes } = await workflowWith(person.caller, workspaceId, 'Tampered', [
      { name: 'Email with a Slack token', nodeType: 'sendgrid', params: PARAMS.sendgrid },
    ]);
    await ownerDb(env.svc)
      .updateTable('workflow_nodes')
      .set({ secret_id: slackToken.id })
      .where('id', '=', nodes[0]?.id as string)
      .execute();
    const result = await person.caller.workflows.run({ workflowId });
    expect(result.nodes[0]).toMatchObject({
      ok: false,
      error:
        "Node 'Email with a Slack token' needs a SendGrid credential: the selected credential is of another type. " +
        'Select a SendGrid credential.',
    });
    expect(env.fakes.sendgrid.requests).toEqual([]);
    expect(env.fakes.slack.requests).toEqual([]);
  });

  it('refuses a secret of another workspace (pointed at behind the API), sending nothing', async () => {
    const team = await person.caller.workspaces.create({ name: 'Other team', plan: 'team' });
    const foreign = await person.caller.secrets.create({
      workspaceId: team.id,
      credentialType: 'sendgridApiKey',
      name: 'Foreign key',
      data: freshFakeData().sendgridApiKey,
    });
    const { workflowId, nodes } = await workflowWith(person.caller, workspaceId, 'Cross-workspace', [
      { name: 'Borrowing email', nodeType: 'sendgrid', params: PARAMS.sendgrid },
    ]);
    await ownerDb(env.svc)
      .updateTable('workflow_nodes')
      .set({ secret_id: foreign.id })
      .where('id', '=', nodes[0]?.id as string)
      .execute();
    const result = await person.caller.workflows.run({ workflowId });
    expect(result.nodes[0]?.ok).toBe(false);
    expect(result.nodes[0]?.error).toMatch(/^Node 'Borrowing email' needs a SendGrid credential: /);
    expect(result.nodes[0]?.error).not.toContain('Foreign key');
    expect(env.fakes.sendgrid.requests).toEqual([]);
  });

  it('a stored value that no longer decrypts fails the node (and secrets.test) with what to do; nothing is sent', async () => {
    const victim = await secret('sendgridApiKey', freshFakeData().sendgridApiKey as Record<string, string>);
    const donor = await secret('sendgridApiKey', freshFakeData().sendgridApiKey as Record<string, string>);
    // A ciphertext copied from another row: bound to the other secret's id, so it must not decrypt here.
    const { ciphertext } = await ownerDb(env.svc)
      .selectFrom('secrets')
      .select('ciphertext')
      .where('id', '=', donor.id)
      .executeTakeFirstOrThrow();
    await ownerDb(env.svc).updateTable('secrets').set({ ciphertext }).where('id', '=', victim.id).execute();
    const undecryptable =
      'The stored credential could not be decrypted (it was altered, or encrypted with a key this server does not have). ' +
      'Replace its value, or select another credential.';
    const { node } = await runOne({
      name: 'Tampered email',
      nodeType: 'sendgrid',
      params: PARAMS.sendgrid,
      secretId: victim.id,
    });
    expect(node).toMatchObject({ ok: false, error: `Node 'Tampered email': ${undecryptable}` });
    expect(await person.caller.secrets.test({ workspaceId, secretId: victim.id })).toEqual({
      ok: false,
      message: undecryptable,
    });
    expect(env.fakes.sendgrid.requests).toEqual([]);
  });

  it('a failing node does not stop the nodes after it', async () => {
    const ok = await secret('slackBotToken', freshFakeData().slackBotToken as Record<string, string>);
    const { workflowId } = await workflowWith(person.caller, workspaceId, 'Mixed', [
      { name: 'No credential', nodeType: 'sendgrid', params: PARAMS.sendgrid },
      { name: 'Still posts', nodeType: 'slack', params: PARAMS.slack, secretId: ok.id },
    ]);
    const result = await person.caller.workflows.run({ workflowId });
    expect(result.ok).toBe(false);
    expect(result.nodes.map((n) => [n.nodeName, n.ok])).toEqual([
      ['No credential', false],
      ['Still posts', true],
    ]);
    expect(env.fakes.slack.requests).toHaveLength(1);
  });
});

describe('the remote service rejecting the credential', () => {
  it('SendGrid 401 → "The credential was rejected by SendGrid"', async () => {
    env.fakes.sendgrid.respond({ kind: 'unauthorized' });
    const s = await secret('sendgridApiKey', freshFakeData().sendgridApiKey as Record<string, string>);
    const { node } = await runOne({
      name: 'Send welcome email',
      nodeType: 'sendgrid',
      params: PARAMS.sendgrid,
      secretId: s.id,
    });
    expect(node).toMatchObject({
      ok: false,
      error: "Node 'Send welcome email': The credential was rejected by SendGrid.",
    });
    expect(env.fakes.sendgrid.requests).toHaveLength(1);
  });

  it('Mailgun 401 (plain-text Forbidden) → "The credential was rejected by Mailgun"', async () => {
    env.fakes.mailgunEu.respond({ kind: 'unauthorized' });
    const s = await secret('mailgunApiKey', freshFakeData().mailgunApiKey as Record<string, string>);
    const { node } = await runOne({
      name: 'Mail it',
      nodeType: 'mailgun',
      params: PARAMS.mailgun,
      secretId: s.id,
    });
    expect(node).toMatchObject({
      ok: false,
      error: "Node 'Mail it': The credential was rejected by Mailgun.",
    });
  });

  it('Slack HTTP 200 ok:false invalid_auth → "The credential was rejected by Slack (invalid_auth)"', async () => {
    env.fakes.slack.respond({ kind: 'unauthorized' });
    const s = await secret('slackBotToken', freshFakeData().slackBotToken as Record<string, string>);
    const { node } = await runOne({ name: 'Ping', nodeType: 'slack', params: PARAMS.slack, secretId: s.id });
    expect(node).toMatchObject({
      ok: false,
      error: "Node 'Ping': The credential was rejected by Slack (invalid_auth).",
    });
  });

  it('Slack webhook 403 invalid_token → "The credential was rejected by Slack (invalid_token)"', async () => {
    env.fakes.slack.respond({ kind: 'unauthorized' });
    const s = await secret('slackWebhook', freshFakeData().slackWebhook as Record<string, string>);
    const { node } = await runOne({ name: 'Hook', nodeType: 'slack', params: { text: 'x' }, secretId: s.id });
    expect(node).toMatchObject({
      ok: false,
      error: "Node 'Hook': The credential was rejected by Slack (invalid_token).",
    });
  });

  it('HTTP Request 401 → rejected by the host, with the status', async () => {
    env.fakes.http.respond({ kind: 'unauthorized' });
    const s = await secret('httpBearerToken', freshFakeData().httpBearerToken as Record<string, string>);
    const { node } = await runOne({
      name: 'Call API',
      nodeType: 'httpRequest',
      params: PARAMS.http(`${env.fakes.http.url}/x`),
      secretId: s.id,
    });
    expect(node).toMatchObject({
      ok: false,
      error: `Node 'Call API': The credential was rejected by 127.0.0.1:${env.fakes.http.port} (HTTP 401).`,
    });
  });
});

describe('a service that never answers', () => {
  it('fails the node after the configured timeout, naming the node, and the next node still runs', async () => {
    const quick = await env.servicesWith({ timeoutMs: 500 });
    env.fakes.sendgrid.respond({ kind: 'timeout' });
    const sg = await secret('sendgridApiKey', freshFakeData().sendgridApiKey as Record<string, string>);
    const sl = await secret('slackBotToken', freshFakeData().slackBotToken as Record<string, string>);
    const { workflowId } = await workflowWith(person.caller, workspaceId, 'Slow', [
      { name: 'Send welcome email', nodeType: 'sendgrid', params: PARAMS.sendgrid, secretId: sg.id },
      { name: 'Ping', nodeType: 'slack', params: PARAMS.slack, secretId: sl.id },
    ]);
    const started = Date.now();
    const result = await callerOn(quick).workflows.run({ workflowId });
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(result.nodes[0]).toMatchObject({
      ok: false,
      error: `Node 'Send welcome email': 127.0.0.1:${env.fakes.sendgrid.port} did not answer within 500 ms.`,
    });
    expect(result.nodes[0]?.durationMs).toBeGreaterThanOrEqual(450);
    expect(result.nodes[1]?.ok).toBe(true);
    expect(env.fakes.sendgrid.requests).toHaveLength(1);
  });
});

describe('a service that drops the connection mid-answer', () => {
  it('fails the node with a message naming the node and the host', async () => {
    env.fakes.http.respond({ kind: 'hangup' });
    const s = await secret('httpBearerToken', freshFakeData().httpBearerToken as Record<string, string>);
    const { node } = await runOne({
      name: 'Flaky API',
      nodeType: 'httpRequest',
      params: PARAMS.http(`${env.fakes.http.url}/flaky`),
      secretId: s.id,
    });
    expect(node).toMatchObject({
      ok: false,
      error: `Node 'Flaky API': 127.0.0.1:${env.fakes.http.port} closed the connection before the answer was complete.`,
    });
  });
});

describe('a service echoing the credential back (body and headers)', () => {
  type Case = {
    type: string;
    nodeType: string;
    params: () => Record<string, unknown>;
    status: number;
    extra?: (d: Record<string, string>) => string[];
  };
  const cases: Case[] = [
    { type: 'sendgridApiKey', nodeType: 'sendgrid', params: () => PARAMS.sendgrid, status: 400 },
    { type: 'sendgridApiKey', nodeType: 'sendgrid', params: () => PARAMS.sendgrid, status: 401 },
    {
      type: 'mailgunApiKey',
      nodeType: 'mailgun',
      params: () => PARAMS.mailgun,
      status: 400,
      extra: (d) => [Buffer.from(`api:${d.apiKey}`).toString('base64')],
    },
    { type: 'slackBotToken', nodeType: 'slack', params: () => PARAMS.slack, status: 200 },
    { type: 'slackWebhook', nodeType: 'slack', params: () => ({ text: 'hi' }), status: 404 },
    {
      type: 'httpBearerToken',
      nodeType: 'httpRequest',
      params: () => PARAMS.http(`${env.fakes.http.url}/echo`),
      status: 400,
    },
    {
      type: 'httpBasicAuth',
      nodeType: 'httpRequest',
      params: () => PARAMS.http(`${env.fakes.http.url}/echo`),
      status: 401,
      extra: (d) => [Buffer.from(`${d.username}:${d.password}`).toString('base64')],
    },
    {
      type: 'httpHeaderAuth',
      nodeType: 'httpRequest',
      params: () => PARAMS.http(`${env.fakes.http.url}/echo`),
      status: 500,
    },
    {
      type: 'httpQueryAuth',
      nodeType: 'httpRequest',
      params: () => PARAMS.http(`${env.fakes.http.url}/echo`),
      status: 200,
    },
  ];

  for (const c of cases) {
    it(`${c.type} (HTTP ${c.status}): the value reaches no message, result, audit entry, stored row or log line`, async () => {
      for (const fake of env.fakes.all) fake.respond({ kind: 'echo', status: c.status });
      const data = { ...(freshFakeData()[c.type] as Record<string, string>) };
      if (c.type === 'slackWebhook') {
        // Mixed case, like a real webhook token: the Slack plugin keeps only [a-z_] of an error body, so an
        // echoed token would show up as its lower-case letters, which no scrubbing of the summary can recognise.
        const letters = Array.from({ length: 24 }, (_, i) =>
          String.fromCharCode((i % 2 ? 65 : 97) + Math.floor(Math.random() * 26)),
        ).join('');
        data.webhookUrl = `https://hooks.slack.com/services/TFAKE/BFAKE/${letters}`;
      }
      const s = await secret(c.type, data);
      const secretFields = env.svc.registry.credentialType(c.type)?.definition;
      const described = env.svc.registry
        .describe()
        .flatMap((i) => i.credentialTypes)
        .find((t) => t.type === c.type);
      const values = Object.entries(data)
        .filter(([field]) => described?.secretFields.includes(field))
        .map(([, value]) => value);
      expect(secretFields).toBeDefined();
      expect(values.length).toBeGreaterThan(0);

      const { result, workflowId } = await runOne({
        name: `Echo ${c.type}`,
        nodeType: c.nodeType,
        params: c.params(),
        secretId: s.id,
      });
      // The fake really did echo the credential back: the runner saw it and had to keep it out.
      const received = env.fakes.all.flatMap((f) => f.requests);
      expect(received).toHaveLength(1);
      expect(result.nodes[0]?.ok).toBe(c.status === 200 && c.type === 'httpQueryAuth');

      const tested = env.svc.registry.credentialType(c.type)?.definition.test
        ? await person.caller.secrets.test({ workspaceId, secretId: s.id })
        : { ok: false, message: '' };
      const unsaved = await person.caller.secrets.test({ workspaceId, credentialType: c.type, data });
      const texts = {
        result: JSON.stringify(result),
        test: JSON.stringify(tested),
        unsavedTest: JSON.stringify(unsaved),
        audit: JSON.stringify(await person.caller.audit.list({ workspaceId })),
        secretsList: JSON.stringify(await person.caller.secrets.list({ workspaceId })),
        workflow: JSON.stringify(await person.caller.workflows.get({ workflowId })),
        stored: await everythingStored(env.svc),
        console: logged.join('\n'),
      };
      expectNoSecretIn(texts, [...values, ...(c.extra?.(data) ?? [])]);
      if (c.type === 'slackWebhook') {
        // The webhook URL is the secret; its last path segment is the part that is secret in practice.
        const token = new URL(data.webhookUrl as string).pathname.split('/').pop() as string;
        expectNoSecretIn(texts, [token, token.replace(/[^a-z_]/g, '')]);
      }
    });
  }
});

describe('result storage', () => {
  it('stores no response bodies: nothing the remote answered is kept in the database', async () => {
    env.fakes.http.respond({ kind: 'echo', status: 200 });
    const s = await secret('httpBearerToken', freshFakeData().httpBearerToken as Record<string, string>);
    const uses = sql<{ n: string }>`select count(*) as n from audit_events where action = 'secret.used'`;
    const before = await uses.execute(ownerDb(env.svc));
    await runOne({
      name: 'Quiet',
      nodeType: 'httpRequest',
      params: PARAMS.http(`${env.fakes.http.url}/echo`),
      secretId: s.id,
    });
    const after = await uses.execute(ownerDb(env.svc));
    // Exactly one secret.used event per use.
    expect(Number(after.rows[0]?.n) - Number(before.rows[0]?.n)).toBe(1);
    expect(await everythingStored(env.svc)).not.toContain('"received"');
  });
});
