import { createRegistry, type HttpResponse, type OutgoingRequest, type RequestContext } from '@latchkey/core';
import { describeCredentialConformance, expectRefused } from '@latchkey/core/testing';
import { describe, expect, it } from 'vitest';
import { parseSlackBody } from './credentials.js';
import { slack, slackBotToken, slackOAuth, slackWebhook } from './index.js';

describeCredentialConformance(slack, {
  secretGoesIn: {
    slackBotToken: ['header:authorization'],
    slackWebhook: ['url'],
    slackOAuth: ['header:authorization'],
  },
});

const registry = createRegistry([slack]);
const FAKE_TOKEN = 'xoxb-fake-fake-fakefakefake';
const FAKE_WEBHOOK = 'https://hooks.slack.com/services/TFAKE/BFAKE/fakefakefakefake';

/** A request context with Slack's real base URLs, or overrides per variant. */
const ctx = (overrides: Record<string, string> = {}): RequestContext => ({
  baseUrl: (variant = 'default') => {
    const base = overrides[variant] ?? slack.baseUrls[variant];
    if (!base) throw new Error(`Slack has no base URL variant ${variant}`);
    return base;
  },
});
const response = (status: number, body: unknown): HttpResponse => ({
  status,
  headers: { 'content-type': 'application/json' },
  body: typeof body === 'string' ? body : JSON.stringify(body),
});

describe('Slack bot token samples', () => {
  it.each([FAKE_TOKEN, 'xoxb-FAKE0fake', 'xoxb-fake'])('accepts %s as a secret', (token) => {
    expect(registry.validateCredential('slackBotToken', { token })).toEqual({
      ok: true,
      value: {
        credentialType: 'slackBotToken',
        integrationId: 'slack',
        nodeType: 'slack',
        publicFields: {},
        secretFields: { token },
      },
    });
  });

  it.each([
    ['a user token', 'xoxp-fake-fake-fakefake'],
    ['an app token', 'xapp-fake-fake-fakefake'],
    ['a Bearer prefix', `Bearer ${FAKE_TOKEN}`],
    ['a space', 'xoxb-fake fake'],
    ['an upper-case prefix', 'XOXB-fake-fake'],
    ['an underscore', 'xoxb-fake_fake'],
  ])('refuses %s, saying what a bot token looks like', (_what, token) => {
    const data = { token };
    expect(expectRefused(registry.validateCredential('slackBotToken', data), data)).toEqual([
      {
        path: ['token'],
        message: 'A Slack bot token starts with `xoxb-`, followed by letters, digits and hyphens.',
      },
    ]);
  });

  it('refuses a bare prefix without repeating it, even though the format message names the prefix', () => {
    const data = { token: 'xoxb-' };
    expect(expectRefused(registry.validateCredential('slackBotToken', data), data)).toEqual([
      { path: ['token'], message: 'Invalid value' },
    ]);
  });

  it.each([
    ['NUL', '\u0000'],
    ['CR', '\r'],
    ['LF', '\n'],
    ['ESC', '\u001b'],
  ])('refuses a token with a %s', (_what, char) => {
    const data = { token: `xoxb-fake${char}fake` };
    expect(expectRefused(registry.validateCredential('slackBotToken', data), data)).toEqual([
      { path: ['token'], message: 'Must not contain control characters' },
    ]);
  });

  it('refuses a missing, empty, non-text or oversized token and unknown fields', () => {
    expect(expectRefused(registry.validateCredential('slackBotToken', {}), {})).toEqual([
      { path: ['token'], message: 'Required' },
    ]);
    const empty = { token: '' };
    expect(expectRefused(registry.validateCredential('slackBotToken', empty), empty)[0]).toEqual({
      path: ['token'],
      message: 'Required',
    });
    const wrong = { token: { value: FAKE_TOKEN } };
    expect(expectRefused(registry.validateCredential('slackBotToken', wrong), wrong)).toEqual([
      { path: ['token'], message: 'Must be text' },
    ]);
    const long = { token: `xoxb-${'f'.repeat(8192)}` };
    expect(expectRefused(registry.validateCredential('slackBotToken', long), long)).toEqual([
      { path: ['token'], message: 'Must be at most 8192 characters' },
    ]);
    const extra = { token: FAKE_TOKEN, signingSecret: 'fake-signing-secret' };
    expect(expectRefused(registry.validateCredential('slackBotToken', extra), extra)).toEqual([
      { path: ['signingSecret'], message: 'Unknown field' },
    ]);
  });

  it('refuses a webhook URL submitted as a bot token', () => {
    const data = { webhookUrl: FAKE_WEBHOOK };
    const issues = expectRefused(registry.validateCredential('slackBotToken', data), data);
    expect(issues).toEqual([
      { path: ['token'], message: 'Required' },
      { path: ['webhookUrl'], message: 'Unknown field' },
    ]);
  });
});

