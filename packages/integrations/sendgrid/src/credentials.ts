import { bearerAuthorization, defineCredentialType, field, joinUrl, withHeader } from '@latchkey/core';

/** SendGrid keys look like `SG.<22-char id>.<43-char secret>`; only the shape `SG.<id>.<secret>` is enforced. */
const SENDGRID_KEY = /^SG\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

export const sendgridApiKey = defineCredentialType({
  type: 'sendgridApiKey',
  displayName: 'SendGrid API key',
  description: 'An API key with at least the Mail Send scope.',
  fields: {
    apiKey: field.secret({
      label: 'API key',
      help: 'Create one in SendGrid under Settings → API Keys. It is shown by SendGrid only once.',
      placeholder: 'SG.xxxxxxxx.xxxxxxxx',
      formatHint: 'Starts with `SG.`.',
      pattern: SENDGRID_KEY,
      patternMessage: 'A SendGrid API key starts with `SG.` and has the form `SG.<id>.<secret>`.',
      example: 'SG.fake-key-id.fake-key-secret',
    }),
  },
  authenticate: (credential, request) =>
    withHeader(request, 'Authorization', bearerAuthorization(credential.apiKey)),
  test: {
    // /v3/scopes answers for any valid key, restricted ones included (unlike /v3/user/account).
    request: (_public, ctx) => ({ method: 'GET', url: joinUrl(ctx.baseUrl(), '/v3/scopes'), headers: {} }),
    interpret: (response) => {
      if (response.status === 200) return { ok: true, message: 'SendGrid accepted the API key.' };
      if (response.status === 401 || response.status === 403) {
        return {
          ok: false,
          message: 'The credential was rejected by SendGrid (invalid, expired or revoked key).',
        };
      }
      if (response.status === 429)
        return { ok: false, message: 'SendGrid is rate limiting requests; try again shortly.' };
      return { ok: false, message: `SendGrid answered with HTTP ${response.status}.` };
    },
  },
});
