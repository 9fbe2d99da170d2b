import type { HttpResponse, OutgoingRequest } from '@latchkey/core';
import { describeActionConformance } from '@latchkey/core/testing';
import { describe, expect, it } from 'vitest';
import { sendMessage } from './action.js';
import { mailgun } from './index.js';

// Both regions: the action must send each to its own (overridable) base URL.
describeActionConformance(mailgun, {
  actionCases: [
    {
      credentialType: 'mailgunApiKey',
      credential: { apiKey: 'fake-mailgun-api-key', domain: 'mg.example.com', region: 'us' },
    },
    {
      credentialType: 'mailgunApiKey',
      credential: { apiKey: 'fake-mailgun-api-key', domain: 'mg.example.com', region: 'eu' },
    },
  ],
});

type Params = Parameters<typeof sendMessage>[0]['params'];

const params: Params = {
  from: 'Team <team@mg.example.com>',
  to: 'ada@example.com, grace@example.com',
  subject: 'Welcome & hello',
  text: 'Line one\nLine two = 2',
};

const BASES: Record<string, string> = {
  us: 'http://127.0.0.1:4010/fake-us',
  eu: 'http://127.0.0.1:4011/fake-eu',
};

/** An action context whose `send` records each request and answers `response`. */
function fakeContext(publicFields: Record<string, string>, response: Partial<HttpResponse> = {}) {
  const sent: OutgoingRequest[] = [];
  const variants: (string | undefined)[] = [];
  const ctx = {
    params,
    credential: { type: 'mailgunApiKey', publicFields },
    baseUrl: (variant?: string) => {
      variants.push(variant);
      return BASES[variant ?? ''] ?? 'http://unexpected.test';
    },
    send: async (request: OutgoingRequest): Promise<HttpResponse> => {
      sent.push(request);
      return {
        status: 200,
        headers: {},
        body: '{"id":"<fake@mg.example.com>","message":"Queued. Thank you."}',
        ...response,
      };
    },
  };
  return { ctx, sent, variants };
}

describe('Mailgun action', () => {
  it('posts the message form-encoded to /v3/{domain}/messages at the EU base URL for an EU domain', async () => {
    const { ctx, sent, variants } = fakeContext({ domain: 'mg.example.com', region: 'eu' });
    await sendMessage(ctx);
    expect(variants).toEqual(['eu']);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({
      method: 'POST',
      url: 'http://127.0.0.1:4011/fake-eu/v3/mg.example.com/messages',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    });
    expect(Object.fromEntries(new URLSearchParams(sent[0]?.body))).toEqual(params);
  });

  it('uses the US base URL for a US domain', async () => {
    const { ctx, sent, variants } = fakeContext({ domain: 'mg.example.com', region: 'us' });
    await sendMessage(ctx);
    expect(variants).toEqual(['us']);
    expect(sent[0]?.url).toBe('http://127.0.0.1:4010/fake-us/v3/mg.example.com/messages');
  });

  it('leaves authentication to the credential: the action sets no Authorization header', async () => {
    const { ctx, sent } = fakeContext({ domain: 'mg.example.com', region: 'us' });
    await sendMessage(ctx);
    expect(Object.keys(sent[0]?.headers ?? {}).map((h) => h.toLowerCase())).not.toContain('authorization');
  });

  it('reports a queued message with its domain and region', async () => {
    const { ctx } = fakeContext({ domain: 'mg.example.com', region: 'eu' });
    expect(await sendMessage(ctx)).toEqual({
      ok: true,
      summary: 'Message queued by Mailgun for mg.example.com (EU)',
    });
  });

  it.each([401, 403])('reports HTTP %i as the credential rejected', async (status) => {
    const { ctx } = fakeContext({ domain: 'mg.example.com', region: 'us' }, { status, body: 'Forbidden' });
    expect(await sendMessage(ctx)).toEqual({ ok: false, summary: 'The credential was rejected by Mailgun' });
  });

  it('reports Mailgun’s own reason when it refuses the message', async () => {
    const { ctx } = fakeContext(
      { domain: 'mg.example.com', region: 'us' },
      { status: 400, body: '{"message":"to parameter is not a valid address. please check documentation"}' },
    );
    expect(await sendMessage(ctx)).toEqual({
      ok: false,
      summary:
        'Mailgun refused the message (HTTP 400): to parameter is not a valid address. please check documentation',
    });
  });

  it('reports an unknown domain by status when the body is not JSON', async () => {
    const { ctx } = fakeContext(
      { domain: 'mg.example.com', region: 'us' },
      { status: 404, body: 'Not Found' },
    );
    expect(await sendMessage(ctx)).toEqual({ ok: false, summary: 'Mailgun refused the message (HTTP 404)' });
  });
});
