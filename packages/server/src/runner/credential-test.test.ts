import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  closedPort,
  freshFakeData,
  PARAMS,
  type RunnerTestEnv,
  type RunnerTestPerson,
  runnerTestPerson,
  startRunnerTestEnv,
  workflowWith,
} from '../testing/fake-services.js';
import { clientFor, signedInUser } from '../testing/harness.js';

// `secrets.test` for saved secrets and unsaved form data, what it records (lastTest, lastUsedAt, one audit
// event), and the audit trail and lastUsedAt of every use of a secret in a run.

let env: RunnerTestEnv;
let person: Awaited<ReturnType<typeof signedInUser>>;
let workspaceId: string;
/** The person's shared helpers (testing/fake-services.ts). */
let you: RunnerTestPerson;

beforeAll(async () => {
  env = await startRunnerTestEnv();
  you = await runnerTestPerson(env, 'Credential Tester');
  ({ person, workspaceId } = you);
});
afterAll(() => env.close());
beforeEach(() => env.fakes.resetAll());

const secret: RunnerTestPerson['secret'] = (...args) => you.secret(...args);

async function meta(secretId: string) {
  const { items } = await person.caller.secrets.list({ workspaceId, limit: 100 });
  const found = items.find((s) => s.id === secretId);
  if (!found) throw new Error('secret not listed');
  return found;
}

