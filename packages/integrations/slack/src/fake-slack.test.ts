/**
 * The credential test and the action against the fake Slack (fake-slack.ts), over real HTTP, with a bot
 * token and with an incoming webhook: `send` does what the server's runner does, minus its guard and limits
 * (it applies `authenticate`, then sends).
 */
import type { HttpResponse, OutgoingRequest, RequestContext } from '@latchkey/core';
import { type FakeService, performRequest } from '@latchkey/core/testing/fake-service';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fakeSlack } from './fake-slack.js';
import { slack, slackBotToken, slackWebhook } from './index.js';

const TOKEN = { token: 'xoxb-fake-bot-token' };
const WEBHOOK = { webhookUrl: 'https://hooks.slack.com/services/TFAKE/BFAKE/fakewebhooksecret' };

let fake: FakeService;
let ctx: RequestContext;

beforeAll(async () => {
  fake = await fakeSlack().listen();
  // As LATCHKEY_BASE_URL_SLACK (`<url>/api`) and LATCHKEY_BASE_URL_SLACK_HOOKS (`<url>`) would.
  ctx = { baseUrl: (variant) => (variant === 'hooks' ? fake.url : `${fake.url}/api`) };
});
afterAll(() => fake.close());
beforeEach(() => {
  fake.reset();
});

const withToken = (request: OutgoingRequest): Promise<HttpResponse> =>
  performRequest(slackBotToken.authenticate(TOKEN, request, ctx));
const withWebhook = (request: OutgoingRequest): Promise<HttpResponse> =>
  performRequest(slackWebhook.authenticate(WEBHOOK, request, ctx));

describe('Slack credential test, against a fake Slack', () => {
  it('calls auth.test with the bot token and reads ok:true as accepted, invalid_auth as rejected', async () => {
    const test = slackBotToken.test;
    if (!test) throw new Error('Slack bot tokens have a test request');
    expect(test.interpret(await withToken(test.request({}, ctx)))).toEqual({
      ok: true,
      message: 'Slack accepted the token for workspace Fake Team.',
    });
    expect(fake.only()).toMatchObject({ method: 'POST', path: '/api/auth.test' });
    expect(fake.only().headers.authorization).toBe(`Bearer ${TOKEN.token}`);
    fake.respond({ kind: 'unauthorized' });
    expect(test.interpret(await withToken(test.request({}, ctx)))).toEqual({
      ok: false,
      message: 'The credential was rejected by Slack (invalid_auth).',
    });
  });
});

describe('Slack "post a message" action, against a fake Slack', () => {
  it('posts to chat.postMessage with a bot token, naming the channel', async () => {
    const result = await slack.action({
      params: { channel: 'C0FAKECHAN', text: 'Deploy finished' },
      credential: { type: 'slackBotToken', publicFields: {} },
      baseUrl: ctx.baseUrl,
      send: withToken,
    });
    expect(result).toEqual({ ok: true, summary: 'Message posted to C0FAKECHAN' });
    expect(fake.only()).toMatchObject({ method: 'POST', path: '/api/chat.postMessage' });
    expect(JSON.parse(fake.only().body)).toEqual({ channel: 'C0FAKECHAN', text: 'Deploy finished' });
  });

  it('posts to the webhook’s own path with an incoming webhook', async () => {
    const result = await slack.action({
      params: { text: 'Deploy finished' },
      credential: { type: 'slackWebhook', publicFields: {} },
      baseUrl: ctx.baseUrl,
      send: withWebhook,
    });
    expect(result).toEqual({ ok: true, summary: 'Message posted through the Slack webhook' });
    expect(fake.only()).toMatchObject({ method: 'POST', path: '/services/TFAKE/BFAKE/fakewebhooksecret' });
  });
});
