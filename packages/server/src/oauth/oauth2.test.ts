import { type FakeSlackOAuth, startFakeSlackOAuth } from '@latchkey/integration-slack/fake';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServices } from '../app.js';
import { openDatabase } from '../db/connect.js';
import { reencryptSecrets } from '../keys/rotation.js';
import { addDataKeyVersion } from '../keys/workspace-keys.js';
import { parseOutboundAllow } from '../runner/outbound-guard.js';
import { resolveSecretCredential } from '../runner/resolve-credential.js';
import type { TestAuthorizationServer } from '../testing/authorization-server.js';
import {
  createTestApp,
  ensureTestLoginRole,
  OAUTH2_CREDENTIAL_TYPES,
  TEST_SCRYPT,
  type TestApp,
  testBackend,
} from '../testing/harness.js';
import {
  type HttpClient,
  type HttpTestServer,
  signUpOverHttp,
  startHttpServer,
  trpcError,
} from '../testing/http-harness.js';
import { type OAuth2TestEnv, startOAuth2TestEnv } from '../testing/oauth2-connections.js';

// OAuth2 connections end to end, against a real authorization server (oidc-provider) on loopback: Connect, the
// consent, the callback, runs that use the connection, refresh before expiry and after a 401, single flight,
// rotation, revocation ("needs reconnect") and Reconnect, and client credentials.

const backend = testBackend();
let app: TestApp;
let http: HttpTestServer;
let as: TestAuthorizationServer;
let env: OAuth2TestEnv;

beforeAll(async () => {
  app = await createTestApp();
  app.svc.runnerSettings = { ...app.svc.runnerSettings, policy: parseOutboundAllow('127.0.0.1') };
  http = await startHttpServer(app.svc);
  env = await startOAuth2TestEnv(app.svc, { http });
  as = env.as;
});
afterAll(async () => {
  await env?.close();
  await http?.close();
  await app?.close();
});

/** Another server instance on the same PostgreSQL schema: its own pool, key cache and single-flight map. */
async function secondInstance() {
  const schema = (app.database as { schema?: string }).schema;
  if (!schema) throw new Error('the test database has no schema');
  const database = await openDatabase({
    kind: 'postgres',
    url: await ensureTestLoginRole(),
    schema,
    poolSize: 4,
  });
  const svc = await createServices({
    database,
    keyProvider: app.svc.keys.provider,
    passwordCost: TEST_SCRYPT,
    runnerSettings: app.svc.runnerSettings,
    publicUrl: http.url,
  });
  const server = await startHttpServer(svc);
  return {
    http: server,
    async close() {
      await server.close();
      await database.close();
    },
  };
}

/** Form data of an authorization-code connection to the test authorization server. */
const formData = (overrides: Record<string, string> = {}) => env.formData(overrides);
const consentAt = (authorizationUrl: string) => env.consentAt(authorizationUrl);
/** Connect → consent → callback (testing/oauth2-connections.ts); where the browser lands, and the new id. */
const connect = (client: HttpClient, workspaceId: string, name: string) =>
  env.connect(client, workspaceId, name);

async function nodeUsing(client: HttpClient, workspaceId: string, secretId: string, name = 'Call the API') {
  const workflow = await client.trpc.workflows.create.mutate({ workspaceId, name: `${name} flow` });
  const node = await client.trpc.workflows.addNode.mutate({
    workflowId: workflow.id,
    name,
    nodeType: 'httpRequest',
    params: { method: 'GET', url: as.apiUrl },
  });
  await client.trpc.workflows.updateNode.mutate({ workflowId: workflow.id, nodeId: node.id, secretId });
  return workflow.id;
}

async function connectionOf(client: HttpClient, workspaceId: string, secretId: string) {
  const { items } = await client.trpc.secrets.list.query({ workspaceId, kind: 'oauth2' });
  return items.find((item) => item.id === secretId);
}

it('covers every OAuth2 credential type the server offers (a new one must be added here)', () => {
  expect([...OAUTH2_CREDENTIAL_TYPES].sort()).toEqual([
    'httpOAuth2AuthorizationCode',
    'httpOAuth2ClientCredentials',
    'slackOAuth',
  ]);
});

