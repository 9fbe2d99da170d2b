import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { DecryptedCredential, scrubResponse, scrubSecrets } from './redaction.js';

const KEY = 'fake-mailgun-value-0123456789';
const b64 = (text: string) => Buffer.from(text).toString('base64');

describe('DecryptedCredential', () => {
  const credential = new DecryptedCredential(
    'httpBasicAuth',
    { username: 'fake-user' },
    { password: 'fake-pass-abcdef' },
  );

  it('gives authenticate every field, and shows [redacted] when printed, serialised or logged', () => {
    expect(credential.fields()).toEqual({ username: 'fake-user', password: 'fake-pass-abcdef' });
    for (const shown of [
      JSON.stringify({ credential }),
      String(credential),
      `${credential}`,
      inspect(credential),
      inspect({ deep: { credential } }),
    ]) {
      expect(shown).not.toContain('fake-pass-abcdef');
      expect(shown).toContain('redacted');
    }
  });

  it('lists the secret values (not the public ones) for scrubbing, with the secret parts of a URL secret', () => {
    expect(credential.secretValues).toEqual(['fake-pass-abcdef']);
    const hook = new DecryptedCredential(
      'slackWebhook',
      {},
      { webhookUrl: 'https://hooks.slack.com/services/TFAKE/BFAKE/FakeHookTokenAbcdefgh' },
    );
    expect(hook.secretValues).toEqual(
      expect.arrayContaining([
        'https://hooks.slack.com/services/TFAKE/BFAKE/FakeHookTokenAbcdefgh',
        '/services/TFAKE/BFAKE/FakeHookTokenAbcdefgh',
        'FakeHookTokenAbcdefgh',
      ]),
    );
    expect(hook.secretValues).not.toContain('services');
  });
});

describe('scrubSecrets', () => {
  it('removes the value as is, URL-encoded, JSON-escaped and in hex of either case', () => {
    const value = 'fake/value+with "quotes"&more';
    const hex = Buffer.from(value).toString('hex');
    const text = [value, encodeURIComponent(value), JSON.stringify(value), hex, hex.toUpperCase()].join(
      ' | ',
    );
    const scrubbed = scrubSecrets(text, [value]);
    expect(scrubbed).not.toContain('fake/value');
    expect(scrubbed).not.toContain(encodeURIComponent(value));
    expect(scrubbed).not.toContain(hex);
    expect(scrubbed).not.toContain(hex.toUpperCase());
  });

  it('removes base64 of the value wherever it sits in the encoded text (any alignment, base64url too)', () => {
    for (const prefix of ['', 'a', 'ab', 'api:', 'user-name:']) {
      const encoded = b64(`${prefix}${KEY}`);
      const scrubbed = scrubSecrets(`seen ${encoded} there`, [KEY]);
      expect(scrubbed, prefix).toBe('seen [redacted] there');
      const url = encoded.replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
      expect(scrubSecrets(`x=${url};`, [KEY]), `${prefix} (base64url)`).toBe('x=[redacted];');
    }
    expect(scrubSecrets(`Authorization: Basic ${b64(`api:${KEY}`)}`, [KEY])).toBe(
      'Authorization: Basic [redacted]',
    );
  });

  it('leaves text without secrets alone, and a short value where it is part of a longer word or number', () => {
    expect(scrubSecrets('HTTP 401 (application/json, 32 bytes)', [KEY, 'abc'])).toBe(
      'HTTP 401 (application/json, 32 bytes)',
    );
    expect(scrubSecrets('abcdef xabc 4201 x42 42x café', ['abc', '42', 'é'])).toBe(
      'abcdef xabc 4201 x42 42x café',
    );
  });

  it('removes a value shorter than four characters where it stands as a whole token, in every form', () => {
    expect(scrubSecrets('pin=42&user=alice; code "42". Wrong PIN: 42', ['42'])).toBe(
      'pin=[redacted]&user=alice; code "[redacted]". Wrong PIN: [redacted]',
    );
    expect(scrubSecrets('{"key":"a/b"} a%2Fb hex 612f62', ['a/b'])).toBe(
      '{"key":"[redacted]"} [redacted] hex [redacted]',
    );
    expect(scrubSecrets('got 7 of 17 (7)', ['7'])).toBe('got [redacted] of 17 ([redacted])');
    expect(scrubSecrets('quote "x\\"y" ok', ['x"y'])).toBe('quote "[redacted]" ok');
    // Regular-expression characters in the value are taken literally.
    expect(scrubSecrets('a.b axb (.*) .*', ['.*', 'a.b'])).toBe('[redacted] axb ([redacted]) [redacted]');
  });

  it('a short value never takes every character of a response with it', () => {
    const body = 'The quick brown fox jumps over the lazy dog 0123456789';
    for (const value of ['e', 'o', '1', 'he', 'ow', '345']) expect(scrubSecrets(body, [value])).toBe(body);
  });

  it('removes a URL secret whole before its parts', () => {
    const url = 'https://hooks.slack.com/services/TFAKE/BFAKE/FakeHookTokenAbcdefgh';
    const values = new DecryptedCredential('slackWebhook', {}, { webhookUrl: url }).secretValues;
    expect(
      scrubSecrets(`posted to ${url}; Cannot POST /services/TFAKE/BFAKE/FakeHookTokenAbcdefgh`, values),
    ).toBe('posted to [redacted]; Cannot POST [redacted]');
  });
});

describe('scrubResponse', () => {
  it('removes the values from the body and every header before a plugin reads them', () => {
    const response = {
      status: 401,
      headers: {
        'x-echo': `Bearer ${KEY}`,
        'www-authenticate': `Basic realm="${b64(`api:${KEY}`)}"`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ message: `bad key ${KEY}` }),
    };
    const scrubbed = scrubResponse(response, [KEY]);
    expect(scrubbed.status).toBe(401);
    expect(JSON.stringify(scrubbed)).not.toContain(KEY);
    expect(JSON.stringify(scrubbed)).not.toContain(b64(`api:${KEY}`).slice(4, 20));
    expect(JSON.parse(scrubbed.body)).toEqual({ message: 'bad key [redacted]' });
    expect(scrubbed.headers['content-type']).toBe('application/json');
  });
});
