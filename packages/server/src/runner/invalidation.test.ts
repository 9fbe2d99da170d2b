import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createServices } from '../app.js';
import { type DatabaseHandle, openDatabase } from '../db/connect.js';
import type { Services } from '../services.js';
import {
  freshFakeData,
  PARAMS,
  type RunnerTestEnv,
  startRunnerTestEnv,
  workflowWith,
} from '../testing/fake-services.js';
import {
  clientFor,
  ensureTestLoginRole,
  TEST_SCRYPT,
  teamWorkspace,
  testBackend,
} from '../testing/harness.js';
import { type OAuth2TestEnv, startOAuth2TestEnv } from '../testing/oauth2-connections.js';

// Rule 7: a deleted secret (or a removed member's secrets) is invalid immediately, on every server instance.
// OAuth2 connections (connected, their tokens in their envelope) exactly as static secrets.

let env: RunnerTestEnv;
let oauth: OAuth2TestEnv;
beforeAll(async () => {
  env = await startRunnerTestEnv();
  oauth = await startOAuth2TestEnv(env.svc);
});
afterAll(async () => {
  await oauth?.close();
  await env?.close();
});
beforeEach(() => env.fakes.resetAll());

/** What the authorization server has seen so far: calls to its API, and token requests by grant. */
const providerSeen = () => ({ api: oauth.as.apiTokens.length, tokens: { ...oauth.as.tokenRequests } });

type Team = Awaited<ReturnType<typeof teamWorkspace>>;
type Person = Team['owner'];

/** The same signed-in person through other services (another server instance): sessions live in the database. */
function through(svc: Services, person: Person) {
  const client = clientFor(svc);
  client.session.token = person.session.token;
  return client.caller;
}

async function secretOf(
  person: Person,
  workspaceId: string,
  credentialType: string,
  name: string,
  data?: Record<string, string>,
) {
  const value = data ?? (freshFakeData()[credentialType] as Record<string, string>);
  const meta = await person.caller.secrets.create({ workspaceId, credentialType, name, data: value });
  return { id: meta.id, data: value };
}

