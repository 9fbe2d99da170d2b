import { createRegistry, type HttpResponse, type OutgoingRequest, type RequestContext } from '@latchkey/core';
import { describeCredentialConformance, expectRefused } from '@latchkey/core/testing';
import { describe, expect, it } from 'vitest';
import { mailgun, mailgunApiKey } from './index.js';

describeCredentialConformance(mailgun, {
  samples: {
    mailgunApiKey: {
      valid: [
        { apiKey: 'fake-mailgun-api-key', domain: 'mg.example.com', region: 'us' },
        { apiKey: 'fake-mailgun-api-key', domain: 'mg.example.com', region: 'eu' },
      ],
      invalid: [{ apiKey: 'fake-mailgun-api-key', domain: 'not a domain', region: 'us' }],
    },
  },
  secretGoesIn: { mailgunApiKey: ['header:authorization'] },
});

const registry = createRegistry([mailgun]);
const FAKE_KEY = 'fake-mailgun-key-0000';
const valid = { apiKey: FAKE_KEY, domain: 'mg.example.com', region: 'us' } as const;
const BASES: Record<string, string> = {
  us: 'http://127.0.0.1:4010/fake-us',
  eu: 'http://127.0.0.1:4011/fake-eu/',
};
const ctx: RequestContext = {
  baseUrl: (variant = 'default') => {
    const base = BASES[variant];
    if (!base) throw new Error(`Mailgun has no base URL variant ${variant}`);
    return base;
  },
};
const response = (status: number, body = ''): HttpResponse => ({ status, headers: {}, body });

describe('Mailgun credential samples', () => {
  it.each([
    valid,
    { ...valid, region: 'eu' },
    { ...valid, domain: 'mail.sub.example.co.uk' },
    { ...valid, domain: 'MG.Example.COM' },
    { ...valid, apiKey: 'fake0000-fake1111-fake2222' },
  ])('accepts %o, keeping domain and region public and the key secret', (data) => {
    const result = registry.validateCredential('mailgunApiKey', data);
    expect(result).toEqual({
      ok: true,
      value: {
        credentialType: 'mailgunApiKey',
        integrationId: 'mailgun',
        nodeType: 'mailgun',
        publicFields: { domain: data.domain, region: data.region },
        secretFields: { apiKey: data.apiKey },
      },
    });
  });

  it.each(['EU', 'asia', 'us-east', ''])('refuses region %j, listing the regions', (region) => {
    const data = { ...valid, region };
    expect(expectRefused(registry.validateCredential('mailgunApiKey', data), data)).toEqual([
      { path: ['region'], message: 'Must be one of: us, eu' },
    ]);
  });

  it.each([
    ['no dot', 'localhost'],
    ['an empty label', 'mg..example.com'],
    ['a label starting with a dash', '-mg.example.com'],
    ['a numeric top-level label', 'mg.example.123'],
  ])('refuses a domain with %s, saying what a sending domain is', (_what, domain) => {
    const data = { ...valid, domain };
    expect(expectRefused(registry.validateCredential('mailgunApiKey', data), data)).toEqual([
      { path: ['domain'], message: 'A sending domain is a full domain name, like `mg.example.com`.' },
    ]);
  });

  it.each([
    ['a scheme', 'https://mg.example.com', 'This is not a domain — leave out `https://`.'],
    ['a path', 'mg.example.com/path', 'This is not a domain — leave out the path.'],
    ['a space', 'mg example.com', 'This is not a domain — a domain has no spaces.'],
  ])('refuses a domain with %s, saying what to change', (_what, domain, message) => {
    const data = { ...valid, domain };
    expect(expectRefused(registry.validateCredential('mailgunApiKey', data), data)).toEqual([
      { path: ['domain'], message },
    ]);
  });

  it('does not repeat a domain that happens to appear in the format message', () => {
    const data = { ...valid, domain: 'example' };
    expect(expectRefused(registry.validateCredential('mailgunApiKey', data), data)).toEqual([
      { path: ['domain'], message: 'Invalid value' },
    ]);
  });

  it('refuses a domain over 253 characters', () => {
    const data = { ...valid, domain: `${'a'.repeat(60)}.`.repeat(5).concat('com') };
    expect(expectRefused(registry.validateCredential('mailgunApiKey', data), data)[0]?.path).toEqual([
      'domain',
    ]);
  });

  it.each([
    ['NUL', '\u0000'],
    ['CR', '\r'],
    ['LF', '\n'],
    ['ESC', '\u001b'],
  ])('refuses a key with a %s', (_what, char) => {
    const data = { ...valid, apiKey: `fake-mailgun${char}key` };
    expect(expectRefused(registry.validateCredential('mailgunApiKey', data), data)).toEqual([
      { path: ['apiKey'], message: 'Must not contain control characters' },
    ]);
  });

  it('names each missing field', () => {
    expect(
      expectRefused(registry.validateCredential('mailgunApiKey', { apiKey: FAKE_KEY }), {
        apiKey: FAKE_KEY,
      }),
    ).toEqual([
      { path: ['domain'], message: 'Required' },
      { path: ['region'], message: 'Required' },
    ]);
  });

  it('refuses wrong types, empty strings and unknown fields without echoing them', () => {
    const data = { apiKey: '', domain: 12345678, region: 'eu', password: 'fake-mailgun-password' };
    const issues = expectRefused(registry.validateCredential('mailgunApiKey', data), data);
    expect(issues).toContainEqual({ path: ['apiKey'], message: 'Required' });
    expect(issues).toContainEqual({ path: ['domain'], message: 'Must be text' });
    expect(issues).toContainEqual({ path: ['password'], message: 'Unknown field' });
  });

  it('refuses a key over 8 KiB', () => {
    const data = { ...valid, apiKey: `fake-${'k'.repeat(8192)}` };
    expect(expectRefused(registry.validateCredential('mailgunApiKey', data), data)).toEqual([
      { path: ['apiKey'], message: 'Must be at most 8192 characters' },
    ]);
  });

  it('describes the key as secret, the domain as shown, and the region as an enum', () => {
    expect(registry.describe()[0]?.credentialTypes[0]?.jsonSchema).toMatchObject({
      additionalProperties: false,
      required: ['apiKey', 'domain', 'region'],
      properties: {
        apiKey: { secret: true },
        domain: { secret: false, pattern: expect.any(String) },
        region: { secret: false, enum: ['us', 'eu'] },
      },
    });
  });
});

