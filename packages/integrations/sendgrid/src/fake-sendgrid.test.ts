/**
 * The credential test and the action against the fake SendGrid (fake-sendgrid.ts), over real HTTP: `send`
 * does what the server's runner does, minus its guard and limits (it applies `authenticate`, then sends).
 */
import type { HttpResponse, OutgoingRequest, RequestContext } from '@latchkey/core';
import { type FakeService, performRequest } from '@latchkey/core/testing/fake-service';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fakeSendgrid } from './fake-sendgrid.js';
import { sendgrid, sendgridApiKey } from './index.js';

const KEY = 'SG.fake-key-id.fake-accepted-secret';

let fake: FakeService;
let ctx: RequestContext;

beforeAll(async () => {
  fake = await fakeSendgrid({ acceptedKey: KEY }).listen();
  // As LATCHKEY_BASE_URL_SENDGRID would: the base URL of every request is the fake's.
  ctx = { baseUrl: () => fake.url };
});
afterAll(() => fake.close());
beforeEach(() => {
  fake.reset();
});

function send(request: OutgoingRequest, apiKey = KEY): Promise<HttpResponse> {
  return performRequest(sendgridApiKey.authenticate({ apiKey }, request, ctx));
}

describe('SendGrid credential test, against a fake SendGrid', () => {
  it('reads GET /v3/scopes with the accepted key as accepted, and another key as rejected', async () => {
    const test = sendgridApiKey.test;
    if (!test) throw new Error('SendGrid keys have a test request');
    expect(test.interpret(await send(test.request({}, ctx)))).toEqual({
      ok: true,
      message: 'SendGrid accepted the API key.',
    });
    expect(fake.only()).toMatchObject({ method: 'GET', path: '/v3/scopes' });
    expect(fake.only().headers.authorization).toBe(`Bearer ${KEY}`);
    expect(test.interpret(await send(test.request({}, ctx), 'SG.fake-key-id.fake-other-secret'))).toEqual({
      ok: false,
      message: 'The credential was rejected by SendGrid (invalid, expired or revoked key).',
    });
  });
});

describe('SendGrid "send an email" action, against a fake SendGrid', () => {
  it('posts the email to /v3/mail/send and reports it accepted', async () => {
    const result = await sendgrid.action({
      params: { from: 'sender@example.test', to: 'someone@example.test', subject: 'Hi', text: 'Hello' },
      credential: { type: 'sendgridApiKey', publicFields: {} },
      baseUrl: ctx.baseUrl,
      send: (request) => send(request),
    });
    expect(result).toEqual({ ok: true, summary: 'Email to 1 recipient accepted by SendGrid (202)' });
    const request = fake.only();
    expect(request).toMatchObject({ method: 'POST', path: '/v3/mail/send' });
    expect(JSON.parse(request.body)).toMatchObject({
      personalizations: [{ to: [{ email: 'someone@example.test' }] }],
      subject: 'Hi',
    });
  });
});