describe('Slack webhook samples', () => {
  it('accepts an incoming-webhook URL and keeps it secret', () => {
    expect(registry.validateCredential('slackWebhook', { webhookUrl: FAKE_WEBHOOK })).toEqual({
      ok: true,
      value: {
        credentialType: 'slackWebhook',
        integrationId: 'slack',
        nodeType: 'slack',
        publicFields: {},
        secretFields: { webhookUrl: FAKE_WEBHOOK },
      },
    });
  });

  it.each([
    ['plain http', 'http://hooks.slack.com/services/TFAKE/BFAKE/fakefakefake'],
    ['another host', 'https://hooks.example.test/services/TFAKE/BFAKE/fakefakefake'],
    ['a look-alike host', 'https://hooks.slack.com.example.test/services/TFAKE/BFAKE/fakefakefake'],
    ['user info before the host', 'https://hooks.slack.com@example.test/services/TFAKE/BFAKE/fake'],
    ['a missing part', 'https://hooks.slack.com/services/TFAKE/BFAKE'],
    ['an extra part', 'https://hooks.slack.com/services/TFAKE/BFAKE/fake/extra'],
    ['a query', 'https://hooks.slack.com/services/TFAKE/BFAKE/fakefake?x=1'],
    ['a workflow URL', 'https://hooks.slack.com/workflows/TFAKE/AFAKE/1/fakefake'],
    ['a trailing space', `${FAKE_WEBHOOK} `],
  ])('refuses a URL with %s', (_what, webhookUrl) => {
    const data = { webhookUrl };
    expect(expectRefused(registry.validateCredential('slackWebhook', data), data)).toEqual([
      {
        path: ['webhookUrl'],
        message:
          'A Slack webhook URL has the form `https://hooks.slack.com/services/T…/B…/…`, with three parts after `services/`.',
      },
    ]);
  });

  it('refuses a URL with a line break', () => {
    const data = { webhookUrl: `${FAKE_WEBHOOK}\nX-Injected: yes` };
    expect(expectRefused(registry.validateCredential('slackWebhook', data), data)).toEqual([
      { path: ['webhookUrl'], message: 'Must not contain control characters' },
    ]);
  });

  it('describes both credential types with their single secret field', () => {
    const [bot, webhook] = registry.describe()[0]?.credentialTypes ?? [];
    expect(bot?.jsonSchema).toMatchObject({
      additionalProperties: false,
      required: ['token'],
      properties: { token: { secret: true, formatHint: 'Starts with `xoxb-`.' } },
    });
    expect(webhook?.jsonSchema).toMatchObject({
      additionalProperties: false,
      required: ['webhookUrl'],
      properties: { webhookUrl: { secret: true } },
    });
  });
});

describe('Slack authenticate', () => {
  const request: OutgoingRequest = Object.freeze({
    method: 'POST',
    url: 'https://slack.com/api/chat.postMessage',
    headers: Object.freeze({
      'Content-Type': 'application/json; charset=utf-8',
      authorization: 'Bearer stale',
    }),
    body: '{"channel":"C0FAKE","text":"hi"}',
  }) as OutgoingRequest;

  it('sends a bot token as "Authorization: Bearer <token>", replacing any other Authorization header', () => {
    expect(slackBotToken.authenticate({ token: FAKE_TOKEN }, request, ctx()).headers).toEqual({
      'Content-Type': 'application/json; charset=utf-8',
      Authorization: `Bearer ${FAKE_TOKEN}`,
    });
  });

  it('sends a webhook post to the webhook URL itself, adding no header', () => {
    const result = slackWebhook.authenticate({ webhookUrl: FAKE_WEBHOOK }, { ...request, url: '' }, ctx());
    expect(result).toEqual({ ...request, url: FAKE_WEBHOOK });
  });

  it('sends a webhook post to the overridden hooks base URL, keeping the secret path', () => {
    const overridden = ctx({ hooks: 'http://127.0.0.1:4010/fake-hooks/' });
    const result = slackWebhook.authenticate({ webhookUrl: FAKE_WEBHOOK }, request, overridden);
    expect(result.url).toBe('http://127.0.0.1:4010/fake-hooks/services/TFAKE/BFAKE/fakefakefakefake');
  });

  it('is pure for both types: the input is untouched and method, body and headers are kept', () => {
    const before = structuredClone(request);
    const bot = slackBotToken.authenticate({ token: FAKE_TOKEN }, request, ctx());
    const hook = slackWebhook.authenticate({ webhookUrl: FAKE_WEBHOOK }, request, ctx());
    expect(request).toEqual(before);
    for (const result of [bot, hook]) {
      expect(result).not.toBe(request);
      expect(result).toMatchObject({ method: 'POST', body: request.body });
      expect(result.headers['Content-Type']).toBe('application/json; charset=utf-8');
    }
    expect(bot.url).toBe(request.url);
  });
});

