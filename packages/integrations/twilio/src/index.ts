import { defineIntegration } from '@latchkey/core';
import { sendSms, twilioParams } from './action.js';
import { twilioApiCredentials, twilioApiKey } from './credentials.js';

export const twilio = defineIntegration({
  id: 'twilio',
  displayName: 'Twilio',
  description: 'Send SMS messages through Twilio.',
  nodeType: 'twilio',
  // Overridable with LATCHKEY_BASE_URL_TWILIO, so tests and gateways can stand in for the service.
  baseUrls: { default: 'https://api.twilio.com' },
  credentialTypes: [twilioApiCredentials, twilioApiKey],
  params: twilioParams,
  action: sendSms,
});

export default twilio;
export { twilioApiCredentials, twilioApiKey, twilioParams };
