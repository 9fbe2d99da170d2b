import { createRegistry, type OutgoingRequest, type RequestContext } from '@latchkey/core';
import { describeCredentialConformance, expectRefused } from '@latchkey/core/testing';
import { describe, expect, it } from 'vitest';
import {
  httpBasicAuth,
  httpBearerToken,
  httpHeaderAuth,
  httpQueryAuth,
  httpRequest,
  isForbiddenCredentialHeader,
} from './index.js';

describeCredentialConformance(httpRequest, {
  samples: {
    httpBearerToken: {
      valid: [
        { token: 'fake-bearer-token', allowedDomains: 'api.example.test' },
        { token: 'fake.bearer/token+==', allowedDomains: 'api.example.test' },
      ],
    },
    httpBasicAuth: {
      valid: [
        { username: 'fake-user', password: 'fake-password', allowedDomains: 'api.example.test' },
        { username: 'fake-user', password: 'fäke pässwörd: with spaces', allowedDomains: 'api.example.com' },
      ],
      invalid: [{ username: 'fake:user', password: 'fake-password', allowedDomains: 'api.example.test' }],
    },
    httpHeaderAuth: {
      valid: [
        {
          headerName: 'X-Fake-Api-Key',
          headerValue: 'fake-header-value',
          allowedDomains: 'api.example.test',
        },
      ],
      invalid: [{ headerName: 'Host', headerValue: 'fake-header-value', allowedDomains: 'api.example.test' }],
    },
    httpQueryAuth: {
      valid: [
        { paramName: 'api_key', paramValue: 'fake query value&more', allowedDomains: 'api.example.test' },
      ],
    },
  },
  secretGoesIn: {
    httpBearerToken: ['header:authorization'],
    httpBasicAuth: ['header:authorization'],
    httpHeaderAuth: (credential) => [`header:${credential.headerName}`],
    httpQueryAuth: (credential) => [`query:${credential.paramName}`],
  },
});

const registry = createRegistry([httpRequest]);
const ctx: RequestContext = {
  baseUrl: () => {
    throw new Error('HTTP Request credentials do not use a base URL');
  },
};

/** A request frozen all the way down, so that any mutation by `authenticate` throws. */
function frozenRequest(): OutgoingRequest {
  return Object.freeze({
    method: 'POST',
    url: 'https://api.example.test/v1/items?existing=1',
    headers: Object.freeze({ 'Content-Type': 'application/json', 'X-Trace': 'trace-1' }),
    query: Object.freeze({ page: '2' }),
    body: '{"name":"item"}',
  }) as OutgoingRequest;
}