describe('a member removed: the next run fails for exactly the nodes that used their secrets', () => {
  it('nodes using the member’s secrets fail naming node and lost secret; the others still succeed', async () => {
    const team = await teamWorkspace(env.svc);
    const { workspaceId, owner, admin, member } = team;
    const miaMail = await secretOf(member, workspaceId, 'sendgridApiKey', 'Mia SendGrid');
    const miaToken = await secretOf(member, workspaceId, 'httpBearerToken', 'Mia token');
    const ownerSlack = await secretOf(owner, workspaceId, 'slackBotToken', 'Olivia Slack');
    const adminMailgun = await secretOf(admin, workspaceId, 'mailgunApiKey', 'Adam Mailgun');
    const miaCrm = await oauth.connect(member, workspaceId, 'Mia CRM');
    const { workflowId, nodes } = await workflowWith(owner.caller, workspaceId, 'Onboarding', [
      { name: 'Send welcome email', nodeType: 'sendgrid', params: PARAMS.sendgrid, secretId: miaMail.id },
      { name: 'Tell the team', nodeType: 'slack', params: PARAMS.slack, secretId: ownerSlack.id },
      {
        name: 'Record signup',
        nodeType: 'httpRequest',
        params: PARAMS.http(`${env.fakes.http.url}/signups`),
        secretId: miaToken.id,
      },
      { name: 'Send receipt', nodeType: 'mailgun', params: PARAMS.mailgun, secretId: adminMailgun.id },
      { name: 'Send reminder', nodeType: 'sendgrid', params: PARAMS.sendgrid, secretId: miaMail.id },
      {
        name: 'Add CRM contact',
        nodeType: 'httpRequest',
        params: PARAMS.http(oauth.as.apiUrl),
        secretId: miaCrm.secretId,
      },
    ]);
    const before = await owner.caller.workflows.run({ workflowId });
    expect(before.nodes.map((n) => n.ok)).toEqual([true, true, true, true, true, true]);
    env.fakes.resetAll();

    const removal = await owner.caller.workspaces.removeMember({ workspaceId, userId: member.user.id });
    expect(removal.deletedSecrets).toBe(3);
    const seen = providerSeen();

    const after = await owner.caller.workflows.run({ workflowId });
    expect(after.ok).toBe(false);
    expect(after.nodes.map((n) => ({ nodeId: n.nodeId, ok: n.ok, error: n.error }))).toEqual([
      {
        nodeId: nodes[0]?.id,
        ok: false,
        error:
          "Node 'Send welcome email' needs a SendGrid credential: the one it used ('Mia SendGrid') was deleted. Select another credential for this node.",
      },
      { nodeId: nodes[1]?.id, ok: true, error: undefined },
      {
        nodeId: nodes[2]?.id,
        ok: false,
        error:
          "Node 'Record signup' needs an HTTP Request credential: the one it used ('Mia token') was deleted. Select another credential for this node.",
      },
      { nodeId: nodes[3]?.id, ok: true, error: undefined },
      {
        nodeId: nodes[4]?.id,
        ok: false,
        error:
          "Node 'Send reminder' needs a SendGrid credential: the one it used ('Mia SendGrid') was deleted. Select another credential for this node.",
      },
      {
        nodeId: nodes[5]?.id,
        ok: false,
        error:
          "Node 'Add CRM contact' needs an HTTP Request credential: the one it used ('Mia CRM') was deleted. Select another credential for this node.",
      },
    ]);
    // The failing nodes are exactly the ones the removal reported as affected.
    expect(
      after.nodes
        .filter((n) => !n.ok)
        .map((n) => n.nodeId)
        .sort(),
    ).toEqual(removal.affectedNodes.map((n) => n.nodeId).sort());
    // Nothing was sent for them; the others were sent as before.
    expect(env.fakes.sendgrid.requests).toEqual([]);
    expect(env.fakes.http.requests).toEqual([]);
    expect(env.fakes.slack.only().headers.authorization).toBe(`Bearer ${ownerSlack.data.token}`);
    expect(env.fakes.mailgunEu.requests).toHaveLength(1);
    // The connection's API got nothing, and no token was requested for it.
    expect(providerSeen()).toEqual(seen);
  });
});

