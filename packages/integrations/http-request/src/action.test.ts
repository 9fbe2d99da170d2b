import {
  type ActionCredential,
  createRegistry,
  type HttpResponse,
  type OutgoingRequest,
} from '@latchkey/core';
import { describeActionConformance } from '@latchkey/core/testing';
import { describe, expect, it } from 'vitest';
import { parseHeaderLines, parseQueryLines, sendRequest } from './action.js';
import { httpHeaderAuth, httpQueryAuth, httpRequest } from './index.js';

// No base URL of its own: the conformance suite checks that requests go to the URL of the params.
describeActionConformance(httpRequest);

type Params = Parameters<typeof sendRequest>[0]['params'];

/** An action context whose `send` records each request (after `applied`, if given) and answers `response`. */
function fakeContext(
  params: Params,
  response: Partial<HttpResponse> = {},
  applied: (request: OutgoingRequest) => OutgoingRequest = (r) => r,
) {
  const sent: OutgoingRequest[] = [];
  const credential: ActionCredential = { type: 'httpBearerToken', publicFields: {} };
  const ctx = {
    params,
    credential,
    baseUrl: () => {
      throw new Error('the HTTP Request node uses the URL of its params');
    },
    send: async (request: OutgoingRequest): Promise<HttpResponse> => {
      sent.push(applied(request));
      return { status: 200, headers: {}, body: '', ...response };
    },
  };
  return { ctx, sent };
}

