import type { HttpResponse, OutgoingRequest, RequestContext } from '@latchkey/core';
import { describeActionConformance } from '@latchkey/core/testing';
import { describe, expect, it } from 'vitest';
import { postMessage } from './action.js';
import { slack, slackWebhook } from './index.js';

describeActionConformance(slack);

type Params = Parameters<typeof postMessage>[0]['params'];

const FAKE_WEBHOOK = 'https://hooks.slack.com/services/TFAKE/BFAKE/fakefakefakefake';

/**
 * An action context whose `send` records each request and answers `response`. For a webhook credential it
 * applies the webhook's `authenticate`, as the server does, so the recorded request has the webhook URL.
 */
function fakeContext(
  type: 'slackBotToken' | 'slackWebhook',
  params: Params,
  response: Partial<HttpResponse> = {},
  bases: Record<string, string> = {},
) {
  const sent: OutgoingRequest[] = [];
  const baseUrl = (variant = 'default') => bases[variant] ?? slack.baseUrls[variant] ?? '';
  const requestContext: RequestContext = { baseUrl };
  const ctx = {
    params,
    credential: { type, publicFields: {} },
    baseUrl,
    send: async (request: OutgoingRequest): Promise<HttpResponse> => {
      sent.push(
        type === 'slackWebhook'
          ? slackWebhook.authenticate({ webhookUrl: FAKE_WEBHOOK }, request, requestContext)
          : request,
      );
      return { status: 200, headers: {}, body: '{"ok":true,"channel":"C0FAKE","ts":"1.2"}', ...response };
    },
  };
  return { ctx, sent };
}

describe('Slack action with a bot token', () => {
  it('posts chat.postMessage as JSON with the channel and the text', async () => {
    const { ctx, sent } = fakeContext('slackBotToken', {
      channel: '#deploys',
      text: 'Deploy finished\nAll green',
    });
    await postMessage(ctx);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({
      method: 'POST',
      url: 'https://slack.com/api/chat.postMessage',
      headers: { 'Content-Type': 'application/json; charset=utf-8' },
    });
    expect(JSON.parse(sent[0]?.body ?? '')).toEqual({
      channel: '#deploys',
      text: 'Deploy finished\nAll green',
    });
  });

  it('uses the configured base URL', async () => {
    const { ctx, sent } = fakeContext(
      'slackBotToken',
      { channel: 'C0FAKE', text: 'hi' },
      {},
      {
        default: 'http://127.0.0.1:4010/fake-slack/api/',
      },
    );
    await postMessage(ctx);
    expect(sent[0]?.url).toBe('http://127.0.0.1:4010/fake-slack/api/chat.postMessage');
  });

  it('reports the channel Slack posted to', async () => {
    const { ctx } = fakeContext('slackBotToken', { channel: '#deploys', text: 'hi' });
    expect(await postMessage(ctx)).toEqual({ ok: true, summary: 'Message posted to C0FAKE' });
  });

  it('requires a channel, sending nothing without one', async () => {
    const { ctx, sent } = fakeContext('slackBotToken', { text: 'hi' });
    expect(await postMessage(ctx)).toEqual({
      ok: false,
      summary: 'A channel is required when posting with a bot token',
    });
    expect(sent).toEqual([]);
  });

  it.each(['invalid_auth', 'not_authed', 'token_revoked', 'account_inactive', 'invalid_token'])(
    'reports ok:false with %s (HTTP 200) as the credential rejected',
    async (error) => {
      const { ctx } = fakeContext(
        'slackBotToken',
        { channel: 'C0FAKE', text: 'hi' },
        { body: JSON.stringify({ ok: false, error }) },
      );
      expect(await postMessage(ctx)).toEqual({
        ok: false,
        summary: `The credential was rejected by Slack (${error})`,
      });
    },
  );

  it.each([401, 403])('reports HTTP %i as the credential rejected', async (status) => {
    const { ctx } = fakeContext('slackBotToken', { channel: 'C0FAKE', text: 'hi' }, { status, body: '' });
    expect(await postMessage(ctx)).toEqual({
      ok: false,
      summary: `The credential was rejected by Slack (HTTP ${status})`,
    });
  });

  it('reports rate limiting', async () => {
    const { ctx } = fakeContext(
      'slackBotToken',
      { channel: 'C0FAKE', text: 'hi' },
      {
        status: 429,
        body: '{"ok":false,"error":"ratelimited"}',
      },
    );
    expect(await postMessage(ctx)).toEqual({
      ok: false,
      summary: 'Slack is rate limiting requests (ratelimited)',
    });
  });

  it('reports Slack’s error when it refuses the message', async () => {
    const { ctx } = fakeContext(
      'slackBotToken',
      { channel: 'C0FAKE', text: 'hi' },
      {
        body: '{"ok":false,"error":"channel_not_found"}',
      },
    );
    expect(await postMessage(ctx)).toEqual({
      ok: false,
      summary: 'Slack refused the message (channel_not_found)',
    });
  });

  it('branches on ok, not on the status: HTTP 200 without ok:true is a failure', async () => {
    const { ctx } = fakeContext(
      'slackBotToken',
      { channel: 'C0FAKE', text: 'hi' },
      { body: '<html></html>' },
    );
    expect(await postMessage(ctx)).toEqual({ ok: false, summary: 'Slack refused the message (HTTP 200)' });
  });
});

describe('Slack action with an incoming webhook', () => {
  it('posts the text as JSON to the webhook URL, without a channel', async () => {
    const { ctx, sent } = fakeContext(
      'slackWebhook',
      { channel: '#ignored', text: 'Deploy finished' },
      { body: 'ok' },
    );
    await postMessage(ctx);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({
      method: 'POST',
      url: FAKE_WEBHOOK,
      headers: { 'Content-Type': 'application/json; charset=utf-8' },
    });
    expect(JSON.parse(sent[0]?.body ?? '')).toEqual({ text: 'Deploy finished' });
  });

  it('posts to the overridden hooks base URL', async () => {
    const { ctx, sent } = fakeContext(
      'slackWebhook',
      { text: 'hi' },
      { body: 'ok' },
      { hooks: 'http://127.0.0.1:4010' },
    );
    await postMessage(ctx);
    expect(sent[0]?.url).toBe('http://127.0.0.1:4010/services/TFAKE/BFAKE/fakefakefakefake');
  });

  it('reports a posted message without naming the webhook', async () => {
    const { ctx } = fakeContext('slackWebhook', { text: 'hi' }, { body: 'ok' });
    const result = await postMessage(ctx);
    expect(result).toEqual({ ok: true, summary: 'Message posted through the Slack webhook' });
    expect(result.summary).not.toContain('fakefakefakefake');
  });

  it.each([
    [403, 'invalid_token', 'The credential was rejected by Slack (invalid_token)'],
    [404, 'no_service', 'The credential was rejected by Slack (no_service)'],
    [410, 'channel_is_archived', 'Slack refused the message (HTTP 410: channel_is_archived)'],
    [400, 'invalid_payload', 'Slack refused the message (HTTP 400: invalid_payload)'],
    [401, '', 'The credential was rejected by Slack (HTTP 401)'],
    [500, '', 'Slack refused the message (HTTP 500)'],
  ])('reads HTTP %i %j as %j', async (status, body, summary) => {
    const { ctx } = fakeContext('slackWebhook', { text: 'hi' }, { status, body });
    expect(await postMessage(ctx)).toEqual({ ok: false, summary });
  });
});
