/**
 * The credential test and the action against the fake Mailgun (fake-mailgun.ts), over real HTTP: `send`
 * does what the server's runner does, minus its guard and limits (it applies `authenticate`, then sends).
 */
import type { HttpResponse, OutgoingRequest, RequestContext } from '@latchkey/core';
import { type FakeService, performRequest } from '@latchkey/core/testing/fake-service';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fakeMailgun } from './fake-mailgun.js';
import { mailgun, mailgunApiKey } from './index.js';

const CREDENTIAL = { apiKey: 'fake-mailgun-api-key', domain: 'mg.example.test', region: 'eu' } as const;

let fake: FakeService;
let ctx: RequestContext;

beforeAll(async () => {
  fake = await fakeMailgun('eu', [CREDENTIAL.domain]).listen();
  // As LATCHKEY_BASE_URL_MAILGUN_EU would: the base URL of every request is the fake's.
  ctx = { baseUrl: () => fake.url };
});
afterAll(() => fake.close());
beforeEach(() => {
  fake.reset();
});

function send(request: OutgoingRequest): Promise<HttpResponse> {
  return performRequest(mailgunApiKey.authenticate(CREDENTIAL, request, ctx));
}

describe('Mailgun credential test, against a fake Mailgun', () => {
  it('looks the sending domain up and reads a known one as accepted, an unknown one as not found', async () => {
    const test = mailgunApiKey.test;
    if (!test) throw new Error('Mailgun keys have a test request');
    expect(test.interpret(await send(test.request(CREDENTIAL, ctx)))).toEqual({
      ok: true,
      message: 'Mailgun accepted the API key for this domain.',
    });
    expect(fake.only()).toMatchObject({ method: 'GET', path: '/v4/domains/mg.example.test' });
    expect(
      test.interpret(await send(test.request({ ...CREDENTIAL, domain: 'other.example.test' }, ctx))),
    ).toEqual({ ok: false, message: 'Mailgun does not know this domain in this region.' });
  });
});

describe('Mailgun "send an email" action, against a fake Mailgun', () => {
  it('posts the message to the domain’s messages and reports it queued', async () => {
    const result = await mailgun.action({
      params: { from: 'team@mg.example.test', to: 'someone@example.test', subject: 'Hi', text: 'Hello' },
      credential: { type: 'mailgunApiKey', publicFields: { domain: CREDENTIAL.domain, region: 'eu' } },
      baseUrl: ctx.baseUrl,
      send,
    });
    expect(result).toEqual({ ok: true, summary: 'Message queued by Mailgun for mg.example.test (EU)' });
    const request = fake.only();
    expect(request).toMatchObject({ method: 'POST', path: '/v3/mg.example.test/messages' });
    expect(Object.fromEntries(new URLSearchParams(request.body))).toMatchObject({
      to: 'someone@example.test',
    });
  });
});
