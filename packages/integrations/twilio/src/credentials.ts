import {
  basicAuthorization,
  defineCredentialType,
  field,
  joinUrl,
  type OutgoingRequest,
  type RequestContext,
  withHeader,
} from '@latchkey/core';

/** An Account SID: "AC" and 32 hexadecimal digits. It names the account in every API URL, so it is public. */
export const ACCOUNT_SID = /^AC[0-9a-fA-F]{32}$/;

/** The path of the account resource; every other resource of the account lives under it. */
export function accountPath(accountSid: string): string {
  return `/2010-04-01/Accounts/${encodeURIComponent(accountSid)}`;
}

/** The test request of both types: fetching the account answers for any valid credential, and changes nothing. */
function fetchAccount(publicFields: Record<string, string>, ctx: RequestContext): OutgoingRequest {
  return {
    method: 'GET',
    url: joinUrl(ctx.baseUrl(), `${accountPath(publicFields.accountSid ?? '')}.json`),
    headers: {},
  };
}

export const twilioApiCredentials = defineCredentialType({
  type: 'twilioApiCredentials',
  displayName: 'Twilio Account SID and Auth Token',
  description: 'The Account SID and Auth Token of a Twilio account, sent as HTTP Basic auth.',
  fields: {
    accountSid: field.text({
      label: 'Account SID',
      help: 'On the Twilio Console dashboard, under Account Info. It is not secret: it appears in every API URL.',
      placeholder: 'AC0123456789abcdef0123456789abcdef',
      formatHint: '`AC` followed by 32 hexadecimal characters.',
      pattern: ACCOUNT_SID,
      patternMessage: 'An Account SID is `AC` followed by 32 hexadecimal characters (0–9, a–f).',
      example: 'ACffffffffffffffffffffffffffffffff',
    }),
    authToken: field.secret({
      label: 'Auth Token',
      help: 'Under Account Info, next to the Account SID. If you rotate it in Twilio, replace it here too.',
      placeholder: 'your-auth-token',
      example: 'fake-twilio-auth-token',
    }),
  },
  // Twilio takes HTTP Basic auth with the Account SID as the user name and the Auth Token as the password.
  authenticate: (credential, request) =>
    withHeader(request, 'Authorization', basicAuthorization(credential.accountSid, credential.authToken)),
  test: {
    request: fetchAccount,
    interpret: (response) =>
      interpretAccountFetch(
        response.status,
        'Account SID and Auth Token',
        'wrong Account SID or Auth Token, or a rotated token',
      ),
  },
});

/** An API Key SID: "SK" and 32 hexadecimal digits. */
export const API_KEY_SID = /^SK[0-9a-fA-F]{32}$/;

/**
 * A Twilio API key (Console → API keys): its SID and secret as HTTP Basic auth, for the account named by its
 * Account SID. Twilio recommends these over the Auth Token: each can be revoked on its own.
 */
export const twilioApiKey = defineCredentialType({
  type: 'twilioApiKey',
  displayName: 'Twilio API key',
  description:
    'An API key (SID and secret) of a Twilio account, sent as HTTP Basic auth; revocable on its own.',
  fields: {
    accountSid: twilioApiCredentials.fields.accountSid,
    apiKeySid: field.text({
      label: 'API key SID',
      help: 'Twilio Console → Account → API keys & tokens. It names the key; it is not secret.',
      placeholder: 'SK0123456789abcdef0123456789abcdef',
      formatHint: '`SK` followed by 32 hexadecimal characters.',
      pattern: API_KEY_SID,
      patternMessage: 'An API key SID is `SK` followed by 32 hexadecimal characters (0–9, a–f).',
      example: 'SKffffffffffffffffffffffffffffffff',
    }),
    apiKeySecret: field.secret({
      label: 'API key secret',
      help: 'Shown once by Twilio when the key is created.',
      placeholder: 'your-api-key-secret',
      example: 'fake-twilio-api-key-secret',
    }),
  },
  authenticate: (credential, request) =>
    withHeader(request, 'Authorization', basicAuthorization(credential.apiKeySid, credential.apiKeySecret)),
  test: {
    request: fetchAccount,
    interpret: (response) =>
      interpretAccountFetch(
        response.status,
        'API key',
        'wrong Account SID, API key SID or secret, or a revoked key',
      ),
  },
});

/** What fetching the account answered, for a credential test. Never quotes the answer (it may echo a token). */
function interpretAccountFetch(status: number, what: string, rejectedBecause: string) {
  if (status === 200) return { ok: true as const, message: `Twilio accepted the ${what}.` };
  if (status === 401 || status === 403)
    return {
      ok: false,
      message: `The credential was rejected by Twilio (${rejectedBecause}).`,
    };
  if (status === 404) return { ok: false, message: 'Twilio does not know this Account SID.' };
  if (status === 429) return { ok: false, message: 'Twilio is rate limiting requests; try again shortly.' };
  return { ok: false, message: `Twilio answered with HTTP ${status}.` };
}