describe('connecting (authorization code with PKCE)', () => {
  it('connects through the consent screen, lists the connection, and a node uses it', async () => {
    const { client, workspaceId } = await signUpOverHttp(http);
    const { secretId, authorizationUrl, location } = await connect(client, workspaceId, 'Example API');
    const asked = new URL(authorizationUrl).searchParams;
    expect(asked.get('code_challenge_method')).toBe('S256');
    expect(asked.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(asked.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(asked.get('redirect_uri')).toBe(`${http.url}/oauth/callback`);
    expect(location).toBe(`/w/${workspaceId}/integrations?connected=${secretId}`);

    const listed = await connectionOf(client, workspaceId, secretId);
    expect(listed?.kind).toBe('oauth2');
    expect(listed?.connection).toMatchObject({ status: 'connected', scopes: 'read' });
    expect(Date.parse(listed?.connection?.expiresAt ?? '')).toBeGreaterThan(Date.now());
    // Its envelope holds its tokens: replacing the value is refused (Reconnect is the way), and changes nothing.
    const refused = await trpcError(
      client.trpc.secrets.replace.mutate({
        workspaceId,
        secretId,
        data: formData({ clientSecret: 'fake-other' }),
      }),
    );
    expect(refused.message).toContain('secretId: This is an OAuth2 connection');
    const statics = await client.trpc.secrets.list.query({ workspaceId, kind: 'static' });
    expect(statics.items.map((s) => s.id)).not.toContain(secretId);

    const workflowId = await nodeUsing(client, workspaceId, secretId);
    const run = await client.trpc.workflows.run.mutate({ workflowId });
    expect(run.nodes[0]).toMatchObject({ ok: true });

    // The tokens never left the server: not in any answer it gave.
    const held = await resolveSecretCredential(app.svc, workspaceId, {
      id: secretId,
      nodeType: 'httpRequest',
    });
    const tokens = held?.credential.secretValues ?? [];
    expect(tokens.length).toBeGreaterThanOrEqual(3); // client secret, access token, refresh token
    for (const body of http.recorded.responses) for (const token of tokens) expect(body).not.toContain(token);

    const audit = await client.trpc.audit.list.query({ workspaceId });
    const connected = audit.items.find((e) => e.action === 'secret.connected');
    expect(connected?.targetId).toBe(secretId);
    expect(JSON.stringify(connected)).not.toContain(tokens[1] ?? 'no token');
  });

  it('uses a state once: the same callback again is refused and changes nothing', async () => {
    const { client, workspaceId } = await signUpOverHttp(http);
    const { callback, secretId } = await connect(client, workspaceId, 'Once');
    const again = await client.fetch(callback.slice(http.url.length), { redirect: 'manual' });
    expect(again.headers.get('location')).toBe(`/?oauthError=invalid_state`);
    expect((await connectionOf(client, workspaceId, secretId))?.connection?.status).toBe('connected');
  });

  it("refuses another user's callback, and a signed-out one", async () => {
    const owner = await signUpOverHttp(http);
    const started = await owner.client.trpc.secrets.connect.mutate({
      workspaceId: owner.workspaceId,
      credentialType: 'httpOAuth2AuthorizationCode',
      name: 'Not yours',
      data: formData(),
    });
    const callback = (await consentAt(started.authorizationUrl)).slice(http.url.length);
    const stranger = await signUpOverHttp(http);
    const answer = await stranger.client.fetch(callback, { redirect: 'manual' });
    expect(answer.headers.get('location')).toBe(`/w/${owner.workspaceId}/integrations?oauthError=wrong_user`);
    // The state is spent: the owner's own use of it no longer works either, and nothing was connected.
    const late = await owner.client.fetch(callback, { redirect: 'manual' });
    expect(late.headers.get('location')).toBe('/?oauthError=invalid_state');
    expect((await connectionOf(owner.client, owner.workspaceId, started.secretId))?.connection?.status).toBe(
      'pending',
    );

    const again = await owner.client.trpc.secrets.connect.mutate({
      workspaceId: owner.workspaceId,
      credentialType: 'httpOAuth2AuthorizationCode',
      name: 'Signed out',
      data: formData(),
    });
    const signedOut = await http.fetch((await consentAt(again.authorizationUrl)).slice(http.url.length), {
      redirect: 'manual',
    });
    expect(signedOut.headers.get('location')).toBe(
      `/w/${owner.workspaceId}/integrations?oauthError=signed_out`,
    );
  });

  it('a refused consent (access_denied) leaves nothing half-saved', async () => {
    const { client, workspaceId } = await signUpOverHttp(http);
    as.denyNextConsent();
    const { secretId, location } = await connect(client, workspaceId, 'Denied');
    expect(location).toBe(`/w/${workspaceId}/integrations?oauthError=access_denied`);
    expect(await connectionOf(client, workspaceId, secretId)).toBeUndefined();
  });

  it('refuses a token URL outside the allowed domains, naming the field, and saves nothing', async () => {
    const { client, workspaceId } = await signUpOverHttp(http);
    const error = await trpcError(
      client.trpc.secrets.connect.mutate({
        workspaceId,
        credentialType: 'httpOAuth2AuthorizationCode',
        name: 'Elsewhere',
        data: formData({ allowedDomains: 'api.example.test' }),
      }),
    );
    expect(error.data?.code).toBe('BAD_REQUEST');
    expect(error.message).toContain('data.allowedDomains');
    expect((await client.trpc.secrets.list.query({ workspaceId })).items).toEqual([]);
  });

  it('an authorization-code type cannot be saved from form data alone', async () => {
    const { client, workspaceId } = await signUpOverHttp(http);
    const error = await trpcError(
      client.trpc.secrets.create.mutate({
        workspaceId,
        credentialType: 'httpOAuth2AuthorizationCode',
        name: 'Pasted',
        data: formData(),
      }),
    );
    expect(error.message).toContain('credentialType');
  });
});

describe('at run time', () => {
  it('renews a token that expires within the skew before the call, and the audit log says so', async () => {
    const { client, workspaceId } = await signUpOverHttp(http);
    as.setAccessTokenTtl(30); // below the 60-second skew: renewed before every use
    try {
      const { secretId } = await connect(client, workspaceId, 'Short-lived');
      const workflowId = await nodeUsing(client, workspaceId, secretId);
      const before = as.tokenRequests.refresh_token ?? 0;
      const run = await client.trpc.workflows.run.mutate({ workflowId });
      expect(run.nodes[0]).toMatchObject({ ok: true });
      expect((as.tokenRequests.refresh_token ?? 0) - before).toBe(1);
      const audit = await client.trpc.audit.list.query({ workspaceId });
      const refreshed = audit.items.filter((e) => e.action === 'secret.refreshed');
      expect(refreshed).toHaveLength(1);
      expect(Object.keys(refreshed[0]?.details ?? {}).sort()).toEqual([
        'credentialType',
        'expiresAt',
        'scopes',
      ]);
    } finally {
      as.setAccessTokenTtl(3600);
    }
  });

  it('single flight: 20 concurrent runs share one refresh of a rotating refresh token, and all succeed', async () => {
    const { client, workspaceId } = await signUpOverHttp(http);
    as.setAccessTokenTtl(30); // the first token is due for renewal; the renewed one is not
    const { secretId } = await connect(client, workspaceId, 'Busy');
    as.setAccessTokenTtl(3600);
    const workflowId = await nodeUsing(client, workspaceId, secretId);
    const before = as.tokenRequests.refresh_token ?? 0;
    const runs = await Promise.all(
      Array.from({ length: 20 }, () => client.trpc.workflows.run.mutate({ workflowId })),
    );
    expect(runs.map((r) => r.nodes[0]?.ok)).toEqual(Array(20).fill(true));
    // One refresh: a second use of the rotated refresh token would have revoked the grant and failed the runs.
    expect((as.tokenRequests.refresh_token ?? 0) - before).toBe(1);
    expect((await connectionOf(client, workspaceId, secretId))?.connection?.status).toBe('connected');
  });

  it.skipIf(backend !== 'postgres')(
    'single flight across two server instances on PostgreSQL: one refresh, every run succeeds',
    async () => {
      const second = await secondInstance();
      try {
        const { client, workspaceId } = await signUpOverHttp(http);
        as.setAccessTokenTtl(30);
        const { secretId } = await connect(client, workspaceId, 'Shared');
        as.setAccessTokenTtl(3600);
        const workflowId = await nodeUsing(client, workspaceId, secretId);
        const other = second.http.client();
        other.setSessionToken(client.sessionToken());
        const before = as.tokenRequests.refresh_token ?? 0;
        const runs = await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            (i % 2 ? other : client).trpc.workflows.run.mutate({ workflowId }),
          ),
        );
        expect(runs.map((r) => r.nodes[0]?.error ?? 'ok')).toEqual(Array(20).fill('ok'));
        expect((as.tokenRequests.refresh_token ?? 0) - before).toBe(1);
        expect((await connectionOf(client, workspaceId, secretId))?.connection?.status).toBe('connected');
      } finally {
        await second.close();
      }
    },
  );

  it('refreshes once after a 401 and sends the request again', async () => {
    const { client, workspaceId } = await signUpOverHttp(http);
    const { secretId } = await connect(client, workspaceId, 'Rejected');
    const workflowId = await nodeUsing(client, workspaceId, secretId);
    const held = await resolveSecretCredential(app.svc, workspaceId, {
      id: secretId,
      nodeType: 'httpRequest',
    });
    await as.revokeAccessToken(held?.credential.fields().$accessToken ?? '');
    const before = as.tokenRequests.refresh_token ?? 0;
    const run = await client.trpc.workflows.run.mutate({ workflowId });
    expect(run.nodes[0], run.nodes[0]?.error).toMatchObject({ ok: true });
    expect((as.tokenRequests.refresh_token ?? 0) - before).toBe(1);
  });

  it('a transient failure of the token endpoint fails the run without marking the connection', async () => {
    const { client, workspaceId } = await signUpOverHttp(http);
    as.setAccessTokenTtl(30);
    try {
      const { secretId } = await connect(client, workspaceId, 'Flaky');
      const workflowId = await nodeUsing(client, workspaceId, secretId, 'Fetch report');
      as.failNextTokenRequests(1);
      const failed = await client.trpc.workflows.run.mutate({ workflowId });
      expect(failed.nodes[0]?.ok).toBe(false);
      expect(failed.nodes[0]?.error).toBe(
        "Node 'Fetch report' could not refresh its HTTP Request connection 'Flaky': the service had an internal error. The next run tries again.",
      );
      expect((await connectionOf(client, workspaceId, secretId))?.connection?.status).toBe('connected');
      const next = await client.trpc.workflows.run.mutate({ workflowId });
      expect(next.nodes[0]).toMatchObject({ ok: true });
    } finally {
      as.setAccessTokenTtl(3600);
    }
  });

  it('revoked access marks the connection "needs reconnect"; Reconnect keeps its id and its nodes work again', async () => {
    const { client, workspaceId } = await signUpOverHttp(http);
    as.setAccessTokenTtl(30);
    try {
      const { secretId } = await connect(client, workspaceId, 'Ops');
      const workflowId = await nodeUsing(client, workspaceId, secretId, 'Post alert');
      await as.revokeEverything();
      const failed = await client.trpc.workflows.run.mutate({ workflowId });
      expect(failed.nodes[0]?.error).toBe(
        "Node 'Post alert' needs its HTTP Request connection 'Ops' to be reconnected: access was revoked or expired.",
      );
      expect((await connectionOf(client, workspaceId, secretId))?.connection?.status).toBe('needs-reconnect');
      // No further token request while it waits for a person: the next run fails the same way at once.
      const requests = { ...as.tokenRequests };
      const again = await client.trpc.workflows.run.mutate({ workflowId });
      expect(again.nodes[0]?.error).toContain('to be reconnected');
      expect(as.tokenRequests).toEqual(requests);

      const { authorizationUrl } = await client.trpc.secrets.reconnect.mutate({ workspaceId, secretId });
      const callback = await consentAt(authorizationUrl);
      const landed = await client.fetch(callback.slice(http.url.length), { redirect: 'manual' });
      expect(landed.headers.get('location')).toBe(`/w/${workspaceId}/integrations?connected=${secretId}`);
      expect((await connectionOf(client, workspaceId, secretId))?.connection?.status).toBe('connected');
      const healed = await client.trpc.workflows.run.mutate({ workflowId });
      expect(healed.nodes[0]).toMatchObject({ ok: true });
      const actions = (await client.trpc.audit.list.query({ workspaceId })).items.map((e) => e.action);
      expect(actions).toEqual(expect.arrayContaining(['secret.refresh_failed', 'secret.reconnected']));
    } finally {
      as.setAccessTokenTtl(3600);
    }
  });
});