describe('HTTP Request credential samples', () => {
  it.each([
    ['httpBearerToken', { token: 'fake-bearer-token_123', allowedDomains: 'api.example.test' }],
    ['httpBearerToken', { token: 'fake.jwt-like.token', allowedDomains: 'api.example.test' }],
    ['httpBearerToken', { token: 'ZmFrZS10b2tlbg==', allowedDomains: 'api.example.test' }],
    ['httpBearerToken', { token: 'fake~token+with/slash', allowedDomains: 'api.example.test' }],
    [
      'httpBasicAuth',
      { username: 'api-user', password: 'fake pass:with colon', allowedDomains: 'api.example.test' },
    ],
    ['httpBasicAuth', { username: 'José', password: 'fäke-pässwörd', allowedDomains: 'api.example.test' }],
    [
      'httpHeaderAuth',
      { headerName: 'X-API-Key', headerValue: 'fake-header-value', allowedDomains: 'api.example.test' },
    ],
    [
      'httpHeaderAuth',
      { headerName: 'Authorization', headerValue: 'Token fake-token', allowedDomains: 'api.example.test' },
    ],
    [
      'httpHeaderAuth',
      { headerName: "x-custom_auth!#$%&'*+.^`|~", headerValue: 'fake', allowedDomains: 'api.example.test' },
    ],
    [
      'httpQueryAuth',
      { paramName: 'api_key', paramValue: 'fake-query-value', allowedDomains: 'api.example.test' },
    ],
    [
      'httpQueryAuth',
      {
        paramName: 'key.v2~x-y',
        paramValue: 'fake value with spaces & symbols',
        allowedDomains: 'api.example.test',
      },
    ],
  ])('accepts a valid %s', (type, data) => {
    const result = registry.validateCredential(type, data);
    expect(result.ok).toBe(true);
    expect(result.ok && result.value.nodeType).toBe('httpRequest');
  });

  it('keeps the user name and header or parameter names public, and the secrets apart', () => {
    const basic = registry.validateCredential('httpBasicAuth', {
      username: 'api-user',
      password: 'fake-password',
      allowedDomains: 'api.example.test',
    });
    expect(basic.ok && basic.value).toMatchObject({
      publicFields: { username: 'api-user', allowedDomains: 'api.example.test' },
      secretFields: { password: 'fake-password' },
    });
    const header = registry.validateCredential('httpHeaderAuth', {
      headerName: 'X-API-Key',
      headerValue: 'fake-value',
      allowedDomains: 'api.example.test',
    });
    expect(header.ok && header.value).toMatchObject({
      publicFields: { headerName: 'X-API-Key', allowedDomains: 'api.example.test' },
      secretFields: { headerValue: 'fake-value' },
    });
    const query = registry.validateCredential('httpQueryAuth', {
      paramName: 'api_key',
      paramValue: 'fake-value',
      allowedDomains: 'api.example.test',
    });
    expect(query.ok && query.value).toMatchObject({
      publicFields: { paramName: 'api_key', allowedDomains: 'api.example.test' },
      secretFields: { paramValue: 'fake-value' },
    });
  });

  it.each([
    ['a space', 'fake bearer token'],
    ['an = inside', 'fake=bearer-token'],
    ['a comma', 'fake,bearer-token'],
    ['non-ASCII', 'fake-bearer-tökén'],
  ])('refuses a bearer token containing %s', (_what, token) => {
    const data = { token, allowedDomains: 'api.example.test' };
    const issues = expectRefused(registry.validateCredential('httpBearerToken', data), data);
    expect(issues).toEqual([
      { path: ['token'], message: expect.stringContaining('A bearer token has only letters') },
    ]);
  });

  it.each([
    ['NUL', '\u0000'],
    ['CR', '\r'],
    ['LF', '\n'],
    ['ESC', '\u001b'],
  ])('refuses a %s in a bearer token', (_what, char) => {
    const data = { token: `fake-token${char}injected`, allowedDomains: 'api.example.test' };
    const issues = expectRefused(registry.validateCredential('httpBearerToken', data), data);
    expect(issues).toEqual([{ path: ['token'], message: 'Must not contain control characters' }]);
  });

  it('refuses a Basic auth user name containing ":"', () => {
    const data = { username: 'fake:user', password: 'fake-password', allowedDomains: 'api.example.test' };
    const issues = expectRefused(registry.validateCredential('httpBasicAuth', data), data);
    expect(issues).toEqual([{ path: ['username'], message: 'A Basic auth user name cannot contain `:`.' }]);
  });

  it('refuses Basic auth with a missing password or an empty user name', () => {
    const data = { username: '', allowedDomains: 'api.example.test' };
    const issues = expectRefused(registry.validateCredential('httpBasicAuth', data), data);
    expect(issues).toContainEqual({ path: ['username'], message: 'Required' });
    expect(issues).toContainEqual({ path: ['password'], message: 'Required' });
  });

  it.each([
    ['a space', 'X API Key'],
    ['a colon', 'X-API-Key:'],
    ['non-ASCII', 'X-Schlüssel'],
    ['brackets', 'X-Key(1)'],
  ])('refuses a header name containing %s, as it is not an HTTP token', (_what, headerName) => {
    const data = { headerName, headerValue: 'fake-header-value', allowedDomains: 'api.example.test' };
    const issues = expectRefused(registry.validateCredential('httpHeaderAuth', data), data);
    expect(issues).toEqual([
      { path: ['headerName'], message: expect.stringContaining('A header name has only letters') },
    ]);
  });

  it.each([
    'Host',
    'content-length',
    'Transfer-Encoding',
    'Connection',
    'Upgrade',
    'Proxy-Authorization',
    'TE',
  ])('refuses %s as a credential header, since it controls the connection', (headerName) => {
    const data = { headerName, headerValue: 'fake-header-value', allowedDomains: 'api.example.test' };
    const issues = expectRefused(registry.validateCredential('httpHeaderAuth', data), data);
    expect(issues).toEqual([
      { path: ['headerName'], message: 'This header controls the connection and cannot carry a credential.' },
    ]);
  });

  it('refuses a header value that would inject another header (CR LF)', () => {
    const data = {
      headerName: 'X-API-Key',
      headerValue: 'fake-value\r\nX-Injected: yes',
      allowedDomains: 'api.example.test',
    };
    const issues = expectRefused(registry.validateCredential('httpHeaderAuth', data), data);
    expect(issues).toEqual([{ path: ['headerValue'], message: 'Must not contain control characters' }]);
  });

  it.each([
    ['a space', 'api key'],
    ['an ampersand', 'api&key'],
    ['an equals sign', 'api=key'],
  ])('refuses a query parameter name containing %s', (_what, paramName) => {
    const data = { paramName, paramValue: 'fake-query-value', allowedDomains: 'api.example.test' };
    const issues = expectRefused(registry.validateCredential('httpQueryAuth', data), data);
    expect(issues).toEqual([
      { path: ['paramName'], message: expect.stringContaining('A parameter name has only letters') },
    ]);
  });

  it('refuses a field of one credential type submitted to another', () => {
    const data = {
      token: 'fake-bearer-token',
      headerValue: 'fake-header-value',
      allowedDomains: 'api.example.test',
    };
    const issues = expectRefused(registry.validateCredential('httpBearerToken', data), data);
    expect(issues).toEqual([{ path: ['headerValue'], message: 'Unknown field' }]);
  });

  it('refuses a token over 8 KiB', () => {
    const data = { token: 'f'.repeat(8193), allowedDomains: 'api.example.test' };
    const issues = expectRefused(registry.validateCredential('httpBearerToken', data), data);
    expect(issues).toEqual([{ path: ['token'], message: 'Must be at most 8192 characters' }]);
  });

  it('refuses a password whose UTF-8 exceeds 8 KiB', () => {
    const data = { username: 'api-user', password: '€'.repeat(3000), allowedDomains: 'api.example.test' };
    const issues = expectRefused(registry.validateCredential('httpBasicAuth', data), data);
    expect(issues).toEqual([{ path: ['password'], message: 'Must be at most 8192 bytes' }]);
  });

  it('refuses a wrong type without echoing it', () => {
    const data = { username: 'api-user', password: 123456789, allowedDomains: 'api.example.test' };
    const issues = expectRefused(registry.validateCredential('httpBasicAuth', data), data);
    expect(issues).toEqual([{ path: ['password'], message: 'Must be text' }]);
  });
});

