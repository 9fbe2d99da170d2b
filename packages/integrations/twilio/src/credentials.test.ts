import { createRegistry, type HttpResponse, type OutgoingRequest, type RequestContext } from '@latchkey/core';
import { describeCredentialConformance } from '@latchkey/core/testing';
import { describe, expect, it } from 'vitest';
import { twilio, twilioApiCredentials } from './index.js';

const SID = 'ACffffffffffffffffffffffffffffffff';
const TOKEN = 'fake-twilio-auth-token';
const KEY_SID = 'SKffffffffffffffffffffffffffffffff';

// Declarations, JSON Schema, samples (from the fields' examples and the ones below), authenticate, test request.
describeCredentialConformance(twilio, {
  samples: {
    twilioApiCredentials: {
      valid: [
        { accountSid: SID, authToken: TOKEN },
        { accountSid: 'AC0123456789ABCDEF0123456789abcdef', authToken: 'fake token with: colon' },
      ],
      invalid: [
        { accountSid: `AC${'f'.repeat(31)}`, authToken: TOKEN },
        { accountSid: `SK${'f'.repeat(32)}`, authToken: TOKEN },
        { accountSid: ` ${SID}`, authToken: TOKEN },
        { accountSid: SID },
      ],
    },
    twilioApiKey: {
      valid: [{ accountSid: SID, apiKeySid: KEY_SID, apiKeySecret: 'fake-twilio-api-key-secret' }],
      invalid: [
        // An Account SID where the key's SID goes, and the reverse.
        { accountSid: SID, apiKeySid: SID, apiKeySecret: 'fake-twilio-api-key-secret' },
        { accountSid: KEY_SID, apiKeySid: KEY_SID, apiKeySecret: 'fake-twilio-api-key-secret' },
        { accountSid: SID, apiKeySid: KEY_SID },
      ],
    },
  },
  secretGoesIn: { twilioApiCredentials: ['header:authorization'], twilioApiKey: ['header:authorization'] },
});

const registry = createRegistry([twilio]);
const ctx = (base = 'https://api.twilio.com'): RequestContext => ({ baseUrl: () => base });
const response = (status: number): HttpResponse => ({ status, headers: {}, body: '' });

describe('Twilio credential', () => {
  it('keeps the Account SID public and the Auth Token secret', () => {
    expect(
      registry.validateCredential('twilioApiCredentials', { accountSid: SID, authToken: TOKEN }),
    ).toEqual({
      ok: true,
      value: {
        credentialType: 'twilioApiCredentials',
        integrationId: 'twilio',
        nodeType: 'twilio',
        publicFields: { accountSid: SID },
        secretFields: { authToken: TOKEN },
      },
    });
  });

  it('says what an Account SID looks like, without repeating the one given', () => {
    const data = { accountSid: 'ACnot-hex', authToken: TOKEN };
    expect(registry.validateCredential('twilioApiCredentials', data)).toEqual({
      ok: false,
      issues: [
        {
          path: ['accountSid'],
          message: 'An Account SID is `AC` followed by 32 hexadecimal characters (0–9, a–f).',
        },
      ],
    });
  });

  it('sends "Authorization: Basic base64(AccountSID:AuthToken)" and nothing else', () => {
    const request: OutgoingRequest = {
      method: 'POST',
      url: 'https://api.twilio.com/2010-04-01/Accounts/x/Messages.json',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', authorization: 'Bearer stale' },
      body: 'To=%2B1',
    };
    const sent = twilioApiCredentials.authenticate({ accountSid: SID, authToken: TOKEN }, request, ctx());
    expect(sent).toEqual({
      ...request,
      headers: {
        'Content-Type': 'application/x-www-form-urlencoded',
        Authorization: `Basic ${Buffer.from(`${SID}:${TOKEN}`).toString('base64')}`,
      },
    });
  });

  it('is tested with GET /2010-04-01/Accounts/{AccountSid}.json at the configured base URL', () => {
    expect(twilioApiCredentials.test?.request({ accountSid: SID }, ctx())).toEqual({
      method: 'GET',
      url: `https://api.twilio.com/2010-04-01/Accounts/${SID}.json`,
      headers: {},
    });
    expect(twilioApiCredentials.test?.request({ accountSid: SID }, ctx('http://127.0.0.1:4010/')).url).toBe(
      `http://127.0.0.1:4010/2010-04-01/Accounts/${SID}.json`,
    );
  });

  it.each([
    [200, { ok: true, message: 'Twilio accepted the Account SID and Auth Token.' }],
    [
      401,
      {
        ok: false,
        message:
          'The credential was rejected by Twilio (wrong Account SID or Auth Token, or a rotated token).',
      },
    ],
    [404, { ok: false, message: 'Twilio does not know this Account SID.' }],
    [429, { ok: false, message: 'Twilio is rate limiting requests; try again shortly.' }],
    [500, { ok: false, message: 'Twilio answered with HTTP 500.' }],
  ])('reads HTTP %i as %o', (status, outcome) => {
    expect(twilioApiCredentials.test?.interpret(response(status))).toEqual(outcome);
  });
});