describe('HTTP Request action', () => {
  it('sends the method, URL, headers, query and body of its params', async () => {
    const { ctx, sent } = fakeContext({
      method: 'POST',
      url: 'https://api.example.test/v1/items',
      headers: 'Content-Type: application/json\nX-Trace: abc',
      query: 'page=2\nsort=name',
      body: '{"name":"item"}',
    });
    await sendRequest(ctx);
    expect(sent).toEqual([
      {
        method: 'POST',
        url: 'https://api.example.test/v1/items',
        headers: { 'Content-Type': 'application/json', 'X-Trace': 'abc' },
        query: { page: '2', sort: 'name' },
        body: '{"name":"item"}',
      },
    ]);
  });

  it.each(['GET', 'HEAD'] as const)('sends no body with %s', async (method) => {
    const { ctx, sent } = fakeContext({ method, url: 'https://api.example.test/v1/items', body: 'ignored' });
    await sendRequest(ctx);
    expect(sent[0]).toEqual({ method, url: 'https://api.example.test/v1/items', headers: {}, query: {} });
    expect(sent[0]).not.toHaveProperty('body');
  });

  it.each(['PUT', 'PATCH', 'DELETE'] as const)('sends the body with %s', async (method) => {
    const { ctx, sent } = fakeContext({
      method,
      url: 'https://api.example.test/v1/items/1',
      body: 'payload',
    });
    await sendRequest(ctx);
    expect(sent[0]).toMatchObject({ method, body: 'payload' });
  });

  it('lets the credential replace an Authorization-like header typed into the params', async () => {
    const credential = {
      headerName: 'X-API-Key',
      headerValue: 'fake-header-value',
      allowedDomains: 'api.example.test',
    };
    const { ctx, sent } = fakeContext(
      { method: 'GET', url: 'https://api.example.test/v1', headers: 'x-api-key: typed-by-hand\nAccept: */*' },
      {},
      (request) => httpHeaderAuth.authenticate(credential, request, { baseUrl: () => '' }),
    );
    await sendRequest(ctx);
    expect(sent[0]?.headers).toEqual({ Accept: '*/*', 'X-API-Key': 'fake-header-value' });
  });

  it('summarises a success with the status, content type and size', async () => {
    const { ctx } = fakeContext(
      { method: 'GET', url: 'https://api.example.test/v1' },
      { status: 200, headers: { 'content-type': 'application/json; charset=utf-8' }, body: '{"ok":true}' },
    );
    expect(await sendRequest(ctx)).toEqual({ ok: true, summary: 'HTTP 200 (application/json, 11 bytes)' });
  });

  it('counts the size of the response body in bytes', async () => {
    const { ctx } = fakeContext(
      { method: 'GET', url: 'https://api.example.test/v1' },
      { status: 201, headers: { 'content-type': 'text/plain' }, body: 'héllo €' },
    );
    expect(await sendRequest(ctx)).toEqual({ ok: true, summary: 'HTTP 201 (text/plain, 10 bytes)' });
  });

  it('reports a response without a content type', async () => {
    const { ctx } = fakeContext({ method: 'DELETE', url: 'https://api.example.test/v1/1' }, { status: 204 });
    expect(await sendRequest(ctx)).toEqual({ ok: true, summary: 'HTTP 204 (no content type, 0 bytes)' });
  });

  it('reports a server error as a failure', async () => {
    const { ctx } = fakeContext(
      { method: 'GET', url: 'https://api.example.test/v1' },
      { status: 500, body: 'oops' },
    );
    expect(await sendRequest(ctx)).toEqual({ ok: false, summary: 'HTTP 500 (no content type, 4 bytes)' });
  });

  it.each([401, 403])('reports HTTP %i as the credential rejected by the host', async (status) => {
    const { ctx } = fakeContext({ method: 'GET', url: 'https://api.example.test:8443/v1/me' }, { status });
    expect(await sendRequest(ctx)).toEqual({
      ok: false,
      summary: `The credential was rejected by api.example.test:8443 (HTTP ${status})`,
    });
  });

  it('never puts the credential or the URL query in its summary', async () => {
    const credential = {
      paramName: 'api_key',
      paramValue: 'fake-query-secret',
      allowedDomains: 'api.example.test',
    };
    const { ctx, sent } = fakeContext(
      { method: 'GET', url: 'https://user:fake-url-password@api.example.test/v1?x=fake-url-query' },
      { status: 401, body: 'fake-query-secret is not valid' },
      (request) => httpQueryAuth.authenticate(credential, request, { baseUrl: () => '' }),
    );
    const result = await sendRequest(ctx);
    expect(sent[0]?.query).toEqual({ api_key: 'fake-query-secret' });
    expect(result.summary).toBe('The credential was rejected by api.example.test (HTTP 401)');
  });

  it('accepts params from its own schema, including multi-line headers', () => {
    const registry = createRegistry([httpRequest]);
    const params = {
      method: 'POST',
      url: 'https://api.example.test/v1',
      headers: 'Accept: */*\r\nX-Trace: 1',
      body: '{\n  "a": 1\n}',
    };
    expect(registry.validateParams('httpRequest', params)).toEqual({ ok: true, value: params });
    const bad = { method: 'FETCH', url: 'ftp://files.example.test/x' };
    const result = registry.validateParams('httpRequest', bad);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.issues).toEqual([
      { path: ['method'], message: 'Must be one of: GET, POST, PUT, PATCH, DELETE, HEAD' },
      {
        path: ['url'],
        message: 'Must be a full URL starting with `https://` (or `http://`), with no spaces.',
      },
    ]);
  });
});

describe('header and query lines', () => {
  it('reads one header per line as Name: value, trimming, keeping colons in values and skipping junk', () => {
    expect(parseHeaderLines('Accept: */*\r\n  X-Time : 12:30:00 \n\n: nameless\nno colon here\n')).toEqual({
      Accept: '*/*',
      'X-Time': '12:30:00',
    });
    expect(parseHeaderLines(undefined)).toEqual({});
  });

  it('reads one query parameter per line as name=value, keeping = in values and skipping junk', () => {
    expect(parseQueryLines('a=1\r\n b = two \nfilter=x=y\n=nameless\nflag\n')).toEqual({
      a: '1',
      b: 'two',
      filter: 'x=y',
    });
    expect(parseQueryLines('')).toEqual({});
  });
});
