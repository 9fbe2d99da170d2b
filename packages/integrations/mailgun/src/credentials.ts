import { basicAuthorization, defineCredentialType, field, joinUrl, withHeader } from '@latchkey/core';

// Mailgun key shapes vary (legacy `key-<hex>`, newer `<hex>-<hex>-<hex>`, others reported), so no format is enforced.
export const mailgunApiKey = defineCredentialType({
  type: 'mailgunApiKey',
  displayName: 'Mailgun API key',
  description: 'A Mailgun API key and the sending domain it is used with.',
  fields: {
    apiKey: field.secret({
      label: 'API key',
      help: 'An account API key, or a Domain Sending Key (sending keys can send but cannot be tested).',
      placeholder: 'key-xxxxxxxx',
      example: 'fake-mailgun-api-key',
    }),
    domain: field.text({
      label: 'Sending domain',
      help: 'The domain you send from, as configured in Mailgun.',
      placeholder: 'mg.example.com',
      valueCheck: 'domain',
      pattern: /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$/,
      patternMessage: 'A sending domain is a full domain name, like `mg.example.com`.',
      example: 'mg.example.com',
    }),
    region: field.choice(['us', 'eu'], {
      label: 'Region',
      help: 'The region your domain was created in (US: api.mailgun.net, EU: api.eu.mailgun.net).',
      example: 'eu',
      choiceLabels: { us: 'US', eu: 'EU' },
    }),
  },
  authenticate: (credential, request) =>
    withHeader(request, 'Authorization', basicAuthorization('api', credential.apiKey)),
  test: {
    request: (publicFields, ctx) => ({
      method: 'GET',
      url: joinUrl(
        ctx.baseUrl(publicFields.region),
        `/v4/domains/${encodeURIComponent(publicFields.domain ?? '')}`,
      ),
      headers: {},
    }),
    interpret: (response) => {
      if (response.status === 200)
        return { ok: true, message: 'Mailgun accepted the API key for this domain.' };
      if (response.status === 401 || response.status === 403) {
        return {
          ok: false,
          message:
            'The credential was rejected by Mailgun (wrong key, wrong region, or a sending key, which cannot be tested).',
        };
      }
      if (response.status === 404)
        return { ok: false, message: 'Mailgun does not know this domain in this region.' };
      return { ok: false, message: `Mailgun answered with HTTP ${response.status}.` };
    },
  },
});
