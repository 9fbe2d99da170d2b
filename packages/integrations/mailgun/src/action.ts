import { type ActionContext, type ActionResult, emailMessageFields, field, joinUrl } from '@latchkey/core';
import { z } from 'zod';

export const mailgunParams = z.object({
  from: field.text({
    label: 'From',
    placeholder: 'Team <team@mg.example.com>',
    example: 'Team <team@mg.example.com>',
  }),
  ...emailMessageFields,
});

type Params = z.output<typeof mailgunParams>;

function mailgunMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    return typeof parsed.message === 'string' ? `: ${parsed.message}` : '';
  } catch {
    return '';
  }
}

export async function sendMessage(ctx: ActionContext<Params>): Promise<ActionResult> {
  const { domain = '', region = 'us' } = ctx.credential.publicFields;
  const form = new URLSearchParams();
  form.set('from', ctx.params.from);
  form.set('to', ctx.params.to);
  form.set('subject', ctx.params.subject);
  form.set('text', ctx.params.text);
  const response = await ctx.send({
    method: 'POST',
    url: joinUrl(ctx.baseUrl(region), `/v3/${encodeURIComponent(domain)}/messages`),
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
  });
  if (response.status === 200)
    return { ok: true, summary: `Message queued by Mailgun for ${domain} (${region.toUpperCase()})` };
  if (response.status === 401 || response.status === 403) {
    return { ok: false, summary: 'The credential was rejected by Mailgun' };
  }
  return {
    ok: false,
    summary: `Mailgun refused the message (HTTP ${response.status})${mailgunMessage(response.body)}`,
  };
}