describe('HTTP Request authenticate', () => {
  it('sends a bearer token as "Authorization: Bearer <token>"', () => {
    const result = httpBearerToken.authenticate(
      { token: 'fake-bearer-token', allowedDomains: 'api.example.test' },
      frozenRequest(),
      ctx,
    );
    expect(result.headers).toEqual({
      'Content-Type': 'application/json',
      'X-Trace': 'trace-1',
      Authorization: 'Bearer fake-bearer-token',
    });
  });

  it('sends Basic auth as base64 of user:password in UTF-8', () => {
    const result = httpBasicAuth.authenticate(
      { username: 'José', password: 'fäke:pässwörd', allowedDomains: 'api.example.test' },
      frozenRequest(),
      ctx,
    );
    const expected = `Basic ${Buffer.from('José:fäke:pässwörd', 'utf8').toString('base64')}`;
    expect(result.headers.Authorization).toBe(expected);
  });

  it('replaces an Authorization header already on the request, whatever its case', () => {
    const request = { ...frozenRequest(), headers: { authorization: 'Bearer from-params', Accept: '*/*' } };
    const result = httpBearerToken.authenticate(
      { token: 'fake-bearer-token', allowedDomains: 'api.example.test' },
      request,
      ctx,
    );
    expect(result.headers).toEqual({ Accept: '*/*', Authorization: 'Bearer fake-bearer-token' });
  });

  it('sends the secret in the custom header, replacing a same-named header in another case', () => {
    const request = { ...frozenRequest(), headers: { 'x-api-key': 'from-params', Accept: '*/*' } };
    const result = httpHeaderAuth.authenticate(
      { headerName: 'X-API-Key', headerValue: 'fake-header-value', allowedDomains: 'api.example.test' },
      request,
      ctx,
    );
    expect(result.headers).toEqual({ Accept: '*/*', 'X-API-Key': 'fake-header-value' });
    expect(result.query).toEqual({ page: '2' });
  });

  it('sends the secret as a query parameter, keeping the other parameters and the headers', () => {
    const result = httpQueryAuth.authenticate(
      { paramName: 'api_key', paramValue: 'fake-query-value', allowedDomains: 'api.example.test' },
      frozenRequest(),
      ctx,
    );
    expect(result.query).toEqual({ page: '2', api_key: 'fake-query-value' });
    expect(result.headers).toEqual(frozenRequest().headers);
    expect(result.url).toBe('https://api.example.test/v1/items?existing=1');
  });

  it('replaces a query parameter of the same name and adds one to a request without a query', () => {
    const request = { ...frozenRequest(), query: { api_key: 'from-params' } };
    const result = httpQueryAuth.authenticate(
      { paramName: 'api_key', paramValue: 'fake-query-value', allowedDomains: 'api.example.test' },
      request,
      ctx,
    );
    expect(result.query).toEqual({ api_key: 'fake-query-value' });
    const { query: _query, ...withoutQuery } = frozenRequest();
    expect(
      httpQueryAuth.authenticate(
        { paramName: 'k', paramValue: 'fake', allowedDomains: 'api.example.test' },
        withoutQuery,
        ctx,
      ).query,
    ).toEqual({ k: 'fake' });
  });

  it.each([
    [
      'httpBearerToken',
      () =>
        httpBearerToken.authenticate(
          { token: 'fake-token', allowedDomains: 'api.example.test' },
          frozenRequest(),
          ctx,
        ),
    ],
    [
      'httpBasicAuth',
      () =>
        httpBasicAuth.authenticate(
          { username: 'u', password: 'fake', allowedDomains: 'api.example.test' },
          frozenRequest(),
          ctx,
        ),
    ],
    [
      'httpHeaderAuth',
      () =>
        httpHeaderAuth.authenticate(
          { headerName: 'X-Key', headerValue: 'fake', allowedDomains: 'api.example.test' },
          frozenRequest(),
          ctx,
        ),
    ],
    [
      'httpQueryAuth',
      () =>
        httpQueryAuth.authenticate(
          { paramName: 'k', paramValue: 'fake', allowedDomains: 'api.example.test' },
          frozenRequest(),
          ctx,
        ),
    ],
  ])('%s is pure: a new request, the input untouched, method, URL and body kept', (_type, apply) => {
    const result = apply();
    const original = frozenRequest();
    expect(result).not.toBe(original);
    expect(result.method).toBe(original.method);
    expect(result.url).toBe(original.url);
    expect(result.body).toBe(original.body);
    expect(result.headers['Content-Type']).toBe('application/json');
    expect(result.headers['X-Trace']).toBe('trace-1');
  });

  it('never touches the request it is given', () => {
    const request: OutgoingRequest = {
      method: 'PUT',
      url: 'https://api.example.test/x',
      headers: { Authorization: 'old', 'X-Key': 'old' },
      query: { k: 'old' },
      body: 'payload',
    };
    const before = structuredClone(request);
    httpBearerToken.authenticate({ token: 'fake-token', allowedDomains: 'api.example.test' }, request, ctx);
    httpBasicAuth.authenticate(
      { username: 'u', password: 'fake', allowedDomains: 'api.example.test' },
      request,
      ctx,
    );
    httpHeaderAuth.authenticate(
      { headerName: 'x-key', headerValue: 'fake', allowedDomains: 'api.example.test' },
      request,
      ctx,
    );
    httpQueryAuth.authenticate(
      { paramName: 'k', paramValue: 'fake', allowedDomains: 'api.example.test' },
      request,
      ctx,
    );
    expect(request).toEqual(before);
  });

  it('has no test request: an arbitrary API offers no standard check', () => {
    for (const type of [httpBearerToken, httpBasicAuth, httpHeaderAuth, httpQueryAuth])
      expect(type.test).toBeUndefined();
  });
});

