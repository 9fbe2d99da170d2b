import { type ActionContext, type ActionResult, field, joinUrl } from '@latchkey/core';
import { z } from 'zod';
import { accountPath } from './credentials.js';

/** A phone number in E.164 form: "+", a country code and up to 15 digits in all. */
const E164 = /^\+[1-9][0-9]{1,14}$/;
/** E.164, or an alphanumeric sender ID (up to 11 letters, digits and spaces, at least one letter). */
const SENDER = /^(\+[1-9][0-9]{1,14}|(?=[A-Za-z0-9 ]*[A-Za-z])[A-Za-z0-9 ]{1,11})$/;
/** Twilio refuses longer message bodies (error 21617). */
const MAX_BODY = 1600;

export const twilioParams = z.object({
  from: field.text({
    label: 'From',
    help: 'A phone number of your Twilio account in E.164 form, or an alphanumeric sender ID where allowed.',
    placeholder: '+15005550006',
    pattern: SENDER,
    patternMessage:
      'Must be a phone number in E.164 form (`+` and up to 15 digits, like `+15005550006`) or a sender ID of up to 11 letters, digits and spaces.',
    example: '+15005550006',
  }),
  to: field.text({
    label: 'To',
    help: 'The recipient’s phone number in E.164 form.',
    placeholder: '+15558675310',
    pattern: E164,
    patternMessage: 'Must be a phone number in E.164 form: `+` and up to 15 digits, like `+15558675310`.',
    example: '+15558675310',
  }),
  body: field.text({
    label: 'Message',
    multiline: true,
    placeholder: 'Your verification code is 123456',
    check: (text) => (text.length > MAX_BODY ? `Must be at most ${MAX_BODY} characters.` : undefined),
    example: 'Hello from Latchkey.',
  }),
});

type Params = z.output<typeof twilioParams>;

function oneLine(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is replaced
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
}

/** The parts of a Twilio answer a summary may show: each is checked against the shape Twilio gives it. */
function readAnswer(body: string): { sid?: string; status?: string; code?: number; message?: string } {
  let parsed: Record<string, unknown>;
  try {
    const value = JSON.parse(body) as unknown;
    if (!value || typeof value !== 'object') return {};
    parsed = value as Record<string, unknown>;
  } catch {
    return {};
  }
  const { sid, status, code, message } = parsed;
  return {
    ...(typeof sid === 'string' && /^(SM|MM)[0-9a-fA-F]{32}$/.test(sid) ? { sid } : {}),
    ...(typeof status === 'string' && /^[a-z_]{1,32}$/.test(status) ? { status } : {}),
    ...(typeof code === 'number' && Number.isInteger(code) && code > 0 ? { code } : {}),
    // Twilio's reason, e.g. "The 'To' number is not a valid phone number." (bounded, one line).
    ...(typeof message === 'string' && message ? { message: oneLine(message).slice(0, 200) } : {}),
  };
}

/** Sends one SMS: `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded To, From and Body. */
export async function sendSms(ctx: ActionContext<Params>): Promise<ActionResult> {
  const accountSid = ctx.credential.publicFields.accountSid ?? '';
  const form = new URLSearchParams({ To: ctx.params.to, From: ctx.params.from, Body: ctx.params.body });
  const response = await ctx.send({
    method: 'POST',
    url: joinUrl(ctx.baseUrl(), `${accountPath(accountSid)}/Messages.json`),
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
  });
  if (response.status === 401 || response.status === 403)
    return { ok: false, summary: 'The credential was rejected by Twilio' };
  const answer = response.status >= 200 && response.status < 300 ? readAnswer(response.body) : undefined;
  if (answer) {
    const details = [answer.status, answer.sid].filter(Boolean).join(', ');
    return { ok: true, summary: `SMS accepted by Twilio${details ? ` (${details})` : ''}` };
  }
  // Twilio explains a refusal as {code, message, more_info, status}; its error code is what its docs index.
  const error = readAnswer(response.body);
  const reason = [error.code ? `error ${error.code}` : '', error.message ?? ''].filter(Boolean).join(': ');
  return {
    ok: false,
    summary: `Twilio refused the SMS (HTTP ${response.status}${reason ? `, ${reason}` : ''})`,
  };
}
