import {
  type ActionContext,
  type ActionResult,
  emailMessageFields,
  field,
  joinUrl,
  plural,
} from '@latchkey/core';
import { z } from 'zod';

export const sendgridParams = z.object({
  from: field.text({
    label: 'From',
    placeholder: 'team@example.com',
    help: 'A verified sender address.',
    example: 'team@example.com',
  }),
  ...emailMessageFields,
});

type Params = z.output<typeof sendgridParams>;

function errorMessages(body: string): string {
  try {
    const parsed = JSON.parse(body) as { errors?: { message?: string; field?: string | null }[] };
    const messages = (parsed.errors ?? [])
      .map((e) => (e.field ? `${e.field}: ${e.message}` : e.message))
      .filter(Boolean);
    return messages.length ? `: ${messages.join('; ')}` : '';
  } catch {
    return '';
  }
}

export async function sendEmail(ctx: ActionContext<Params>): Promise<ActionResult> {
  const recipients = ctx.params.to
    .split(',')
    .map((email) => email.trim())
    .filter(Boolean)
    .map((email) => ({ email }));
  const response = await ctx.send({
    method: 'POST',
    url: joinUrl(ctx.baseUrl(), '/v3/mail/send'),
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      personalizations: [{ to: recipients }],
      from: { email: ctx.params.from },
      subject: ctx.params.subject,
      content: [{ type: 'text/plain', value: ctx.params.text }],
    }),
  });
  if (response.status === 202 || response.status === 200) {
    return {
      ok: true,
      summary: `Email to ${plural(recipients.length, 'recipient')} accepted by SendGrid (${response.status})`,
    };
  }
  if (response.status === 401 || response.status === 403) {
    return { ok: false, summary: 'The credential was rejected by SendGrid' };
  }
  return {
    ok: false,
    summary: `SendGrid refused the email (HTTP ${response.status})${errorMessages(response.body)}`,
  };
}
