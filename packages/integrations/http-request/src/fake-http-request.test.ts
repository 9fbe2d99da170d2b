/**
 * The action against the fake HTTP API (fake-http-request.ts), over real HTTP, with a bearer token and with
 * a query parameter: `send` does what the server's runner does, minus its guard and limits (it applies
 * `authenticate`, then sends).
 */
import type { HttpResponse, OutgoingRequest, RequestContext } from '@latchkey/core';
import { type FakeService, performRequest } from '@latchkey/core/testing/fake-service';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fakeHttp } from './fake-http-request.js';
import { httpBearerToken, httpQueryAuth, httpRequest } from './index.js';

const BEARER = { token: 'fake-bearer-token', allowedDomains: '127.0.0.1' };
const QUERY = { paramName: 'api_key', paramValue: 'fake-query-value', allowedDomains: '127.0.0.1' };

let fake: FakeService;
// The HTTP Request node has no base URL of its own: it sends to the URL of its params.
const ctx: RequestContext = { baseUrl: () => '' };

beforeAll(async () => {
  fake = await fakeHttp().listen();
});
afterAll(() => fake.close());
beforeEach(() => {
  fake.reset();
});

function run(url: string, send: (request: OutgoingRequest) => Promise<HttpResponse>, type: string) {
  return httpRequest.action({
    params: { method: 'GET', url },
    credential: { type, publicFields: { allowedDomains: '127.0.0.1' } },
    baseUrl: ctx.baseUrl,
    send,
  });
}

describe('HTTP Request action, against a fake HTTP API', () => {
  it('sends the bearer token in Authorization and reports the answer', async () => {
    const send = (request: OutgoingRequest) =>
      performRequest(httpBearerToken.authenticate(BEARER, request, ctx));
    const result = await run(`${fake.url}/items`, send, 'httpBearerToken');
    expect(result).toEqual({ ok: true, summary: 'HTTP 200 (application/json, 27 bytes)' });
    expect(fake.only()).toMatchObject({ method: 'GET', path: '/items' });
    expect(fake.only().headers.authorization).toBe(`Bearer ${BEARER.token}`);
  });

  it('sends the query credential as a parameter, and reads a 401 as the credential rejected', async () => {
    const send = (request: OutgoingRequest) =>
      performRequest(httpQueryAuth.authenticate(QUERY, request, ctx));
    const result = await run(`${fake.url}/status/401`, send, 'httpQueryAuth');
    expect(result).toEqual({
      ok: false,
      summary: `The credential was rejected by ${new URL(fake.url).host} (HTTP 401)`,
    });
    expect(fake.only().query).toEqual({ api_key: QUERY.paramValue });
  });
});
