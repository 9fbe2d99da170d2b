import type { HttpResponse, OutgoingRequest } from '@latchkey/core';
import { describeActionConformance } from '@latchkey/core/testing';
import { describe, expect, it } from 'vitest';
import { sendSms } from './action.js';
import { twilio } from './index.js';

const SID = 'ACffffffffffffffffffffffffffffffff';
const MESSAGE_SID = `SM${'e'.repeat(32)}`;

// Params (from the fields' examples and the ones below), the base URL and its override, safe summaries.
describeActionConformance(twilio, {
  params: {
    valid: [
      { from: '+15005550006', to: '+15558675310', body: 'Hello from Latchkey.' },
      { from: 'Latchkey', to: '+447700900123', body: 'Line one\nLine two & more = 100%' },
    ],
    invalid: [
      { from: '+15005550006', to: '5558675310', body: 'No plus sign' },
      { from: 'A sender ID too long', to: '+15558675310', body: 'Hi' },
      { from: '+15005550006', to: '+15558675310', body: 'x'.repeat(1601) },
      { from: '+15005550006', to: '+15558675310' },
    ],
  },
});

type Params = Parameters<typeof sendSms>[0]['params'];

/** An action context whose `send` records each request and answers `response`. */
function fakeContext(
  response: Partial<HttpResponse> = {},
  params: Params = {
    from: '+15005550006',
    to: '+15558675310',
    body: 'Hi & welcome',
  },
) {
  const sent: OutgoingRequest[] = [];
  const ctx = {
    params,
    credential: { type: 'twilioApiCredentials', publicFields: { accountSid: SID } },
    baseUrl: () => 'https://api.twilio.com',
    send: async (request: OutgoingRequest): Promise<HttpResponse> => {
      sent.push(request);
      return {
        status: 201,
        headers: {},
        body: JSON.stringify({ sid: MESSAGE_SID, status: 'queued' }),
        ...response,
      };
    },
  };
  return { ctx, sent };
}

describe('Twilio action', () => {
  it('posts To, From and Body form-encoded to the account’s Messages.json', async () => {
    const { ctx, sent } = fakeContext();
    await sendSms(ctx);
    expect(sent).toEqual([
      {
        method: 'POST',
        url: `https://api.twilio.com/2010-04-01/Accounts/${SID}/Messages.json`,
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: 'To=%2B15558675310&From=%2B15005550006&Body=Hi+%26+welcome',
      },
    ]);
  });

  it('leaves authentication to the credential: the action sets no Authorization header', async () => {
    const { ctx, sent } = fakeContext();
    await sendSms(ctx);
    expect(Object.keys(sent[0]?.headers ?? {}).map((h) => h.toLowerCase())).not.toContain('authorization');
  });

  it('reports 201 with the message status and SID', async () => {
    const { ctx } = fakeContext();
    expect(await sendSms(ctx)).toEqual({
      ok: true,
      summary: `SMS accepted by Twilio (queued, ${MESSAGE_SID})`,
    });
  });

  it('shows only the parts of the answer that have Twilio’s shapes', async () => {
    const { ctx } = fakeContext({ body: JSON.stringify({ sid: 'not a sid', status: 'Queued <b>now</b>' }) });
    expect(await sendSms(ctx)).toEqual({ ok: true, summary: 'SMS accepted by Twilio' });
  });

  it.each([401, 403])('reports HTTP %i as the credential rejected', async (status) => {
    const body = JSON.stringify({ code: 20003, message: 'Authenticate', more_info: '', status });
    const { ctx } = fakeContext({ status, body });
    expect(await sendSms(ctx)).toEqual({ ok: false, summary: 'The credential was rejected by Twilio' });
  });

  it('reports Twilio’s error code and reason when it refuses the SMS', async () => {
    const body = JSON.stringify({
      code: 21211,
      message: "The 'To' number +15558675310 is not a valid phone number.",
      more_info: 'https://www.twilio.com/docs/errors/21211',
      status: 400,
    });
    const { ctx } = fakeContext({ status: 400, body });
    expect(await sendSms(ctx)).toEqual({
      ok: false,
      summary:
        "Twilio refused the SMS (HTTP 400, error 21211: The 'To' number +15558675310 is not a valid phone number.)",
    });
  });

  it('reports a refusal whose body is not JSON by status only', async () => {
    const { ctx } = fakeContext({ status: 502, body: '<html>Bad gateway</html>' });
    expect(await sendSms(ctx)).toEqual({ ok: false, summary: 'Twilio refused the SMS (HTTP 502)' });
  });
});
