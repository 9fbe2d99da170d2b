import { defineIntegration } from '@latchkey/core';
import { mailgunParams, sendMessage } from './action.js';
import { mailgunApiKey } from './credentials.js';

export const mailgun = defineIntegration({
  id: 'mailgun',
  displayName: 'Mailgun',
  description: 'Send email through Mailgun, in the US or EU region.',
  nodeType: 'mailgun',
  baseUrls: { us: 'https://api.mailgun.net', eu: 'https://api.eu.mailgun.net' },
  credentialTypes: [mailgunApiKey],
  params: mailgunParams,
  action: sendMessage,
});

export default mailgun;
export { mailgunApiKey, mailgunParams };
