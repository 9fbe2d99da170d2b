import { createRegistry, type HttpResponse, type OutgoingRequest, type RequestContext } from '@latchkey/core';
import { describeCredentialConformance, expectRefused } from '@latchkey/core/testing';
import { describe, expect, it } from 'vitest';
import { sendgrid, sendgridApiKey } from './index.js';

describeCredentialConformance(sendgrid, {
  samples: {
    sendgridApiKey: {
      valid: [{ apiKey: 'SG.fake-key-id.fake-key-secret' }, { apiKey: 'SG.a.b' }],
      invalid: [
        { apiKey: 'sg.fake-key-id.fake-key-secret' },
        { apiKey: 'Bearer SG.fake-key-id.fake-key-secret' },
      ],
    },
  },
  secretGoesIn: { sendgridApiKey: ['header:authorization'] },
});

const registry = createRegistry([sendgrid]);
const FAKE_KEY = 'SG.fakefakefake.fakefakefake';
const ctx = (base = 'https://api.sendgrid.com'): RequestContext => ({
  baseUrl: (variant = 'default') => {
    if (variant !== 'default') throw new Error(`SendGrid has no base URL variant ${variant}`);
    return base;
  },
});
const response = (status: number, body = ''): HttpResponse => ({ status, headers: {}, body });

describe('SendGrid credential samples', () => {
  it.each([FAKE_KEY, 'SG.fake_id-1.fake-secret_2', 'SG.a.b'])(
    'accepts an API key shaped SG.<id>.<secret> (%s)',
    (apiKey) => {
      expect(registry.validateCredential('sendgridApiKey', { apiKey })).toEqual({
        ok: true,
        value: {
          credentialType: 'sendgridApiKey',
          integrationId: 'sendgrid',
          nodeType: 'sendgrid',
          publicFields: {},
          secretFields: { apiKey },
        },
      });
    },
  );

  it.each([
    ['a lower-case prefix', 'sg.fakefakefake.fakefakefake'],
    ['no prefix', 'fakefakefake.fakefakefake'],
    ['a single part', 'SG.fakefakefake'],
    ['an empty id', 'SG..fakefakefake'],
    ['three parts', 'SG.fake.fake.fakefakefake'],
    ['a leading space', ' SG.fakefakefake.fakefakefake'],
    ['a Bearer prefix', 'Bearer SG.fakefakefake.fakefakefake'],
    ['a character outside the key alphabet', 'SG.fake+fake.fakefakefake'],
  ])('refuses an API key with %s, saying what the format is', (_what, apiKey) => {
    const data = { apiKey };
    const issues = expectRefused(registry.validateCredential('sendgridApiKey', data), data);
    expect(issues).toEqual([
      {
        path: ['apiKey'],
        message: 'A SendGrid API key starts with `SG.` and has the form `SG.<id>.<secret>`.',
      },
    ]);
  });

  it.each([
    ['NUL', '\u0000'],
    ['CR', '\r'],
    ['LF', '\n'],
    ['ESC', '\u001b'],
  ])('refuses an API key with a %s', (_what, char) => {
    const data = { apiKey: `SG.fakefakefake.fake${char}fakefake` };
    const issues = expectRefused(registry.validateCredential('sendgridApiKey', data), data);
    expect(issues).toEqual([{ path: ['apiKey'], message: 'Must not contain control characters' }]);
  });

  it('refuses a missing, empty or non-text key', () => {
    expect(expectRefused(registry.validateCredential('sendgridApiKey', {}), {})).toEqual([
      { path: ['apiKey'], message: 'Required' },
    ]);
    const empty = { apiKey: '' };
    expect(expectRefused(registry.validateCredential('sendgridApiKey', empty), empty)[0]).toEqual({
      path: ['apiKey'],
      message: 'Required',
    });
    const wrong = { apiKey: [FAKE_KEY] };
    expect(expectRefused(registry.validateCredential('sendgridApiKey', wrong), wrong)).toEqual([
      { path: ['apiKey'], message: 'Must be text' },
    ]);
  });

  it('refuses unknown fields next to a good key, without echoing either', () => {
    const data = { apiKey: FAKE_KEY, apiSecret: 'SG.fakeother.fakeother' };
    expect(expectRefused(registry.validateCredential('sendgridApiKey', data), data)).toEqual([
      { path: ['apiSecret'], message: 'Unknown field' },
    ]);
  });

  it('refuses a key over 8 KiB, in characters or in bytes', () => {
    const long = { apiKey: `SG.fakefakefake.${'f'.repeat(8200)}` };
    expect(expectRefused(registry.validateCredential('sendgridApiKey', long), long)).toEqual([
      { path: ['apiKey'], message: 'Must be at most 8192 characters' },
    ]);
    const wide = { apiKey: `SG.fakefakefake.${'ü'.repeat(4100)}` };
    expect(expectRefused(registry.validateCredential('sendgridApiKey', wide), wide)).toEqual([
      { path: ['apiKey'], message: 'Must be at most 8192 bytes' },
    ]);
  });

  it('answers a non-object instead of throwing', () => {
    for (const data of [null, [FAKE_KEY], FAKE_KEY, 42]) {
      expect(expectRefused(registry.validateCredential('sendgridApiKey', data), data)).toEqual([
        { path: [], message: 'Must be an object of fields' },
      ]);
    }
  });

  it('describes the key as a secret with a format hint', () => {
    const schema = registry.describe()[0]?.credentialTypes[0]?.jsonSchema;
    expect(schema).toMatchObject({
      additionalProperties: false,
      required: ['apiKey'],
      properties: { apiKey: { secret: true, label: 'API key', formatHint: 'Starts with `SG.`.' } },
    });
  });
});