describe('Slack credential test', () => {
  const test = slackBotToken.test;

  it('asks POST /auth.test at the configured base URL', () => {
    expect(test?.request({}, ctx())).toEqual({
      method: 'POST',
      url: 'https://slack.com/api/auth.test',
      headers: {},
    });
    expect(test?.request({}, ctx({ default: 'http://127.0.0.1:4010/fake-slack/api' })).url).toBe(
      'http://127.0.0.1:4010/fake-slack/api/auth.test',
    );
  });

  it('accepts a token that Slack accepts, naming the workspace', () => {
    expect(test?.interpret(response(200, { ok: true, team: 'Fake Team', user: 'latchkey' }))).toEqual({
      ok: true,
      message: 'Slack accepted the token for workspace Fake Team.',
    });
    expect(test?.interpret(response(200, { ok: true }))).toEqual({
      ok: true,
      message: 'Slack accepted the token.',
    });
  });

  it.each(['invalid_auth', 'not_authed', 'token_revoked', 'account_inactive'])(
    'reads HTTP 200 with ok:false and %s as the credential rejected',
    (error) => {
      expect(test?.interpret(response(200, { ok: false, error }))).toEqual({
        ok: false,
        message: `The credential was rejected by Slack (${error}).`,
      });
    },
  );

  it.each([401, 403])('reads HTTP %i as the credential rejected', (status) => {
    expect(test?.interpret(response(status, ''))).toEqual({
      ok: false,
      message: `The credential was rejected by Slack (HTTP ${status}).`,
    });
  });

  it.each([
    [404, '', 'Slack answered with HTTP 404.'],
    [429, { ok: false, error: 'ratelimited' }, 'Slack answered with ratelimited.'],
    [429, '', 'Slack answered with HTTP 429.'],
    [500, '<html>oops</html>', 'Slack answered with HTTP 500.'],
    [200, { ok: false, error: 'missing_scope' }, 'Slack answered with missing_scope.'],
    [200, 'not json', 'Slack answered with HTTP 200.'],
  ])('reads HTTP %i %j as a failed check', (status, body, message) => {
    expect(test?.interpret(response(status, body))).toEqual({ ok: false, message });
  });

  it('has no test for webhooks, since Slack offers no check that does not post', () => {
    expect(slackWebhook.test).toBeUndefined();
  });
});

describe('parseSlackBody', () => {
  it('reads a JSON object and answers anything else with an empty body', () => {
    expect(parseSlackBody('{"ok":true,"channel":"C0FAKE"}')).toEqual({ ok: true, channel: 'C0FAKE' });
    expect(parseSlackBody('ok')).toEqual({});
    expect(parseSlackBody('null')).toEqual({});
    expect(parseSlackBody('')).toEqual({});
  });
});

describe('Slack app (OAuth)', () => {
  const oauth2 = slackOAuth.oauth2;
  const answer = (body: unknown, status = 200) => ({
    status,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

  it('reads a rotating bot token from oauth.v2.access, and shows the workspace and bot user', () => {
    const read = oauth2.readTokenResponse?.(
      answer({
        ok: true,
        access_token: 'xoxe.xoxb-fake-rotating-token',
        token_type: 'bot',
        scope: 'chat:write,channels:read',
        bot_user_id: 'UFAKEBOT',
        team: { id: 'TFAKE', name: 'Fake Team' },
        refresh_token: 'xoxe-1-fake-refresh-token',
        expires_in: 43200,
      }),
    );
    expect(read).toMatchObject({
      accessToken: 'xoxe.xoxb-fake-rotating-token',
      refreshToken: 'xoxe-1-fake-refresh-token',
      expiresIn: 43200,
      scope: 'chat:write,channels:read',
    });
    if (!read || 'error' in read) throw new Error('expected a token');
    expect(oauth2.account?.(read)).toBe('Fake Team · bot UFAKEBOT');
  });

  it('maps Slack’s ok:false answers to the OAuth2 errors the server acts on', () => {
    expect(oauth2.readTokenResponse?.(answer({ ok: false, error: 'invalid_refresh_token' }))).toEqual({
      error: 'invalid_grant',
    });
    expect(oauth2.readTokenResponse?.(answer({ ok: false, error: 'bad_client_secret' }))).toEqual({
      error: 'invalid_client',
    });
    expect(oauth2.readTokenResponse?.(answer('not json', 200))).toEqual({ error: 'http_200' });
  });

  it('asks for chat:write with comma-separated scopes, on Slack’s endpoints (overridable)', () => {
    expect(oauth2.scopeSeparator).toBe(',');
    expect(oauth2.defaultScopes).toEqual(['chat:write']);
    const endpoints = oauth2.endpoints(
      {},
      { baseUrl: (variant) => slack.baseUrls[variant ?? 'default'] ?? '' },
    );
    expect(endpoints).toEqual({
      authorizationUrl: 'https://slack.com/oauth/v2/authorize',
      tokenUrl: 'https://slack.com/api/oauth.v2.access',
    });
  });

  it('treats token_expired and invalid_auth as a rejected token (refresh once, send again)', () => {
    expect(oauth2.isTokenRejected?.(answer({ ok: false, error: 'token_expired' }))).toBe(true);
    expect(oauth2.isTokenRejected?.(answer({ ok: false, error: 'invalid_auth' }))).toBe(true);
    expect(oauth2.isTokenRejected?.(answer({ ok: false, error: 'channel_not_found' }))).toBe(false);
    expect(oauth2.isTokenRejected?.(answer({ ok: true }))).toBe(false);
  });
});
