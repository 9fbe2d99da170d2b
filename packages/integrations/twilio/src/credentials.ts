import { basicAuthorization, defineCredentialType, field, joinUrl, withHeader } from '@latchkey/core';

/** An Account SID: "AC" and 32 hexadecimal digits. It names the account in every API URL, so it is public. */
export const ACCOUNT_SID = /^AC[0-9a-fA-F]{32}$/;

/** The path of the account resource; every other resource of the account lives under it. */
export function accountPath(accountSid: string): string {
  return `/2010-04-01/Accounts/${encodeURIComponent(accountSid)}`;
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
      formatHint: 'AC followed by 32 hexadecimal characters',
      pattern: ACCOUNT_SID,
      patternMessage: 'An Account SID is AC followed by 32 hexadecimal characters',
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
    // Fetching the account itself answers for any valid SID and token, and changes nothing.
    request: (publicFields, ctx) => ({
      method: 'GET',
      url: joinUrl(ctx.baseUrl(), `${accountPath(publicFields.accountSid ?? '')}.json`),
      headers: {},
    }),
    // Never quotes the answer: a service that echoes the request would put the token in the message.
    interpret: (response) => {
      if (response.status === 200)
        return { ok: true, message: 'Twilio accepted the Account SID and Auth Token.' };
      if (response.status === 401 || response.status === 403) {
        return {
          ok: false,
          message:
            'The credential was rejected by Twilio (wrong Account SID or Auth Token, or a rotated token).',
        };
      }
      if (response.status === 404) return { ok: false, message: 'Twilio does not know this Account SID.' };
      if (response.status === 429)
        return { ok: false, message: 'Twilio is rate limiting requests; try again shortly.' };
      return { ok: false, message: `Twilio answered with HTTP ${response.status}.` };
    },
  },
});