async function auditFor(secretId: string, action: string) {
  const { items } = await person.caller.audit.list({ workspaceId });
  return items.filter((e) => e.targetId === secretId && e.action === action);
}

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('secrets.test on a saved secret', () => {
  it('SendGrid: GET /v3/scopes with the key; ok; the list then shows lastTest (lastUsedAt counts runs only); one secret.tested event', async () => {
    const data = freshFakeData().sendgridApiKey as { apiKey: string };
    const s = await secret('sendgridApiKey', data);
    expect(s.lastTest).toBeNull();
    expect(s.lastUsedAt).toBeNull();

    const before = Date.now();
    const outcome = await person.caller.secrets.test({ workspaceId, secretId: s.id });
    expect(outcome).toEqual({ ok: true, message: 'SendGrid accepted the API key.' });
    const req = env.fakes.sendgrid.only();
    expect([req.method, req.path, req.headers.authorization]).toEqual([
      'GET',
      '/v3/scopes',
      `Bearer ${data.apiKey}`,
    ]);

    const after = await meta(s.id);
    expect(after.lastTest).toEqual({
      ok: true,
      message: 'SendGrid accepted the API key.',
      testedAt: expect.any(String),
    });
    expect(Date.parse(after.lastTest?.testedAt as string)).toBeGreaterThanOrEqual(before - 1000);
    // "Last used" is a workflow run's use; a test shows under "Last test" only.
    expect(after.lastUsedAt).toBeNull();
    const events = await auditFor(s.id, 'secret.tested');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      actor: { id: person.user.id },
      targetType: 'secret',
      targetName: s.name,
      details: { ok: true },
    });
    expect(JSON.stringify(events)).not.toContain(data.apiKey);
  });

  it('SendGrid answering 401: ok:false "rejected by SendGrid", and the failed result is what the list shows', async () => {
    const s = await secret('sendgridApiKey', freshFakeData().sendgridApiKey as Record<string, string>);
    await person.caller.secrets.test({ workspaceId, secretId: s.id });
    env.fakes.sendgrid.respond({ kind: 'unauthorized' });
    const outcome = await person.caller.secrets.test({ workspaceId, secretId: s.id });
    expect(outcome).toEqual({
      ok: false,
      message: 'The credential was rejected by SendGrid (invalid, expired or revoked key).',
    });
    expect((await meta(s.id)).lastTest).toMatchObject({ ok: false, message: outcome.message });
    expect(await auditFor(s.id, 'secret.tested')).toHaveLength(2);
  });

  it('Mailgun: GET /v4/domains/{domain} at the region of the key (EU, then US), Basic api:<key>', async () => {
    for (const region of ['eu', 'us'] as const) {
      env.fakes.resetAll();
      const data: Record<string, string> = {
        ...(freshFakeData().mailgunApiKey as Record<string, string>),
        region,
      };
      const s = await secret('mailgunApiKey', data);
      expect(await person.caller.secrets.test({ workspaceId, secretId: s.id })).toEqual({
        ok: true,
        message: 'Mailgun accepted the API key for this domain.',
      });
      const [here, there] =
        region === 'eu'
          ? [env.fakes.mailgunEu, env.fakes.mailgunUs]
          : [env.fakes.mailgunUs, env.fakes.mailgunEu];
      const req = here.only();
      expect([req.method, req.path, req.headers.authorization]).toEqual([
        'GET',
        '/v4/domains/mg.example.test',
        basic('api', data.apiKey as string),
      ]);
      expect(there.requests).toEqual([]);
    }
  });

  it('Mailgun: a domain the region does not know → ok:false, saying so', async () => {
    const data = {
      ...(freshFakeData().mailgunApiKey as Record<string, string>),
      domain: 'unknown.example.test',
    };
    const s = await secret('mailgunApiKey', data);
    expect(await person.caller.secrets.test({ workspaceId, secretId: s.id })).toEqual({
      ok: false,
      message: 'Mailgun does not know this domain in this region.',
    });
  });

  it('Slack bot token: POST /api/auth.test; ok names the team; invalid_auth (HTTP 200) → rejected', async () => {
    const data = freshFakeData().slackBotToken as { token: string };
    const s = await secret('slackBotToken', data);
    expect(await person.caller.secrets.test({ workspaceId, secretId: s.id })).toEqual({
      ok: true,
      message: 'Slack accepted the token for workspace Fake Team.',
    });
    const req = env.fakes.slack.only();
    expect([req.method, req.path, req.headers.authorization]).toEqual([
      'POST',
      '/api/auth.test',
      `Bearer ${data.token}`,
    ]);
    env.fakes.slack.respond({ kind: 'unauthorized' });
    expect(await person.caller.secrets.test({ workspaceId, secretId: s.id })).toEqual({
      ok: false,
      message: 'The credential was rejected by Slack (invalid_auth).',
    });
  });

  it('a service that never answers → ok:false within the timeout', async () => {
    const quick = await env.servicesWith({ timeoutMs: 250 });
    const client = clientFor(quick);
    client.session.token = person.session.token;
    const s = await secret('sendgridApiKey', freshFakeData().sendgridApiKey as Record<string, string>);
    env.fakes.sendgrid.respond({ kind: 'timeout' });
    const outcome = await client.caller.secrets.test({ workspaceId, secretId: s.id });
    expect(outcome).toEqual({
      ok: false,
      message: `127.0.0.1:${env.fakes.sendgrid.port} did not answer within 250 ms.`,
    });
    expect((await meta(s.id)).lastTest?.ok).toBe(false);
  });

  it('an unreachable service: the system code comes back apart from the sentence, and the list keeps it for Details', async () => {
    const unreachable = await env.servicesWith({
      baseUrlOverrides: {
        ...env.fakes.baseUrlOverrides,
        LATCHKEY_BASE_URL_SENDGRID: `http://127.0.0.1:${await closedPort()}`,
      },
    });
    const client = clientFor(unreachable);
    client.session.token = person.session.token;
    const s = await secret('sendgridApiKey', freshFakeData().sendgridApiKey as Record<string, string>);
    const outcome = await client.caller.secrets.test({ workspaceId, secretId: s.id });
    expect(outcome).toMatchObject({ ok: false, code: 'ECONNREFUSED' });
    expect(outcome.message).not.toContain('ECONNREFUSED');
    expect((await meta(s.id)).lastTest).toMatchObject({
      ok: false,
      message: outcome.message,
      code: 'ECONNREFUSED',
    });
    // A later test that passes leaves no code behind.
    expect((await person.caller.secrets.test({ workspaceId, secretId: s.id })).ok).toBe(true);
    expect((await meta(s.id)).lastTest).not.toHaveProperty('code');
  });

  it('a credential type without a test request: ok:false with a clear message; nothing sent, nothing recorded', async () => {
    const s = await secret('slackWebhook', freshFakeData().slackWebhook as Record<string, string>);
    const outcome = await person.caller.secrets.test({ workspaceId, secretId: s.id });
    expect(outcome).toEqual({
      ok: false,
      message:
        'Slack incoming webhook credentials have no test request: use them in a workflow to check them',
    });
    for (const fake of env.fakes.all) expect(fake.requests).toEqual([]);
    const after = await meta(s.id);
    expect(after.lastTest).toBeNull();
    expect(after.lastUsedAt).toBeNull();
    expect(await auditFor(s.id, 'secret.tested')).toEqual([]);
  });

  it('is NOT_FOUND for someone outside the workspace, and sends nothing', async () => {
    const s = await secret('sendgridApiKey', freshFakeData().sendgridApiKey as Record<string, string>);
    const stranger = await signedInUser(env.svc, 'Stranger');
    await expect(stranger.caller.secrets.test({ workspaceId, secretId: s.id })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await expect(
      stranger.caller.secrets.test({
        workspaceId,
        credentialType: 'sendgridApiKey',
        data: freshFakeData().sendgridApiKey,
      }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(env.fakes.sendgrid.requests).toEqual([]);
  });
});

describe('secrets.test on unsaved form data', () => {
  it('tests the data as typed, without saving anything or writing an audit event', async () => {
    const data = freshFakeData().sendgridApiKey as { apiKey: string };
    const listed = (await person.caller.secrets.list({ workspaceId, limit: 100 })).items.length;
    const audited = (await person.caller.audit.list({ workspaceId })).items.length;
    const outcome = await person.caller.secrets.test({ workspaceId, credentialType: 'sendgridApiKey', data });
    expect(outcome).toEqual({ ok: true, message: 'SendGrid accepted the API key.' });
    expect(env.fakes.sendgrid.only().headers.authorization).toBe(`Bearer ${data.apiKey}`);
    expect((await person.caller.secrets.list({ workspaceId, limit: 100 })).items).toHaveLength(listed);
    expect((await person.caller.audit.list({ workspaceId })).items).toHaveLength(audited);
  });

  it('a rejected key → ok:false; a Mailgun key is tested at the region given in the form', async () => {
    env.fakes.sendgrid.respond({ kind: 'unauthorized' });
    expect(
      await person.caller.secrets.test({
        workspaceId,
        credentialType: 'sendgridApiKey',
        data: freshFakeData().sendgridApiKey,
      }),
    ).toMatchObject({ ok: false, message: expect.stringContaining('rejected by SendGrid') });
    const mg = { ...(freshFakeData().mailgunApiKey as Record<string, string>), region: 'us' };
    expect(
      await person.caller.secrets.test({ workspaceId, credentialType: 'mailgunApiKey', data: mg }),
    ).toMatchObject({ ok: true });
    expect(env.fakes.mailgunUs.only().path).toBe('/v4/domains/mg.example.test');
    expect(env.fakes.mailgunEu.requests).toEqual([]);
  });

  it('invalid data → BAD_REQUEST with field messages that do not echo the value; nothing sent', async () => {
    const value = 'not-a-sendgrid-key-value-xyz';
    const error = await person.caller.secrets
      .test({ workspaceId, credentialType: 'sendgridApiKey', data: { apiKey: value } })
      .then(
        () => null,
        (e: unknown) => e as { code: string; message: string },
      );
    expect(error?.code).toBe('BAD_REQUEST');
    expect(error?.message).toContain('data.apiKey');
    expect(error?.message).not.toContain(value);
    expect(env.fakes.sendgrid.requests).toEqual([]);
  });

  it('a credential type without a test request: ok:false with a clear message, nothing sent', async () => {
    const outcome = await person.caller.secrets.test({
      workspaceId,
      credentialType: 'httpBearerToken',
      data: freshFakeData().httpBearerToken,
    });
    expect(outcome).toEqual({
      ok: false,
      message: 'Bearer token credentials have no test request: use them in a workflow to check them',
    });
    for (const fake of env.fakes.all) expect(fake.requests).toEqual([]);
  });
});

describe('every use of a saved secret in a run', () => {
  it('writes one secret.used event per node use (actor, workflow, node) and moves lastUsedAt forward', async () => {
    const data = freshFakeData().sendgridApiKey as { apiKey: string };
    const s = await secret('sendgridApiKey', data, 'Shared key');
    const { workflowId, nodes } = await workflowWith(person.caller, workspaceId, 'Two emails', [
      { name: 'First email', nodeType: 'sendgrid', params: PARAMS.sendgrid, secretId: s.id },
      { name: 'Second email', nodeType: 'sendgrid', params: PARAMS.sendgrid, secretId: s.id },
    ]);
    await person.caller.workflows.run({ workflowId });
    const firstUse = (await meta(s.id)).lastUsedAt as string;
    expect(firstUse).not.toBeNull();

    const events = await auditFor(s.id, 'secret.used');
    expect(events).toHaveLength(2);
    expect(
      events.map((e) => e.details).sort((a, b) => String(a.nodeName).localeCompare(String(b.nodeName))),
    ).toEqual([
      { workflowId, workflowName: 'Two emails', nodeId: nodes[0]?.id, nodeName: 'First email' },
      { workflowId, workflowName: 'Two emails', nodeId: nodes[1]?.id, nodeName: 'Second email' },
    ]);
    for (const e of events)
      expect(e).toMatchObject({ actor: { id: person.user.id }, targetName: 'Shared key' });
    expect(JSON.stringify(events)).not.toContain(data.apiKey);

    await new Promise((resolve) => setTimeout(resolve, 15));
    await person.caller.workflows.run({ workflowId });
    expect(Date.parse((await meta(s.id)).lastUsedAt as string)).toBeGreaterThan(Date.parse(firstUse));
    expect(await auditFor(s.id, 'secret.used')).toHaveLength(4);
  });

  it('a use the remote rejects is still a use (audited, lastUsedAt), a node without a credential is not', async () => {
    env.fakes.slack.respond({ kind: 'unauthorized' });
    const s = await secret('slackBotToken', freshFakeData().slackBotToken as Record<string, string>);
    const { workflowId } = await workflowWith(person.caller, workspaceId, 'Rejected', [
      { name: 'Ping', nodeType: 'slack', params: PARAMS.slack, secretId: s.id },
      { name: 'Nothing selected', nodeType: 'slack', params: PARAMS.slack },
    ]);
    const newest = (await person.caller.audit.list({ workspaceId, limit: 1 })).items[0]?.id;
    const result = await person.caller.workflows.run({ workflowId });
    expect(result.nodes.map((n) => n.ok)).toEqual([false, false]);
    expect(await auditFor(s.id, 'secret.used')).toHaveLength(1);
    // The one use, and the run itself (who ran it, which nodes failed).
    const { items } = await person.caller.audit.list({ workspaceId });
    const since = items.slice(
      0,
      items.findIndex((e) => e.id === newest),
    );
    expect(since.map((e) => e.action)).toEqual(['workflow.run', 'secret.used']);
    expect(items[0]?.details).toMatchObject({ ok: false, nodeCount: 2, failedCount: 2 });
    expect((await meta(s.id)).lastUsedAt).not.toBeNull();
  });
});