describe('Mailgun authenticate', () => {
  const request: OutgoingRequest = Object.freeze({
    method: 'POST',
    url: 'https://api.mailgun.net/v3/mg.example.com/messages',
    headers: Object.freeze({ 'Content-Type': 'application/x-www-form-urlencoded', AUTHORIZATION: 'stale' }),
    body: 'to=a%40example.com',
  }) as OutgoingRequest;

  it('sends Basic auth of api:<key>, replacing any other Authorization header', () => {
    const result = mailgunApiKey.authenticate(valid, request, ctx);
    expect(result.headers).toEqual({
      'Content-Type': 'application/x-www-form-urlencoded',
      Authorization: `Basic ${Buffer.from(`api:${FAKE_KEY}`, 'utf8').toString('base64')}`,
    });
  });

  it('is pure: the input request is untouched and method, URL and body are kept', () => {
    const before = structuredClone(request);
    const result = mailgunApiKey.authenticate({ ...valid, region: 'eu' }, request, ctx);
    expect(request).toEqual(before);
    expect(result).toMatchObject({ method: 'POST', url: request.url, body: request.body });
  });
});

describe('Mailgun credential test', () => {
  const test = mailgunApiKey.test;

  it('asks GET /v4/domains/{domain} at the base URL of the region', () => {
    expect(test?.request({ domain: 'mg.example.com', region: 'us' }, ctx)).toEqual({
      method: 'GET',
      url: 'http://127.0.0.1:4010/fake-us/v4/domains/mg.example.com',
      headers: {},
    });
    expect(test?.request({ domain: 'mg.example.com', region: 'eu' }, ctx).url).toBe(
      'http://127.0.0.1:4011/fake-eu/v4/domains/mg.example.com',
    );
  });

  it('targets the real regional hosts by default', () => {
    const real: RequestContext = { baseUrl: (variant = 'default') => mailgun.baseUrls[variant] ?? '' };
    expect(test?.request({ domain: 'mg.example.com', region: 'eu' }, real).url).toBe(
      'https://api.eu.mailgun.net/v4/domains/mg.example.com',
    );
    expect(test?.request({ domain: 'mg.example.com', region: 'us' }, real).url).toBe(
      'https://api.mailgun.net/v4/domains/mg.example.com',
    );
  });

  it.each([
    [200, { ok: true, message: 'Mailgun accepted the API key for this domain.' }],
    [
      401,
      {
        ok: false,
        message:
          'The credential was rejected by Mailgun (wrong key, wrong region, or a sending key, which cannot be tested).',
      },
    ],
    [
      403,
      {
        ok: false,
        message:
          'The credential was rejected by Mailgun (wrong key, wrong region, or a sending key, which cannot be tested).',
      },
    ],
    [404, { ok: false, message: 'Mailgun does not know this domain in this region.' }],
    [429, { ok: false, message: 'Mailgun answered with HTTP 429.' }],
    [500, { ok: false, message: 'Mailgun answered with HTTP 500.' }],
  ])('reads HTTP %i as %o', (status, outcome) => {
    expect(test?.interpret(response(status, `{"message":"Invalid private key ${FAKE_KEY}"}`))).toEqual(
      outcome,
    );
  });
});
