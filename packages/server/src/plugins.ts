import type { IntegrationDefinition } from '@latchkey/core';
import httpRequest from '@latchkey/integration-http-request';
import mailgun from '@latchkey/integration-mailgun';
import sendgrid from '@latchkey/integration-sendgrid';
import slack from '@latchkey/integration-slack';
import twilio from '@latchkey/integration-twilio';

/** Every integration the server offers. Adding an integration = adding its package and one line here. */
export const plugins: IntegrationDefinition[] = [httpRequest, sendgrid, mailgun, slack, twilio];