describe('key rotation', () => {
  it('a new data key re-encrypts a connection with its tokens; it keeps working and refreshing', async () => {
    const { client, workspaceId } = await signUpOverHttp(http);
    as.setAccessTokenTtl(30);
    try {
      const { secretId } = await connect(client, workspaceId, 'Rotated');
      const workflowId = await nodeUsing(client, workspaceId, secretId);
      await addDataKeyVersion(app.owner, app.svc.keys.provider, workspaceId);
      const report = await reencryptSecrets(app.owner, app.svc.keys, workspaceId);
      expect(report.reencrypted).toBe(1);
      expect(report.failed).toEqual([]);
      // Renewed before use (its token is due), written under the newest data key, and used.
      const run = await client.trpc.workflows.run.mutate({ workflowId });
      expect(run.nodes[0], run.nodes[0]?.error).toMatchObject({ ok: true });
      const row = await app.owner
        .selectFrom('secrets')
        .select(['key_version', 'token_generation'])
        .where('id', '=', secretId)
        .executeTakeFirstOrThrow();
      expect(row).toEqual({ key_version: 2, token_generation: 2 });
    } finally {
      as.setAccessTokenTtl(3600);
    }
  });
});

describe('client credentials', () => {
  it('fetches the first token when saved, and a node uses it', async () => {
    const { client, workspaceId } = await signUpOverHttp(http);
    const meta = await client.trpc.secrets.create.mutate({
      workspaceId,
      credentialType: 'httpOAuth2ClientCredentials',
      name: 'Service account',
      data: {
        clientId: as.clientId,
        clientSecret: as.clientSecret,
        tokenUrl: as.tokenUrl,
        allowedDomains: '127.0.0.1',
      },
    });
    expect(meta.kind).toBe('oauth2');
    expect(meta.connection?.status).toBe('connected');
    const workflowId = await nodeUsing(client, workspaceId, meta.id);
    const run = await client.trpc.workflows.run.mutate({ workflowId });
    expect(run.nodes[0]).toMatchObject({ ok: true });
  });

  it('a client the service refuses is not saved: the error names the client secret', async () => {
    const { client, workspaceId } = await signUpOverHttp(http);
    const error = await trpcError(
      client.trpc.secrets.create.mutate({
        workspaceId,
        credentialType: 'httpOAuth2ClientCredentials',
        name: 'Wrong secret',
        data: {
          clientId: as.clientId,
          clientSecret: 'fake-wrong-client-secret',
          tokenUrl: as.tokenUrl,
          allowedDomains: '127.0.0.1',
        },
      }),
    );
    expect(error.message).toContain('data.clientSecret');
    expect(error.message).not.toContain('fake-wrong-client-secret');
    expect((await client.trpc.secrets.list.query({ workspaceId })).items).toEqual([]);
  });
});

