/**
 * The credential test and the action against a small fake Twilio on 127.0.0.1, over real HTTP: the fake
 * asserts what it receives (Basic auth, the account SID in the path, the form fields) and answers the way
 * Twilio does. `send` does what the server's runner does, minus its guard and limits: it applies the
 * credential's `authenticate` to the request and performs it.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HttpResponse, OutgoingRequest, RequestContext } from '@latchkey/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { twilio, twilioApiCredentials } from './index.js';

const SID = 'ACfa4efa4efa4efa4efa4efa4efa4efa4e';
const TOKEN = 'fake-twilio-auth-token-1';
const MESSAGE_SID = `SM${'0f'.repeat(16)}`;
/** Twilio's magic test number for "not a valid phone number" (error 21211). */
const INVALID_TO = '+15005550001';

interface Received {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  form: Record<string, string>;
}

/** A stand-in for api.twilio.com: the account resource and Messages.json of one account. */
function startFakeTwilio() {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      received.push({
        method: req.method ?? '',
        path,
        headers: req.headers,
        form: Object.fromEntries(new URLSearchParams(body)),
      });
      const answer = (status: number, payload: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(payload));
      };
      const expected = `Basic ${Buffer.from(`${SID}:${TOKEN}`).toString('base64')}`;
      if (req.headers.authorization !== expected) {
        answer(401, {
          code: 20003,
          message: 'Authenticate',
          more_info: 'https://www.twilio.com/docs/errors/20003',
          status: 401,
        });
      } else if (req.method === 'GET' && path === `/2010-04-01/Accounts/${SID}.json`) {
        answer(200, { sid: SID, friendly_name: 'Fake account', status: 'active' });
      } else if (req.method === 'POST' && path === `/2010-04-01/Accounts/${SID}/Messages.json`) {
        const form = new URLSearchParams(body);
        if (form.get('To') === INVALID_TO) {
          answer(400, {
            code: 21211,
            message: `The 'To' number ${INVALID_TO} is not a valid phone number.`,
            more_info: 'https://www.twilio.com/docs/errors/21211',
            status: 400,
          });
        } else {
          answer(201, {
            sid: MESSAGE_SID,
            status: 'queued',
            to: form.get('To'),
            from: form.get('From'),
            body: form.get('Body'),
          });
        }
      } else {
        answer(404, { code: 20404, message: 'The requested resource was not found', status: 404 });
      }
    });
  });
  return {
    received,
    url: '',
    async listen() {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      return this;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

let fake: Awaited<ReturnType<ReturnType<typeof startFakeTwilio>['listen']>>;
let ctx: RequestContext;

beforeAll(async () => {
  fake = await startFakeTwilio().listen();
  // As LATCHKEY_BASE_URL_TWILIO would: the base URL of every request is the fake's.
  ctx = { baseUrl: () => fake.url };
});
afterAll(() => fake.close());
beforeEach(() => {
  fake.received.length = 0;
});

/** The credential applied by `authenticate`, then a real HTTP request. */
async function send(
  request: OutgoingRequest,
  credential = { accountSid: SID, authToken: TOKEN },
): Promise<HttpResponse> {
  const authenticated = twilioApiCredentials.authenticate(credential, request, ctx);
  const url = new URL(authenticated.url);
  for (const [name, value] of Object.entries(authenticated.query ?? {})) url.searchParams.append(name, value);
  const response = await fetch(url, {
    method: authenticated.method,
    headers: authenticated.headers,
    ...(authenticated.body === undefined ? {} : { body: authenticated.body }),
  });
  return {
    status: response.status,
    headers: Object.fromEntries(response.headers),
    body: await response.text(),
  };
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
    expect(fake.received).toHaveLength(1);
    expect(fake.received[0]).toMatchObject({ method: 'GET', path: `/2010-04-01/Accounts/${SID}.json` });
    expect(fake.received[0]?.headers.authorization).toBe(
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

describe('Twilio "send an SMS" action, against a fake Twilio', () => {
  it('posts To, From and Body as a form to the account’s Messages.json and reports the queued message', async () => {
    const params = { from: '+15005550006', to: '+15558675310', body: 'Ça marche & 100% = ✓\nSecond line' };
    expect(await runSms(params)).toEqual({
      ok: true,
      summary: `SMS accepted by Twilio (queued, ${MESSAGE_SID})`,
    });
    expect(fake.received).toHaveLength(1);
    const [request] = fake.received;
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
    expect(fake.received).toHaveLength(1);
  });
});