describe('isForbiddenCredentialHeader', () => {
  it('flags hop-by-hop and framing headers in any case, and any Proxy- header', () => {
    for (const name of [
      'host',
      'HOST',
      'Content-Length',
      'keep-alive',
      'Trailer',
      'Expect',
      'Proxy-Foo',
      'proxy-connection',
    ]) {
      expect(isForbiddenCredentialHeader(name), name).toBe(true);
    }
  });

  it('allows ordinary authentication headers', () => {
    for (const name of ['Authorization', 'X-API-Key', 'Api-Token', 'X-Proxy-Token']) {
      expect(isForbiddenCredentialHeader(name), name).toBe(false);
    }
  });
});

describe('HTTP Request allowed domains', () => {
  it.each(['httpBearerToken', 'httpBasicAuth', 'httpHeaderAuth', 'httpQueryAuth'])(
    '%s saved without allowed domains (API clients predating the list) goes to no host at all',
    (type) => {
      const { allowedDomains: _left, ...data } = {
        token: 'fake-bearer-token',
        username: 'fake-user',
        password: 'fake-password',
        headerName: 'X-Fake-Key',
        headerValue: 'fake-header-value',
        paramName: 'api_key',
        paramValue: 'fake-query-value',
        allowedDomains: 'api.example.test',
      };
      const fields = Object.keys(
        registry.describe()[0]?.credentialTypes.find((c) => c.type === type)?.jsonSchema.properties as object,
      );
      const only = Object.fromEntries(Object.entries(data).filter(([key]) => fields.includes(key)));
      const result = registry.validateCredential(type, only);
      if (!result.ok) throw new Error(`expected the data to be accepted: ${JSON.stringify(result.issues)}`);
      expect(result.value.publicFields.allowedDomains).toBeUndefined();
      const definition = registry.credentialType(type)?.definition;
      expect(definition?.allowedHosts?.(result.value.publicFields)).toEqual([]);
    },
  );

  it('tells the form why the list is required, in the JSON Schema the settings UI builds it from', () => {
    for (const credentialType of registry.describe()[0]?.credentialTypes ?? []) {
      const schema = credentialType.jsonSchema as {
        required: string[];
        properties: Record<string, { help?: string }>;
      };
      expect(schema.required).toContain('allowedDomains');
      expect(schema.properties.allowedDomains?.help).toContain(
        'this credential will only ever be sent to these hosts',
      );
    }
  });

  it.each([
    ['a URL', 'https://api.example.test', 'This is not a domain — leave out `https://`.'],
    [
      'a URL among domains',
      'api.example.test, https://files.example.test/v1',
      'Entry 2 is not a domain — leave out `https://` and the path.',
    ],
    ['a wildcard', '*.example.test', 'This is not a domain — leave out `*.` (subdomains are included).'],
    [
      'spaces for commas',
      'api.example.test files.example.test',
      'This is not a domain — separate domains with commas.',
    ],
    ['an empty entry', 'api.example.test,,files.example.test', 'An entry is empty — remove the extra comma.'],
  ])(
    'refuses allowed domains with %s, saying what is wrong in that entry',
    (_what, allowedDomains, message) => {
      const data = { token: 'fake-bearer-token', allowedDomains };
      expect(expectRefused(registry.validateCredential('httpBearerToken', data), data)).toEqual([
        { path: ['allowedDomains'], message },
      ]);
    },
  );

  it('lists the hosts a credential may go to, and none for one saved without a list', () => {
    expect(
      httpBearerToken.allowedHosts?.({ allowedDomains: 'api.example.test, files.example.test' }),
    ).toEqual(['api.example.test', 'files.example.test']);
    expect(httpBearerToken.allowedHosts?.({})).toEqual([]);
    expect(httpBearerToken.allowedHosts?.({ allowedDomains: ' , ' })).toEqual([]);
  });
});