describe('Slack app (OAuth), against a Slack-shaped fake with token rotation', () => {
  let fake: FakeSlackOAuth;
  beforeAll(async () => {
    fake = await startFakeSlackOAuth();
    app.svc.runnerSettings = {
      ...app.svc.runnerSettings,
      baseUrlOverrides: {
        ...app.svc.runnerSettings.baseUrlOverrides,
        LATCHKEY_BASE_URL_SLACK: `${fake.url}/api`,
        LATCHKEY_BASE_URL_SLACK_OAUTH: `${fake.url}/oauth/v2`,
      },
    };
  });
  afterAll(() => fake?.close());

  it('connects with "Add to Slack", shows the workspace and bot, posts, and rotates its token once for many runs', async () => {
    const { client, workspaceId } = await signUpOverHttp(http);
    fake.setTokenLifetime(30); // the first token is due for renewal at once; the renewed one lasts 12 hours
    const started = await client.trpc.secrets.connect.mutate({
      workspaceId,
      credentialType: 'slackOAuth',
      name: 'Ops',
      data: { clientId: fake.clientId, clientSecret: fake.clientSecret },
    });
    const asked = new URL(started.authorizationUrl).searchParams;
    expect(asked.get('scope')).toBe('chat:write');
    const callback = await consentAt(started.authorizationUrl);
    const landed = await client.fetch(callback.slice(http.url.length), { redirect: 'manual' });
    fake.setTokenLifetime(43_200);
    expect(landed.headers.get('location')).toBe(
      `/w/${workspaceId}/integrations?connected=${started.secretId}`,
    );
    const listed = await connectionOf(client, workspaceId, started.secretId);
    expect(listed?.connection).toMatchObject({ status: 'connected', account: 'Fake Team · bot U0FAKEBOT' });

    const workflow = await client.trpc.workflows.create.mutate({ workspaceId, name: 'Alerts' });
    const node = await client.trpc.workflows.addNode.mutate({
      workflowId: workflow.id,
      name: 'Post alert',
      nodeType: 'slack',
      params: { channel: '#ops', text: 'Fake alert' },
    });
    await client.trpc.workflows.updateNode.mutate({
      workflowId: workflow.id,
      nodeId: node.id,
      secretId: started.secretId,
    });
    const runs = await Promise.all(
      Array.from({ length: 10 }, () => client.trpc.workflows.run.mutate({ workflowId: workflow.id })),
    );
    expect(runs.map((r) => r.nodes[0]?.error ?? 'ok')).toEqual(Array(10).fill('ok'));
    // Connected with a 30-second token: renewed once (a second use of the refresh token would be refused).
    expect(fake.calls.refresh).toBe(1);
    expect(new Set(fake.posted.map((p) => p.token)).size).toBe(1);
  });
});
