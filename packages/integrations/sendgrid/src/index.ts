import { defineIntegration } from '@latchkey/core';
import { sendEmail, sendgridParams } from './action.js';
import { sendgridApiKey } from './credentials.js';

export const sendgrid = defineIntegration({
  id: 'sendgrid',
  displayName: 'SendGrid',
  description: 'Send email through SendGrid.',
  nodeType: 'sendgrid',
  baseUrls: { default: 'https://api.sendgrid.com' },
  credentialTypes: [sendgridApiKey],
  params: sendgridParams,
  action: sendEmail,
});

export default sendgrid;
export { sendgridApiKey, sendgridParams };
