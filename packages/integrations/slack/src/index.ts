import { defineIntegration } from '@latchkey/core';
import { postMessage, slackParams } from './action.js';
import { slackBotToken, slackWebhook } from './credentials.js';

export const slack = defineIntegration({
  id: 'slack',
  displayName: 'Slack',
  description: 'Post messages to Slack with a bot token or an incoming webhook.',
  nodeType: 'slack',
  baseUrls: { default: 'https://slack.com/api', hooks: 'https://hooks.slack.com' },
  credentialTypes: [slackBotToken, slackWebhook],
  params: slackParams,
  action: postMessage,
});

export default slack;
export { slackBotToken, slackParams, slackWebhook };