describe('a deleted OAuth2 connection, like a deleted static secret', () => {
  it('fails every workflow that uses it on the very next run, naming the node and the connection', async () => {
    const { workspaceId, owner, member } = await teamWorkspace(env.svc);
    const ops = await oauth.connect(owner, workspaceId, 'Ops API');
    const ownerSlack = await secretOf(owner, workspaceId, 'slackBotToken', 'Olivia Slack');
    const first = await workflowWith(owner.caller, workspaceId, 'Nightly report', [
      {
        name: 'Fetch report',
        nodeType: 'httpRequest',
        params: PARAMS.http(oauth.as.apiUrl),
        secretId: ops.secretId,
      },
      { name: 'Tell the team', nodeType: 'slack', params: PARAMS.slack, secretId: ownerSlack.id },
    ]);
    const second = await workflowWith(member.caller, workspaceId, 'Hourly sync', [
      {
        name: 'Pull changes',
        nodeType: 'httpRequest',
        params: PARAMS.http(oauth.as.apiUrl),
        secretId: ops.secretId,
      },
    ]);
    for (const workflowId of [first.workflowId, second.workflowId]) {
      const run = await owner.caller.workflows.run({ workflowId });
      expect(run.nodes.map((n) => n.error ?? 'ok')).toEqual(run.nodes.map(() => 'ok'));
    }
    env.fakes.resetAll();

    const deleted = await owner.caller.secrets.delete({ workspaceId, secretId: ops.secretId });
    expect(deleted.affectedNodes.map((n) => n.nodeId).sort()).toEqual(
      [first.nodes[0]?.id, second.nodes[0]?.id].sort(),
    );
    const seen = providerSeen();
    const nightly = await owner.caller.workflows.run({ workflowId: first.workflowId });
    expect(nightly.nodes.map((n) => [n.nodeName, n.ok, n.error])).toEqual([
      [
        'Fetch report',
        false,
        "Node 'Fetch report' needs an HTTP Request credential: the one it used ('Ops API') was deleted. Select another credential for this node.",
      ],
      ['Tell the team', true, undefined],
    ]);
    const hourly = await member.caller.workflows.run({ workflowId: second.workflowId });
    expect(hourly.nodes.map((n) => [n.nodeName, n.ok, n.error])).toEqual([
      [
        'Pull changes',
        false,
        "Node 'Pull changes' needs an HTTP Request credential: the one it used ('Ops API') was deleted. Select another credential for this node.",
      ],
    ]);
    // Nothing went to the connection's service; the static secret's node was sent as before.
    expect(providerSeen()).toEqual(seen);
    expect(env.fakes.slack.requests).toHaveLength(1);
    // It is gone for Reconnect too, and its nodes cannot select it again.
    await expect(
      owner.caller.secrets.reconnect({ workspaceId, secretId: ops.secretId }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(
      owner.caller.workflows.updateNode({
        workflowId: first.workflowId,
        nodeId: first.nodes[0]?.id as string,
        secretId: ops.secretId,
      }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('rotation in place', () => {
  it('a replaced value is what the very next run sends (no plaintext kept between runs)', async () => {
    const { workspaceId, owner } = await teamWorkspace(env.svc);
    const key = await secretOf(owner, workspaceId, 'sendgridApiKey', 'Rotating');
    const { workflowId } = await workflowWith(owner.caller, workspaceId, 'Rotation', [
      { name: 'Send welcome email', nodeType: 'sendgrid', params: PARAMS.sendgrid, secretId: key.id },
    ]);
    await owner.caller.workflows.run({ workflowId });
    const next = freshFakeData().sendgridApiKey as { apiKey: string };
    await owner.caller.secrets.replace({ workspaceId, secretId: key.id, data: next });
    await owner.caller.workflows.run({ workflowId });
    expect(env.fakes.sendgrid.requests.map((r) => r.headers.authorization)).toEqual([
      `Bearer ${key.data.apiKey}`,
      `Bearer ${next.apiKey}`,
    ]);
  });
});

// Two server instances on one PostgreSQL schema. The PGlite project is one in-memory database in one process,
// so "another instance" has no meaning there.
describe.skipIf(testBackend() !== 'postgres')('two server instances on the same PostgreSQL database', () => {
  let second: DatabaseHandle;
  let instance2: Services;

  beforeAll(async () => {
    second = await openDatabase({
      kind: 'postgres',
      url: await ensureTestLoginRole(),
      ownerUrl: process.env.TEST_DATABASE_URL as string,
      schema: env.database.schema as string,
      poolSize: 2,
    });
    instance2 = await createServices({
      database: second,
      keyProvider: env.keyProvider,
      passwordCost: TEST_SCRYPT,
      runnerSettings: env.settings,
    });
  });
  afterAll(() => second?.close());

  it('uses a different connection pool for each instance (really two instances)', () => {
    expect(instance2.db).not.toBe(env.svc.db);
    expect(env.database.schema).toMatch(/^t_/);
  });

  it('a secret deleted through instance 1 makes the very next run through instance 2 fail, naming the node', async () => {
    const { workspaceId, owner } = await teamWorkspace(env.svc);
    const key = await secretOf(owner, workspaceId, 'sendgridApiKey', 'Welcome key');
    const crm = await oauth.connect(owner, workspaceId, 'CRM');
    const { workflowId, nodes } = await workflowWith(owner.caller, workspaceId, 'Welcome', [
      { name: 'Send welcome email', nodeType: 'sendgrid', params: PARAMS.sendgrid, secretId: key.id },
      {
        name: 'Add contact',
        nodeType: 'httpRequest',
        params: PARAMS.http(oauth.as.apiUrl),
        secretId: crm.secretId,
      },
    ]);
    const onTwo = through(instance2, owner);
    // Instance 2 has used (decrypted) the secret and the connection: anything it kept would show up below.
    expect((await onTwo.workflows.run({ workflowId })).ok).toBe(true);
    expect(env.fakes.sendgrid.requests).toHaveLength(1);

    await owner.caller.secrets.delete({ workspaceId, secretId: key.id });
    await owner.caller.secrets.delete({ workspaceId, secretId: crm.secretId });
    const seen = providerSeen();
    const result = await onTwo.workflows.run({ workflowId });
    expect(providerSeen()).toEqual(seen);
    expect(result.nodes).toEqual([
      {
        nodeId: nodes[0]?.id,
        nodeName: 'Send welcome email',
        ok: false,
        error:
          "Node 'Send welcome email' needs a SendGrid credential: the one it used ('Welcome key') was deleted. Select another credential for this node.",
        reason:
          "Needs a SendGrid credential: the one it used ('Welcome key') was deleted. Select another credential for this node.",
        durationMs: expect.any(Number),
      },
      {
        nodeId: nodes[1]?.id,
        nodeName: 'Add contact',
        ok: false,
        error:
          "Node 'Add contact' needs an HTTP Request credential: the one it used ('CRM') was deleted. Select another credential for this node.",
        reason:
          "Needs an HTTP Request credential: the one it used ('CRM') was deleted. Select another credential for this node.",
        durationMs: expect.any(Number),
      },
    ]);
    expect(env.fakes.sendgrid.requests).toHaveLength(1);
  });

  it('a secret replaced through instance 1 is sent with its new value by instance 2 on the next run', async () => {
    const { workspaceId, owner } = await teamWorkspace(env.svc);
    const key = await secretOf(owner, workspaceId, 'slackBotToken', 'Bot');
    const { workflowId } = await workflowWith(owner.caller, workspaceId, 'Ping', [
      { name: 'Ping', nodeType: 'slack', params: PARAMS.slack, secretId: key.id },
    ]);
    const onTwo = through(instance2, owner);
    await onTwo.workflows.run({ workflowId });
    const next = freshFakeData().slackBotToken as { token: string };
    await owner.caller.secrets.replace({ workspaceId, secretId: key.id, data: next });
    await onTwo.workflows.run({ workflowId });
    expect(env.fakes.slack.requests.map((r) => r.headers.authorization)).toEqual([
      `Bearer ${key.data.token}`,
      `Bearer ${next.token}`,
    ]);
  });

  it('a member removed through instance 1 makes the next run through instance 2 fail for their nodes only', async () => {
    const { workspaceId, owner, member } = await teamWorkspace(env.svc);
    const miaKey = await secretOf(member, workspaceId, 'mailgunApiKey', 'Mia Mailgun');
    const ownerKey = await secretOf(owner, workspaceId, 'sendgridApiKey', 'Olivia SendGrid');
    const { workflowId } = await workflowWith(owner.caller, workspaceId, 'Newsletter', [
      { name: 'Send newsletter', nodeType: 'mailgun', params: PARAMS.mailgun, secretId: miaKey.id },
      { name: 'Send copy', nodeType: 'sendgrid', params: PARAMS.sendgrid, secretId: ownerKey.id },
    ]);
    const onTwo = through(instance2, owner);
    expect((await onTwo.workflows.run({ workflowId })).ok).toBe(true);
    env.fakes.resetAll();

    await owner.caller.workspaces.removeMember({ workspaceId, userId: member.user.id });
    const result = await onTwo.workflows.run({ workflowId });
    expect(result.nodes.map((n) => [n.nodeName, n.ok, n.error])).toEqual([
      [
        'Send newsletter',
        false,
        "Node 'Send newsletter' needs a Mailgun credential: the one it used ('Mia Mailgun') was deleted. Select another credential for this node.",
      ],
      ['Send copy', true, undefined],
    ]);
    expect(env.fakes.mailgunEu.requests).toEqual([]);
    expect(env.fakes.sendgrid.requests).toHaveLength(1);
    // The removed member cannot run anything through either instance.
    await expect(through(instance2, member).workflows.run({ workflowId })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });
});
