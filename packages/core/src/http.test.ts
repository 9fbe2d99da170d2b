import { describe, expect, it } from 'vitest';
import {
  baseUrlVariable,
  basicAuthorization,
  bearerAuthorization,
  joinUrl,
  type OutgoingRequest,
  withHeader,
} from './http.js';

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;

describe('basicAuthorization', () => {
  it('encodes user:password in base64 as RFC 7617 describes', () => {
    expect(basicAuthorization('Aladdin', 'open sesame')).toBe('Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==');
  });

  it('encodes non-ASCII user names and passwords as UTF-8', () => {
    expect(basicAuthorization('José', 'pässwörd-€')).toBe(basic('José', 'pässwörd-€'));
    expect(basicAuthorization('用户', 'fake-🔑-password')).toBe(basic('用户', 'fake-🔑-password'));
  });

  it('keeps colons in the password and pads the standard alphabet', () => {
    expect(basicAuthorization('api', 'fake:key:with:colons')).toBe(basic('api', 'fake:key:with:colons'));
    expect(basicAuthorization('a', 'b')).toBe('Basic YTpi');
    expect(basicAuthorization('ab', 'c?~>')).toBe('Basic YWI6Yz9+Pg==');
    expect(basicAuthorization('a', '>>>?')).toBe('Basic YTo+Pj4/');
  });

  it('encodes empty parts', () => {
    expect(basicAuthorization('', '')).toBe('Basic Og==');
  });
});

describe('bearerAuthorization', () => {
  it('puts the token after "Bearer "', () => {
    expect(bearerAuthorization('fake-token-123')).toBe('Bearer fake-token-123');
  });
});

describe('withHeader', () => {
  const request: OutgoingRequest = Object.freeze({
    method: 'POST',
    url: 'https://api.example.test/v1/items',
    headers: Object.freeze({ 'Content-Type': 'application/json', authorization: 'Bearer old-fake-token' }),
    query: Object.freeze({ page: '2' }),
    body: '{"a":1}',
  }) as OutgoingRequest;

  it('replaces a header of the same name in any case, keeping the new spelling', () => {
    const result = withHeader(request, 'Authorization', 'Bearer new-fake-token');
    expect(result.headers).toEqual({
      'Content-Type': 'application/json',
      Authorization: 'Bearer new-fake-token',
    });
    expect(withHeader(request, 'CONTENT-TYPE', 'text/plain').headers).toEqual({
      authorization: 'Bearer old-fake-token',
      'CONTENT-TYPE': 'text/plain',
    });
  });

  it('adds a header that was not there', () => {
    expect(withHeader(request, 'X-Api-Key', 'fake-key').headers).toEqual({
      ...request.headers,
      'X-Api-Key': 'fake-key',
    });
  });

  it('returns a new request and leaves the original untouched', () => {
    const result = withHeader(request, 'Authorization', 'Bearer new-fake-token');
    expect(result).not.toBe(request);
    expect(result.headers).not.toBe(request.headers);
    expect(request.headers).toEqual({
      'Content-Type': 'application/json',
      authorization: 'Bearer old-fake-token',
    });
    expect(result).toMatchObject({ method: 'POST', url: request.url, query: { page: '2' }, body: '{"a":1}' });
  });
});

describe('joinUrl', () => {
  it.each([
    ['https://api.example.test', '/v3/scopes', 'https://api.example.test/v3/scopes'],
    ['https://api.example.test/', '/v3/scopes', 'https://api.example.test/v3/scopes'],
    ['https://api.example.test', 'v3/scopes', 'https://api.example.test/v3/scopes'],
    ['https://api.example.test//', '//v3/scopes', 'https://api.example.test/v3/scopes'],
    ['https://slack.com/api', '/auth.test', 'https://slack.com/api/auth.test'],
    ['http://127.0.0.1:4010/fake/', 'services/T1/B1/X1', 'http://127.0.0.1:4010/fake/services/T1/B1/X1'],
  ])('joins %s and %s without doubling or losing slashes', (base, path, expected) => {
    expect(joinUrl(base, path)).toBe(expected);
  });
});

describe('baseUrlVariable', () => {
  it('names the override of an integration default base URL', () => {
    expect(baseUrlVariable('sendgrid')).toBe('LATCHKEY_BASE_URL_SENDGRID');
    expect(baseUrlVariable('slack', 'default')).toBe('LATCHKEY_BASE_URL_SLACK');
    expect(baseUrlVariable('http-request')).toBe('LATCHKEY_BASE_URL_HTTP_REQUEST');
  });

  it('names the override of a variant, upper-cased', () => {
    expect(baseUrlVariable('mailgun', 'eu')).toBe('LATCHKEY_BASE_URL_MAILGUN_EU');
    expect(baseUrlVariable('mailgun', 'us')).toBe('LATCHKEY_BASE_URL_MAILGUN_US');
    expect(baseUrlVariable('slack', 'hooks')).toBe('LATCHKEY_BASE_URL_SLACK_HOOKS');
    expect(baseUrlVariable('my-service', 'eu-west')).toBe('LATCHKEY_BASE_URL_MY_SERVICE_EU_WEST');
  });
});