describe('SendGrid authenticate', () => {
  const request: OutgoingRequest = Object.freeze({
    method: 'POST',
    url: 'https://api.sendgrid.com/v3/mail/send',
    headers: Object.freeze({ 'Content-Type': 'application/json', authorization: 'Bearer stale' }),
    body: '{"subject":"hi"}',
  }) as OutgoingRequest;

  it('sends the key as "Authorization: Bearer <key>", replacing any other Authorization header', () => {
    const result = sendgridApiKey.authenticate({ apiKey: FAKE_KEY }, request, ctx());
    expect(result.headers).toEqual({
      'Content-Type': 'application/json',
      Authorization: `Bearer ${FAKE_KEY}`,
    });
  });

  it('is pure: the input request is untouched and method, URL and body are kept', () => {
    const before = structuredClone(request);
    const result = sendgridApiKey.authenticate({ apiKey: FAKE_KEY }, request, ctx());
    expect(request).toEqual(before);
    expect(result).toMatchObject({ method: 'POST', url: request.url, body: request.body });
  });
});

describe('SendGrid credential test', () => {
  const test = sendgridApiKey.test;

  it('asks GET /v3/scopes at the configured base URL', () => {
    expect(test?.request({}, ctx())).toEqual({
      method: 'GET',
      url: 'https://api.sendgrid.com/v3/scopes',
      headers: {},
    });
    expect(test?.request({}, ctx('http://127.0.0.1:4010/fake-sendgrid/')).url).toBe(
      'http://127.0.0.1:4010/fake-sendgrid/v3/scopes',
    );
  });

  it('authenticates the test request with the key', () => {
    const request = test?.request({}, ctx()) as OutgoingRequest;
    expect(sendgridApiKey.authenticate({ apiKey: FAKE_KEY }, request, ctx()).headers).toEqual({
      Authorization: `Bearer ${FAKE_KEY}`,
    });
  });

  it.each([
    [200, { ok: true, message: 'SendGrid accepted the API key.' }],
    [
      401,
      { ok: false, message: 'The credential was rejected by SendGrid (invalid, expired or revoked key).' },
    ],
    [
      403,
      { ok: false, message: 'The credential was rejected by SendGrid (invalid, expired or revoked key).' },
    ],
    [404, { ok: false, message: 'SendGrid answered with HTTP 404.' }],
    [429, { ok: false, message: 'SendGrid is rate limiting requests; try again shortly.' }],
    [500, { ok: false, message: 'SendGrid answered with HTTP 500.' }],
  ])('reads HTTP %i as %o', (status, outcome) => {
    expect(test?.interpret(response(status, '{"errors":[{"message":"authorization required"}]}'))).toEqual(
      outcome,
    );
  });

  it('never repeats what the service sent back', () => {
    const outcome = test?.interpret(response(401, `{"errors":[{"message":"${FAKE_KEY} is invalid"}]}`));
    expect(outcome?.message).not.toContain(FAKE_KEY);
  });
});
