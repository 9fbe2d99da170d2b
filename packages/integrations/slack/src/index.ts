import { defineIntegration } from '@latchkey/core';
import { postMessage, slackParams } from './action.js';
import { slackBotToken, slackOAuth, slackWebhook } from './credentials.js';

export const slack = defineIntegration({
  id: 'slack',
  displayName: 'Slack',
  description: 'Post messages to Slack with a connected Slack app, a bot token or an incoming webhook.',
  nodeType: 'slack',
  baseUrls: {
    default: 'https://slack.com/api',
    hooks: 'https://hooks.slack.com',
    oauth: 'https://slack.com/oauth/v2',
  },
  credentialTypes: [slackBotToken, slackWebhook, slackOAuth],
  params: slackParams,
  action: postMessage,
});

export default slack;
export { slackBotToken, slackOAuth, slackParams, slackWebhook };
