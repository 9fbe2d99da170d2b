/**
 * The credential test and the action against a small fake Twilio on 127.0.0.1, over real HTTP: the fake
 * asserts what it receives (Basic auth, the account SID in the path, the form fields) and answers the way
 * Twilio does. `send` does what the server's runner does, minus its guard and limits: it applies the
 * credential's `authenticate` to the request and performs it.
 */
import type { HttpResponse, OutgoingRequest, RequestContext } from '@latchkey/core';
import { type FakeService, performRequest } from '@latchkey/core/testing/fake-service';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { fakeTwilio, INVALID_TO, FAKE_MESSAGE_SID as MESSAGE_SID } from './fake-twilio.js';
import { twilio, twilioApiCredentials, twilioApiKey } from './index.js';

const SID = 'ACfa4efa4efa4efa4efa4efa4efa4efa4e';
const TOKEN = 'fake-twilio-auth-token-1';
const KEY = { sid: 'SKfa4efa4efa4efa4efa4efa4efa4efa4e', secret: 'fake-twilio-api-key-secret-1' };

let fake: FakeService;
let ctx: RequestContext;

/** What a request carried, with its form body read as Twilio reads it. */
const received = () =>
  fake.requests.map((request) => ({
    ...request,
    form: Object.fromEntries(new URLSearchParams(request.body)),
  }));

beforeAll(async () => {
  fake = await fakeTwilio({ accountSid: SID, authToken: TOKEN, apiKey: KEY }).listen();
  // As LATCHKEY_BASE_URL_TWILIO would: the base URL of every request is the fake's.
  ctx = { baseUrl: () => fake.url };
});
afterAll(() => fake.close());
beforeEach(() => {
  fake.reset();
});

/** The credential applied by `authenticate`, then a real HTTP request. */
function send(
  request: OutgoingRequest,
  credential = { accountSid: SID, authToken: TOKEN },
): Promise<HttpResponse> {
  return performRequest(twilioApiCredentials.authenticate(credential, request, ctx));
}

async function testCredential(credential: { accountSid: string; authToken: string }) {
  const test = twilioApiCredentials.test;
  if (!test) throw new Error('Twilio credentials have a test request');
  return test.interpret(await send(test.request({ accountSid: credential.accountSid }, ctx), credential));
}

function runSms(params: { from: string; to: string; body: string }, authToken = TOKEN) {
  return twilio.action({
    params,
    credential: { type: 'twilioApiCredentials', publicFields: { accountSid: SID } },
    baseUrl: ctx.baseUrl,
    send: (request) => send(request, { accountSid: SID, authToken }),
  });
}

describe('Twilio credential test, against a fake Twilio', () => {
  it('fetches the account with Basic auth SID:token and reports success', async () => {
    expect(await testCredential({ accountSid: SID, authToken: TOKEN })).toEqual({
      ok: true,
      message: 'Twilio accepted the Account SID and Auth Token.',
    });
    expect(received()).toHaveLength(1);
    expect(received()[0]).toMatchObject({ method: 'GET', path: `/2010-04-01/Accounts/${SID}.json` });
    expect(received()[0]?.headers.authorization).toBe(
      `Basic ${Buffer.from(`${SID}:${TOKEN}`).toString('base64')}`,
    );
  });

  it('reports a wrong Auth Token as rejected by Twilio', async () => {
    expect(await testCredential({ accountSid: SID, authToken: 'fake-wrong-token' })).toEqual({
      ok: false,
      message: 'The credential was rejected by Twilio (wrong Account SID or Auth Token, or a rotated token).',
    });
  });
});

describe('Twilio API key credential, against a fake Twilio', () => {
  const credential = { accountSid: SID, apiKeySid: KEY.sid, apiKeySecret: KEY.secret };
  async function testKey(apiKeySecret: string) {
    const test = twilioApiKey.test;
    if (!test) throw new Error('Twilio API keys have a test request');
    const request = twilioApiKey.authenticate(
      { ...credential, apiKeySecret },
      test.request({ accountSid: SID, apiKeySid: KEY.sid }, ctx),
      ctx,
    );
    return test.interpret(await performRequest(request));
  }

  it('fetches the account with Basic auth KeySID:secret and reports success', async () => {
    expect(await testKey(KEY.secret)).toEqual({ ok: true, message: 'Twilio accepted the API key.' });
    expect(received()[0]).toMatchObject({ method: 'GET', path: `/2010-04-01/Accounts/${SID}.json` });
    expect(received()[0]?.headers.authorization).toBe(
      `Basic ${Buffer.from(`${KEY.sid}:${KEY.secret}`).toString('base64')}`,
    );
  });

  it('reports a wrong secret as rejected by Twilio', async () => {
    expect(await testKey('fake-wrong-secret')).toEqual({
      ok: false,
      message:
        'The credential was rejected by Twilio (wrong Account SID, API key SID or secret, or a revoked key).',
    });
  });

  it('sends an SMS with the key: the action is the same, only the Authorization differs', async () => {
    const outcome = await twilio.action({
      params: { from: '+15005550006', to: '+15005550009', body: 'Hello' },
      credential: { type: 'twilioApiKey', publicFields: { accountSid: SID, apiKeySid: KEY.sid } },
      baseUrl: ctx.baseUrl,
      send: (request) => performRequest(twilioApiKey.authenticate(credential, request, ctx)),
    });
    expect(outcome.ok).toBe(true);
    expect(received()[0]?.path).toBe(`/2010-04-01/Accounts/${SID}/Messages.json`);
  });
});

describe('Twilio "send an SMS" action, against a fake Twilio', () => {
  it('posts To, From and Body as a form to the account’s Messages.json and reports the queued message', async () => {
    const params = { from: '+15005550006', to: '+15558675310', body: 'Ça marche & 100% = ✓\nSecond line' };
    expect(await runSms(params)).toEqual({
      ok: true,
      summary: `SMS accepted by Twilio (queued, ${MESSAGE_SID})`,
    });
    expect(received()).toHaveLength(1);
    const [request] = received();
    expect(request?.method).toBe('POST');
    expect(request?.path).toBe(`/2010-04-01/Accounts/${SID}/Messages.json`);
    expect(request?.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(request?.headers.authorization).toBe(`Basic ${Buffer.from(`${SID}:${TOKEN}`).toString('base64')}`);
    expect(request?.form).toEqual({ To: params.to, From: params.from, Body: params.body });
  });

  it('reports Twilio’s error code and reason when Twilio refuses the number', async () => {
    expect(await runSms({ from: '+15005550006', to: INVALID_TO, body: 'Hi' })).toEqual({
      ok: false,
      summary: `Twilio refused the SMS (HTTP 400, error 21211: The 'To' number ${INVALID_TO} is not a valid phone number.)`,
    });
  });

  it('reports a wrong Auth Token as the credential rejected, without sending anything else', async () => {
    expect(
      await runSms({ from: '+15005550006', to: '+15558675310', body: 'Hi' }, 'fake-wrong-token'),
    ).toEqual({
      ok: false,
      summary: 'The credential was rejected by Twilio',
    });
    expect(received()).toHaveLength(1);
  });
});
