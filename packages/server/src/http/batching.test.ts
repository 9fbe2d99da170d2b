import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ownerDb } from '../testing/harness.js';
import { signUpOverHttp, startTestHttpApp } from '../testing/http-harness.js';
import { MAX_BATCH_SIZE } from './server.js';

// Issue 12, item 2: one request must not buy unbounded password hashing. A tRPC batch may carry at most one
// auth.* call and at most MAX_BATCH_SIZE calls; a refused batch runs none of its calls.

let t: Awaited<ReturnType<typeof startTestHttpApp>>;
beforeAll(async () => {
  t = await startTestHttpApp();
});
afterAll(() => t.close());

/** A batch POST of `procedure` × inputs.length, the way tRPC's batch link sends one. */
function postBatch(procedures: string[], inputs: unknown[], cookie?: string) {
  const body = Object.fromEntries(inputs.map((input, index) => [String(index), input]));
  return t.http.fetch(`/trpc/${procedures.join(',')}?batch=1`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) },
    body: JSON.stringify(body),
  });
}

const userCount = async () => (await ownerDb(t.app.svc).selectFrom('users').select('id').execute()).length;

describe('batched requests', () => {
  it('refuses a batch of 8 sign-ups with a 4xx and creates no account', async () => {
    const before = await userCount();
    const inputs = Array.from({ length: 8 }, (_, i) => ({
      email: `batched-${i}-${Date.now()}@example.test`,
      password: 'correct horse battery staple',
      name: `Batched ${i}`,
    }));
    const response = await postBatch(
      inputs.map(() => 'auth.signUp'),
      inputs,
    );
    expect(response.status).toBe(400);
    expect(response.text).toContain('A batch may hold at most one auth procedure');
    expect(response.headers.get('set-cookie')).toBeNull();
    expect(await userCount()).toBe(before);
  });

  it('refuses a batch mixing two auth calls (sign-in and sign-up) before either runs', async () => {
    const before = await userCount();
    const email = `mixed-${Date.now()}@example.test`;
    const response = await postBatch(
      ['auth.signUp', 'auth.signIn'],
      [
        { email, password: 'correct horse battery staple', name: 'Mixed' },
        { email, password: 'correct horse battery staple' },
      ],
    );
    expect(response.status).toBe(400);
    expect(response.headers.get('set-cookie')).toBeNull();
    expect(await userCount()).toBe(before);
  });

  it(`refuses a batch of more than ${MAX_BATCH_SIZE} calls, and accepts a batch with one auth call`, async () => {
    const { client, workspaceId } = await signUpOverHttp(t.http, 'Batcher');
    const cookie = `latchkey_session=${client.sessionToken()}`;
    // Short (unknown) names: Fastify already answers 414 to a procedure list longer than 100 characters.
    const tooMany = await postBatch(
      Array.from({ length: MAX_BATCH_SIZE + 1 }, (_, i) => `p${i}`),
      Array.from({ length: MAX_BATCH_SIZE + 1 }, () => ({})),
      cookie,
    );
    expect(tooMany.status).toBe(400);
    expect(tooMany.json).toEqual({
      error: {
        message: `A batch may hold at most ${MAX_BATCH_SIZE} calls`,
        data: { code: 'BAD_REQUEST', httpStatus: 400 },
      },
    });

    const procedures = ['auth.me', 'secrets.list', 'workspaces.list'];
    const inputs = { 0: undefined, 1: { workspaceId }, 2: undefined };
    const fine = await t.http.fetch(
      `/trpc/${procedures.join(',')}?batch=1&input=${encodeURIComponent(JSON.stringify(inputs))}`,
      { headers: { cookie } },
    );
    expect(fine.status).toBe(200);
    expect(fine.json).toHaveLength(3);
  });

  it(`answers a full batch of ${MAX_BATCH_SIZE} calls with long procedure names (no 414)`, async () => {
    const { client, workspaceId } = await signUpOverHttp(t.http, 'Long names');
    const cookie = `latchkey_session=${client.sessionToken()}`;
    const calls: [string, unknown][] = [
      ['workspaces.removalPreview', { workspaceId, userId: 'no-such-member' }],
      ['secrets.selectable', { workspaceId, nodeType: 'httpRequest' }],
      ['workspaces.invites', { workspaceId }],
      ['workspaces.members', { workspaceId }],
      ['integrations.list', undefined],
      ['secrets.list', { workspaceId }],
      ['workflows.list', { workspaceId }],
      ['workspaces.get', { workspaceId }],
      ['workspaces.list', undefined],
      ['auth.me', undefined],
    ];
    const path = calls.map(([name]) => name).join(',');
    expect(path.length).toBeGreaterThan(100);
    const inputs = Object.fromEntries(calls.map(([, input], index) => [String(index), input]));
    const response = await t.http.fetch(
      `/trpc/${path}?batch=1&input=${encodeURIComponent(JSON.stringify(inputs))}`,
      { headers: { cookie } },
    );
    expect(response.json).toHaveLength(MAX_BATCH_SIZE);
    const answers = response.json as { result?: unknown; error?: { data: { code: string } } }[];
    // Every call was routed and answered on its own: the last nine succeed, the removal preview of an
    // unknown member is NOT_FOUND.
    expect(answers[0]?.error?.data.code).toBe('NOT_FOUND');
    expect(answers.slice(1).every((answer) => answer.result !== undefined)).toBe(true);
  });

  it('still answers a single sign-up sent through the batch link (a batch of one)', async () => {
    const before = await userCount();
    const response = await postBatch(
      ['auth.signUp'],
      [
        {
          email: `single-${Date.now()}@example.test`,
          password: 'correct horse battery staple',
          name: 'Single',
        },
      ],
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('set-cookie')).toContain('latchkey_session=');
    expect(await userCount()).toBe(before + 1);
  });
});
