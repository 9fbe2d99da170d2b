import type { HttpResponse, OutgoingRequest } from '@latchkey/core';
import { describeActionConformance } from '@latchkey/core/testing';
import { describe, expect, it } from 'vitest';
import { sendEmail } from './action.js';
import { sendgrid } from './index.js';

describeActionConformance(sendgrid, {
  params: {
    valid: [
      { from: 'team@example.com', to: 'ada@example.com, grace@example.com', subject: 'Hi', text: 'Hello.' },
    ],
    invalid: [
      { from: 'team@example.com', to: 'ada@example.com', subject: 'Hi', text: 'Hello.', cc: 'x@y.z' },
    ],
  },
});

type Params = Parameters<typeof sendEmail>[0]['params'];

const params: Params = {
  from: 'team@example.com',
  to: 'ada@example.com, grace@example.com ,',
  subject: 'Welcome!',
  text: 'Hello there.\nSee you soon.',
};

/** An action context whose `send` records each request and answers `response`. */
function fakeContext(response: Partial<HttpResponse> = {}, base = 'https://api.sendgrid.com') {
  const sent: OutgoingRequest[] = [];
  const ctx = {
    params,
    credential: { type: 'sendgridApiKey', publicFields: {} },
    baseUrl: (variant = 'default') => {
      if (variant !== 'default') throw new Error(`unexpected variant ${variant}`);
      return base;
    },
    send: async (request: OutgoingRequest): Promise<HttpResponse> => {
      sent.push(request);
      return { status: 202, headers: {}, body: '', ...response };
    },
  };
  return { ctx, sent };
}

describe('SendGrid action', () => {
  it('posts the email to /v3/mail/send as JSON with personalizations, from, subject and content', async () => {
    const { ctx, sent } = fakeContext();
    await sendEmail(ctx);
    expect(sent).toHaveLength(1);
    const [request] = sent;
    expect(request).toMatchObject({
      method: 'POST',
      url: 'https://api.sendgrid.com/v3/mail/send',
      headers: { 'Content-Type': 'application/json' },
    });
    expect(JSON.parse(request?.body ?? '')).toEqual({
      personalizations: [{ to: [{ email: 'ada@example.com' }, { email: 'grace@example.com' }] }],
      from: { email: 'team@example.com' },
      subject: 'Welcome!',
      content: [{ type: 'text/plain', value: 'Hello there.\nSee you soon.' }],
    });
  });

  it('leaves authentication to the credential: the action sets no Authorization header', async () => {
    const { ctx, sent } = fakeContext();
    await sendEmail(ctx);
    expect(Object.keys(sent[0]?.headers ?? {}).map((h) => h.toLowerCase())).not.toContain('authorization');
  });

  it('uses the configured base URL', async () => {
    const { ctx, sent } = fakeContext({}, 'http://127.0.0.1:4010/fake-sendgrid/');
    await sendEmail(ctx);
    expect(sent[0]?.url).toBe('http://127.0.0.1:4010/fake-sendgrid/v3/mail/send');
  });

  it.each([202, 200])('reports HTTP %i as the email accepted', async (status) => {
    const { ctx } = fakeContext({ status });
    expect(await sendEmail(ctx)).toEqual({
      ok: true,
      summary: `Email to 2 recipients accepted by SendGrid (${status})`,
    });
  });

  it.each([401, 403])('reports HTTP %i as the credential rejected', async (status) => {
    const { ctx } = fakeContext({
      status,
      body: '{"errors":[{"message":"The provided authorization grant is invalid"}]}',
    });
    expect(await sendEmail(ctx)).toEqual({ ok: false, summary: 'The credential was rejected by SendGrid' });
  });

  it('reports SendGrid’s own reasons when it refuses the email', async () => {
    const body = JSON.stringify({
      errors: [
        { message: 'The from address does not match a verified Sender Identity.', field: 'from' },
        { message: 'Too many recipients', field: null },
      ],
    });
    const { ctx } = fakeContext({ status: 400, body });
    expect(await sendEmail(ctx)).toEqual({
      ok: false,
      summary:
        'SendGrid refused the email (HTTP 400): from: The from address does not match a verified Sender Identity.; Too many recipients',
    });
  });

  it('reports a refusal whose body is not JSON by status only', async () => {
    const { ctx } = fakeContext({ status: 502, body: '<html>Bad gateway</html>' });
    expect(await sendEmail(ctx)).toEqual({ ok: false, summary: 'SendGrid refused the email (HTTP 502)' });
  });
});
