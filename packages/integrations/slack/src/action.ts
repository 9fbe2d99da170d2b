import { type ActionContext, type ActionResult, field, joinUrl } from '@latchkey/core';
import { z } from 'zod';
import { parseSlackBody } from './credentials.js';

export const slackParams = z.object({
  channel: field
    .text({
      label: 'Channel',
      help: 'Channel id or name (bot tokens only; a webhook always posts to its own channel).',
      placeholder: 'C0123456789',
      example: 'C0FAKECHANNEL',
    })
    .optional(),
  text: field.text({
    label: 'Message',
    multiline: true,
    placeholder: 'Deploy finished',
    example: 'Deploy finished',
  }),
});

type Params = z.output<typeof slackParams>;

const REJECTED = new Set([
  'invalid_auth',
  'not_authed',
  'token_revoked',
  'account_inactive',
  'invalid_token',
]);

export async function postMessage(ctx: ActionContext<Params>): Promise<ActionResult> {
  if (ctx.credential.type === 'slackWebhook') {
    // `authenticate` sets the URL from the secret webhook URL.
    const response = await ctx.send({
      method: 'POST',
      url: '',
      headers: { 'Content-Type': 'application/json; charset=utf-8' },
      body: JSON.stringify({ text: ctx.params.text }),
    });
    if (response.status === 200) return { ok: true, summary: 'Message posted through the Slack webhook' };
    // Webhook errors are a bare code as the whole plain-text body (e.g. `invalid_token`); anything else is
    // reported by status only.
    const body = response.body.trim();
    const reason = /^[a-z_]{1,64}$/.test(body) ? body : '';
    if (
      response.status === 401 ||
      response.status === 403 ||
      response.status === 404 ||
      REJECTED.has(reason)
    ) {
      return {
        ok: false,
        summary: `The credential was rejected by Slack (${reason || `HTTP ${response.status}`})`,
      };
    }
    return {
      ok: false,
      summary: `Slack refused the message (HTTP ${response.status}${reason ? `: ${reason}` : ''})`,
    };
  }

  if (!ctx.params.channel)
    return { ok: false, summary: 'A channel is required when posting with a bot token' };
  const response = await ctx.send({
    method: 'POST',
    url: joinUrl(ctx.baseUrl(), '/chat.postMessage'),
    headers: { 'Content-Type': 'application/json; charset=utf-8' },
    body: JSON.stringify({ channel: ctx.params.channel, text: ctx.params.text }),
  });
  // Slack reports most failures with HTTP 200 and ok:false: branch on `ok`, not on the status.
  const body = parseSlackBody(response.body);
  if (body.ok === true)
    return { ok: true, summary: `Message posted to ${body.channel ?? ctx.params.channel}` };
  if (response.status === 401 || response.status === 403 || (body.error && REJECTED.has(body.error))) {
    return {
      ok: false,
      summary: `The credential was rejected by Slack (${body.error ?? `HTTP ${response.status}`})`,
    };
  }
  if (response.status === 429) return { ok: false, summary: 'Slack is rate limiting requests (ratelimited)' };
  return { ok: false, summary: `Slack refused the message (${body.error ?? `HTTP ${response.status}`})` };
}
