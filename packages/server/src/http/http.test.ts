import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import type { SecretMeta } from '../secrets/meta.js';
import { FAKE_DATA, ownerDb } from '../testing/harness.js';
import {
  type HttpClient,
  postProcedure,
  type RawResponse,
  signUpOverHttp,
  startHttpServer,
  startTestHttpApp,
  trpcError,
} from '../testing/http-harness.js';
import { SECURE_SESSION_COOKIE, SESSION_COOKIE } from '../trpc/trpc.js';

let t: Awaited<ReturnType<typeof startTestHttpApp>>;
beforeAll(async () => {
  t = await startTestHttpApp();
});
afterAll(() => t.close());

async function secretCount(): Promise<number> {
  const row = await ownerDb(t.app.svc)
    .selectFrom('secrets')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

async function sessionCount(): Promise<number> {
  const row = await ownerDb(t.app.svc)
    .selectFrom('sessions')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

/** The session cookie's Set-Cookie header among those recorded since `from`. */
function sessionSetCookie(from: number): string {
  const header = t.http.recorded.setCookies.slice(from).find((h) => h.startsWith(`${SESSION_COOKIE}=`));
  if (!header) throw new Error('no session cookie was set');
  return header;
}

function attributes(setCookie: string | undefined): string[] {
  return (setCookie ?? '')
    .split(';')
    .slice(1)
    .map((a) => a.trim().toLowerCase());
}

/** A JSON error body: tRPC's `{error:{message,…}}`, the guard's `{error:{message}}`, or Fastify's `{statusCode,message}`. */
function expectJsonError(response: RawResponse): void {
  expect(response.headers.get('content-type') ?? '').toMatch(/^application\/json/);
  const body = response.json as { error?: { message?: unknown }; message?: unknown } | undefined;
  expect(body, response.text).toBeTypeOf('object');
  expect(typeof (body?.error?.message ?? body?.message)).toBe('string');
}

function createBody(workspaceId: string, name: string, data: unknown = FAKE_DATA.httpBearerToken): string {
  return JSON.stringify({ workspaceId, credentialType: 'httpBearerToken', name, data });
}

describe('sessions over HTTP', () => {
  it('sets an HttpOnly, SameSite=Lax, Path=/ session cookie at sign-up, not Secure over http', async () => {
    const from = t.http.recorded.setCookies.length;
    const { client } = await signUpOverHttp(t.http);
    const header = sessionSetCookie(from);
    const attrs = attributes(header);
    expect(attrs).toContain('httponly');
    expect(attrs).toContain('samesite=lax');
    expect(attrs).toContain('path=/');
    expect(attrs).not.toContain('secure');
    expect(attrs.some((a) => a.startsWith('expires='))).toBe(true);
    expect(client.sessionToken()).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((await client.trpc.auth.me.query())?.user.email).toMatch(/@example\.test$/);
  });

  it('issues a new token at sign-in and ends the one the browser had (rotation)', async () => {
    const { client, email, password } = await signUpOverHttp(t.http);
    const before = client.sessionToken() as string;
    await client.trpc.auth.signIn.mutate({ email, password });
    const after = client.sessionToken() as string;
    expect(after).toBeTruthy();
    expect(after).not.toBe(before);
    expect((await client.trpc.auth.me.query())?.user.email).toBe(email);

    const replay = t.http.client();
    replay.setSessionToken(before);
    expect(await replay.trpc.auth.me.query()).toBeNull();
    expect((await trpcError(replay.trpc.workspaces.list.query())).data?.code).toBe('UNAUTHORIZED');
  });

  it('does not keep a session token planted before sign-in (no session fixation)', async () => {
    const { email, password } = await signUpOverHttp(t.http);
    const victim = t.http.client();
    const planted = 'planted-token-chosen-by-an-attacker';
    victim.setSessionToken(planted);
    await victim.trpc.auth.signIn.mutate({ email, password });
    expect(victim.sessionToken()).not.toBe(planted);
    const attacker = t.http.client();
    attacker.setSessionToken(planted);
    expect(await attacker.trpc.auth.me.query()).toBeNull();
  });

  it('leaves the sessions of other browsers alone at sign-in', async () => {
    const { client: first, email, password } = await signUpOverHttp(t.http);
    const second = t.http.client();
    await second.trpc.auth.signIn.mutate({ email, password });
    expect((await first.trpc.auth.me.query())?.user.email).toBe(email);
    expect((await second.trpc.auth.me.query())?.user.email).toBe(email);
  });

  it('deletes the session at sign-out: the old cookie value is then UNAUTHORIZED', async () => {
    const { client, workspaceId } = await signUpOverHttp(t.http);
    const token = client.sessionToken() as string;
    const sessionsBefore = await sessionCount();
    const from = t.http.recorded.setCookies.length;
    await client.trpc.auth.signOut.mutate();
    expect(await sessionCount()).toBe(sessionsBefore - 1);
    // The cookie is cleared in the browser…
    const cleared = sessionSetCookie(from);
    expect(cleared.startsWith(`${SESSION_COOKIE}=;`)).toBe(true);
    expect(client.sessionToken()).toBeUndefined();
    // …and a copy of the old value is useless.
    const replay = t.http.client();
    replay.setSessionToken(token);
    expect((await trpcError(replay.trpc.secrets.list.query({ workspaceId }))).data?.code).toBe(
      'UNAUTHORIZED',
    );
    expect(await replay.trpc.auth.me.query()).toBeNull();
  });

  it('marks the session cookie Secure when the app is reached over https through a trusted proxy', async () => {
    const proxied = await startHttpServer(t.app.svc, { trustProxy: '127.0.0.1' });
    const from = proxied.recorded.setCookies.length;
    const response = await postProcedure(
      proxied.client(),
      'auth.signUp',
      JSON.stringify({
        email: `https-${Date.now()}@example.test`,
        password: 'correct horse battery staple',
        name: 'Tls',
      }),
      {
        'content-type': 'application/json',
        'x-forwarded-proto': 'https',
        'x-forwarded-host': 'latchkey.example.test',
      },
    );
    expect(response.status).toBe(200);
    const cookie = proxied.recorded.setCookies
      .slice(from)
      .find((c) => c.startsWith(`${SECURE_SESSION_COOKIE}=`));
    await proxied.close();
    expect(attributes(cookie)).toContain('secure');
  });

  it('marks the session cookie Secure whatever the protocol when secure cookies are configured (production)', async () => {
    const forced = await startHttpServer(t.app.svc, { secureCookies: true });
    const response = await postProcedure(
      forced.client(),
      'auth.signUp',
      JSON.stringify({
        email: `secure-${Date.now()}@example.test`,
        password: 'correct horse battery staple',
        name: 'Sec',
      }),
      { 'content-type': 'application/json' },
    );
    expect(response.status).toBe(200);
    const cookie = forced.recorded.setCookies.find((c) => c.startsWith(`${SECURE_SESSION_COOKIE}=`));
    await forced.close();
    expect(attributes(cookie)).toContain('secure');
  });

  it('answers UNAUTHORIZED (401) to a protected procedure without a session', async () => {
    const response = await t.http.fetch(`/trpc/workspaces.list`);
    expect(response.status).toBe(401);
    expectJsonError(response);
  });
});

describe('CSRF guard', () => {
  let owner: HttpClient;
  let workspaceId: string;
  beforeAll(async () => {
    ({ client: owner, workspaceId } = await signUpOverHttp(t.http));
  });

  it.each([
    ['application/x-www-form-urlencoded', 'workspaceId=x&name=y'],
    ['text/plain', '<json>'],
    ['text/plain;charset=UTF-8', '<json>'],
    [
      'multipart/form-data; boundary=x',
      '--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--\r\n',
    ],
  ])('refuses a POST sent as %s with 415 and creates nothing', async (contentType, body) => {
    const before = await secretCount();
    const payload = body === '<json>' ? createBody(workspaceId, `csrf ${contentType}`) : body;
    const response = await postProcedure(owner, 'secrets.create', payload, { 'content-type': contentType });
    expect(response.status).toBe(415);
    expectJsonError(response);
    expect(await secretCount()).toBe(before);
  });

  it('refuses a POST without a content type with 415', async () => {
    const response = await owner.fetch('/trpc/auth.signOut', { method: 'POST' });
    expect(response.status).toBe(415);
    expect(await owner.trpc.auth.me.query()).not.toBeNull();
  });

  it('refuses requests labelled Sec-Fetch-Site: cross-site with 403, queries and mutations alike', async () => {
    const before = await secretCount();
    const mutation = await postProcedure(owner, 'secrets.create', createBody(workspaceId, 'cross-site'), {
      'content-type': 'application/json',
      'sec-fetch-site': 'cross-site',
    });
    expect(mutation.status).toBe(403);
    expectJsonError(mutation);
    const query = await owner.fetch(`/trpc/auth.me`, { headers: { 'sec-fetch-site': 'cross-site' } });
    expect(query.status).toBe(403);
    expect(await secretCount()).toBe(before);
  });

  it.each(['same-origin', 'none'])('accepts Sec-Fetch-Site: %s', async (site) => {
    const response = await postProcedure(owner, 'secrets.create', createBody(workspaceId, `from ${site}`), {
      'content-type': 'application/json',
      'sec-fetch-site': site,
    });
    expect(response.status).toBe(200);
  });

  it('refuses a mutation sent as GET (a link or an image cannot change state)', async () => {
    const before = await secretCount();
    const input = encodeURIComponent(createBody(workspaceId, 'via GET'));
    const response = await owner.fetch(`/trpc/secrets.create?input=${input}`);
    expect(response.status).toBe(405);
    expect(await secretCount()).toBe(before);
  });

  // The router decodes percent-escapes, so POST /%74rpc/<procedure> reaches tRPC: the guard must check the routed
  // path. tRPC parses multipart/form-data itself, so an HTML form could otherwise call input-less mutations.
  it('applies the guard to percent-encoded /trpc paths too (POST /%74rpc/auth.signOut as a form)', async () => {
    const { client } = await signUpOverHttp(t.http);
    const form = new FormData();
    form.set('submit', '1');
    const response = await client.fetch('/%74rpc/auth.signOut', {
      method: 'POST',
      headers: { 'sec-fetch-site': 'cross-site' },
      body: form,
    });
    expect(response.status).toBe(403);
    expect(await client.trpc.auth.me.query()).not.toBeNull();
  });
});

describe('malformed input gets a 4xx JSON error, never a 500', () => {
  let owner: HttpClient;
  let workspaceId: string;
  beforeAll(async () => {
    ({ client: owner, workspaceId } = await signUpOverHttp(t.http));
  });

  async function expectRefused(body: string, status?: number): Promise<RawResponse> {
    const before = await secretCount();
    const response = await postProcedure(owner, 'secrets.create', body);
    if (status) expect(response.status, response.text).toBe(status);
    expect(response.status, response.text).toBeGreaterThanOrEqual(400);
    expect(response.status, response.text).toBeLessThan(500);
    expectJsonError(response);
    expect(await secretCount()).toBe(before);
    return response;
  }

  it('answers malformed JSON with 400 and a fixed message (not the parser text)', async () => {
    const response = await expectRefused('{"workspaceId": "x", "name": ', 400);
    expect(response.json).toMatchObject({
      error: { message: 'The request is not valid JSON for this procedure', data: { code: 'BAD_REQUEST' } },
    });
    expect(response.text).not.toMatch(/Unexpected|position|SyntaxError/);
  });

  it('answers a malformed query input (GET) with 400 and a JSON error', async () => {
    for (const input of ['%7Bbad', '%5B1%2C2', 'not-json-at-all']) {
      const response = await owner.fetch(`/trpc/secrets.list?input=${input}`);
      expect(response.status, input).toBe(400);
      expectJsonError(response);
    }
  });

  it('answers wrong-typed input with 400 and field issues', async () => {
    const response = await expectRefused(
      JSON.stringify({ workspaceId: 42, credentialType: ['httpBearerToken'], name: { n: 1 }, data: null }),
      400,
    );
    const issues = (response.json as { error: { data: { issues: { path: string[] }[] } } }).error.data.issues;
    expect(issues.map((i) => i.path)).toEqual(
      expect.arrayContaining([['workspaceId'], ['credentialType'], ['name']]),
    );
  });

  it('answers a body that is not an object with 400', async () => {
    await expectRefused('"just a string"', 400);
    await expectRefused('null', 400);
    await expectRefused('[1,2,3]', 400);
  });

  it('answers a 2 MB body with 413', async () => {
    const huge = createBody(workspaceId, 'huge', { token: 'a'.repeat(2 * 1024 * 1024) });
    await expectRefused(huge, 413);
  });

  it('refuses __proto__ keys without polluting any prototype', async () => {
    const inData = `{"workspaceId":"${workspaceId}","credentialType":"httpBearerToken","name":"proto in data","data":{"__proto__":{"token":"fake-proto-token"}}}`;
    const response = await expectRefused(inData, 400);
    expect(
      (response.json as { error: { data: { issues: { path: string[] }[] } } }).error.data.issues.map(
        (i) => i.path,
      ),
    ).toContainEqual(['data', 'token']);

    const atTop = `{"__proto__":{"workspaceId":"${workspaceId}","name":"proto at top"},"credentialType":"httpBearerToken","data":{"token":"fake-proto-token"}}`;
    await expectRefused(atTop, 400);
    const viaConstructor = `{"workspaceId":"${workspaceId}","credentialType":"httpBearerToken","name":"ctor","data":{"constructor":{"prototype":{"token":"fake"}}}}`;
    await expectRefused(viaConstructor, 400);

    expect(({} as Record<string, unknown>).token).toBeUndefined();
    expect(({} as Record<string, unknown>).workspaceId).toBeUndefined();
  });

  it('refuses deeply nested data (arrays, objects, and in a name field)', async () => {
    const depth = 100_000;
    const arrays = `${'['.repeat(depth)}${']'.repeat(depth)}`;
    const objects = `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
    await expectRefused(
      `{"workspaceId":"${workspaceId}","credentialType":"httpBearerToken","name":"deep","data":${arrays}}`,
      400,
    );
    await expectRefused(
      `{"workspaceId":"${workspaceId}","credentialType":"httpBearerToken","name":"deep","data":${objects}}`,
      400,
    );
    await expectRefused(
      `{"workspaceId":"${workspaceId}","credentialType":"httpBearerToken","name":${arrays},"data":{}}`,
      400,
    );
    // The server is still serving.
    expect((await t.http.fetch('/healthz')).status).toBe(200);
  });

  it('refuses an unknown procedure with 404 and a JSON error', async () => {
    const response = await postProcedure(owner, 'secrets.reveal', createBody(workspaceId, 'x'));
    expect(response.status).toBe(404);
    expectJsonError(response);
  });

  it('never logs a procedure failure at error level for any of the above', () => {
    const errors = t.http.recorded.logs.filter((line) => (JSON.parse(line) as { level: number }).level >= 50);
    expect(errors).toEqual([]);
  });
});

describe('plain HTTP endpoints', () => {
  it('answers GET /healthz with 200', async () => {
    const response = await t.http.fetch('/healthz');
    expect(response.status).toBe(200);
    expect(response.json).toEqual({ ok: true });
  });

  it.each([
    ['/healthz', 'GET'],
    ['/trpc/integrations.list', 'GET'],
    ['/trpc/auth.signOut', 'POST'],
    ['/no-such-page', 'GET'],
  ])('sends the security headers on %s', async (path, method) => {
    const response = await t.http.fetch(path, { method });
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/);
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    expect(response.headers.get('x-frame-options')).toBe('DENY');
  });

  it('answers a tRPC call, single or batched, as one JSON body with its length (not chunked)', async () => {
    const single = await t.http.fetch('/trpc/integrations.list');
    const batched = await t.http.fetch('/trpc/integrations.list,auth.me?batch=1&input=%7B%7D');
    for (const response of [single, batched]) {
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('application/json');
      expect(response.headers.get('transfer-encoding')).toBeNull();
      expect(Number(response.headers.get('content-length'))).toBe(Buffer.byteLength(response.text));
      expect(response.headers.get('vary')).toBe('trpc-accept, accept');
    }
    expect((single.json as { result: { data: unknown[] } }).result.data.length).toBeGreaterThan(0);
    expect(batched.json).toEqual([
      { result: { data: (single.json as { result: { data: unknown } }).result.data } },
      { result: { data: null } },
    ]);
  });
});

describe('the Secrets API through @trpc/client', () => {
  it('creates, lists, replaces and deletes a secret with typed results', async () => {
    const { client, user, workspaceId } = await signUpOverHttp(t.http, 'Typed Client');
    const integrations = await client.trpc.integrations.list.query();
    expect(integrations.map((i) => i.nodeType)).toEqual(
      expect.arrayContaining(['httpRequest', 'sendgrid', 'mailgun', 'slack']),
    );

    const created = await client.trpc.secrets.create.mutate({
      workspaceId,
      credentialType: 'mailgunApiKey',
      name: 'Transactional mail',
      data: FAKE_DATA.mailgunApiKey,
    });
    expectTypeOf(created).toEqualTypeOf<SecretMeta>();
    expect(created).toMatchObject({
      name: 'Transactional mail',
      integrationId: 'mailgun',
      nodeType: 'mailgun',
      credentialType: 'mailgunApiKey',
      publicFields: { domain: FAKE_DATA.mailgunApiKey?.domain, region: FAKE_DATA.mailgunApiKey?.region },
      createdBy: { id: user.id, name: 'Typed Client' },
      lastUsedAt: null,
    });
    expect(Date.parse(created.createdAt)).not.toBeNaN();
    expect(JSON.stringify(created)).not.toContain(FAKE_DATA.mailgunApiKey?.apiKey);

    const list = await client.trpc.secrets.list.query({ workspaceId });
    expectTypeOf(list.items).toEqualTypeOf<SecretMeta[]>();
    expectTypeOf(list.nextCursor).toEqualTypeOf<string | null>();
    expect(list.items.map((s) => s.id)).toEqual([created.id]);
    expect(list.nextCursor).toBeNull();

    const selectable = await client.trpc.secrets.selectable.query({ workspaceId, nodeType: 'mailgun' });
    expect(selectable).toEqual([
      {
        id: created.id,
        name: 'Transactional mail',
        credentialType: 'mailgunApiKey',
        allowedHosts: null,
        kind: 'static',
        createdBy: 'Typed Client',
      },
    ]);
    expect(await client.trpc.secrets.selectable.query({ workspaceId, nodeType: 'sendgrid' })).toEqual([]);

    const replaced = await client.trpc.secrets.replace.mutate({
      workspaceId,
      secretId: created.id,
      data: { apiKey: 'fake-rotated-mailgun-key', domain: 'mail.example.test', region: 'us' },
    });
    expect(replaced.id).toBe(created.id);
    expect(replaced.publicFields).toEqual({ domain: 'mail.example.test', region: 'us' });
    expect(Date.parse(replaced.updatedAt)).toBeGreaterThanOrEqual(Date.parse(created.updatedAt));

    const deleted = await client.trpc.secrets.delete.mutate({ workspaceId, secretId: created.id });
    expectTypeOf(deleted.affectedNodes).items.toHaveProperty('nodeName');
    expect(deleted).toEqual({ affectedNodes: [] });
    expect((await client.trpc.secrets.list.query({ workspaceId })).items).toEqual([]);
    const again = await trpcError(client.trpc.secrets.delete.mutate({ workspaceId, secretId: created.id }));
    expect(again.data?.code).toBe('NOT_FOUND');
    expect(again.data?.httpStatus).toBe(404);
  });

  it('answers BAD_REQUEST with field issues whose paths point into data', async () => {
    const { client, workspaceId } = await signUpOverHttp(t.http);
    const error = await trpcError(
      client.trpc.secrets.create.mutate({
        workspaceId,
        credentialType: 'sendgridApiKey',
        name: 'Not a SendGrid key',
        data: { apiKey: 'missing-the-prefix' },
      }),
    );
    expect(error.data?.code).toBe('BAD_REQUEST');
    expect(error.data?.httpStatus).toBe(400);
    expectTypeOf(error.data?.issues).toEqualTypeOf<{ path: string[]; message: string }[] | undefined>();
    expect(error.data?.issues).toEqual([
      { path: ['data', 'apiKey'], message: expect.stringContaining('SG.') },
    ]);
    expect(error.message).not.toContain('missing-the-prefix');

    const missing = await trpcError(
      client.trpc.secrets.create.mutate({
        workspaceId,
        credentialType: 'mailgunApiKey',
        name: 'Half a key',
        data: {},
      }),
    );
    expect(missing.data?.issues?.map((i) => i.path)).toEqual(
      expect.arrayContaining([
        ['data', 'apiKey'],
        ['data', 'domain'],
        ['data', 'region'],
      ]),
    );

    const input = await trpcError(
      client.trpc.secrets.create.mutate({
        workspaceId,
        credentialType: 'sendgridApiKey',
        name: '',
        data: {},
      }),
    );
    expect(input.data?.issues).toContainEqual({ path: ['name'], message: 'Required' });
  });

  it('answers CONFLICT (409) to a duplicate name', async () => {
    const { client, workspaceId } = await signUpOverHttp(t.http);
    const input = {
      workspaceId,
      credentialType: 'slackBotToken',
      name: 'Alerts bot',
      data: FAKE_DATA.slackBotToken,
    };
    await client.trpc.secrets.create.mutate(input);
    const error = await trpcError(client.trpc.secrets.create.mutate(input));
    expect(error.data?.code).toBe('CONFLICT');
    expect(error.data?.httpStatus).toBe(409);
    expect(error.message).toContain('Alerts bot');
  });

  it("answers NOT_FOUND for another workspace's secret", async () => {
    const alice = await signUpOverHttp(t.http, 'Alice');
    const bob = await signUpOverHttp(t.http, 'Bob');
    const secret = await alice.client.trpc.secrets.create.mutate({
      workspaceId: alice.workspaceId,
      credentialType: 'httpBearerToken',
      name: 'Alice token',
      data: FAKE_DATA.httpBearerToken,
    });
    const viaOwnWorkspace = await trpcError(
      bob.client.trpc.secrets.delete.mutate({ workspaceId: bob.workspaceId, secretId: secret.id }),
    );
    expect(viaOwnWorkspace.data?.code).toBe('NOT_FOUND');
    const viaTheirs = await trpcError(
      bob.client.trpc.secrets.delete.mutate({ workspaceId: alice.workspaceId, secretId: secret.id }),
    );
    expect(viaTheirs.data?.code).toBe('NOT_FOUND');
    expect(
      (await alice.client.trpc.secrets.list.query({ workspaceId: alice.workspaceId })).items,
    ).toHaveLength(1);
  });

  it('batches calls through the batch endpoint as well', async () => {
    const { client, workspaceId } = await signUpOverHttp(t.http);
    const input = JSON.stringify({ workspaceId });
    const response = await client.fetch(
      `/trpc/secrets.list,workspaces.get?batch=1&input=${encodeURIComponent(JSON.stringify({ 0: JSON.parse(input), 1: JSON.parse(input) }))}`,
    );
    expect(response.status).toBe(200);
    expect(response.json).toMatchObject([
      { result: { data: { items: [] } } },
      { result: { data: { id: workspaceId } } },
    ]);
  });
});

describe('logs', () => {
  it('never contain a session token or a password', async () => {
    const { client, password } = await signUpOverHttp(t.http);
    await client.trpc.auth.me.query();
    const token = client.sessionToken() as string;
    for (const line of t.http.recorded.logs) {
      expect(line).not.toContain(token);
      expect(line).not.toContain(password);
    }
    expect(t.http.recorded.logs.some((line) => line.includes('"statusCode":200'))).toBe(true);
  });
});
