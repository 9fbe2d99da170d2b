import { inspect } from 'node:util';
import { type HttpResponse, isBase64Form, secretValueForms } from '@latchkey/core';

/**
 * Decrypted credential fields, held only in memory for the duration of one use. Printing, logging or
 * serialising it shows `[redacted]`, so a stray `console.log` or JSON response cannot leak it.
 */
export class DecryptedCredential {
  readonly #fields: Readonly<Record<string, string>>;

  constructor(
    readonly credentialType: string,
    readonly publicFields: Readonly<Record<string, string>>,
    secretFields: Record<string, string>,
  ) {
    this.#fields = Object.freeze({ ...publicFields, ...secretFields });
    const values = Object.values(secretFields).filter((v) => v.length > 0);
    this.secretValues = [...new Set([...values, ...values.flatMap(urlSecretParts)])];
  }

  /**
   * The secret values themselves (and, for a secret that is a URL, its secret-bearing parts), for scrubbing
   * them from anything shown to a person.
   */
  readonly secretValues: readonly string[];

  /** Every field, public and secret, for the credential type's `authenticate`. */
  fields(): Record<string, string> {
    return { ...this.#fields };
  }

  toJSON(): string {
    return '[redacted]';
  }

  toString(): string {
    return '[redacted]';
  }

  [inspect.custom](): string {
    return 'DecryptedCredential [redacted]';
  }
}

/**
 * The parts of a URL-valued secret (a Slack webhook URL, say) that carry the secret on their own: a service
 * or gateway that answers "Cannot POST /services/T…/B…/<token>" echoes the path, not the whole URL.
 */
function urlSecretParts(value: string): string[] {
  if (!/^https?:\/\//i.test(value)) return [];
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return [];
  }
  const parts = [
    `${url.pathname}${url.search}`,
    url.pathname,
    ...url.pathname.split('/'),
    ...url.searchParams.values(),
  ];
  if (url.password) parts.push(url.password, decodeURIComponent(url.password));
  return parts.filter((part) => part.length >= 16);
}

const BASE64_CHAR = /[A-Za-z0-9+/_-]/;

/** Replaces every run of base64 characters that contains `core` (the whole encoded token goes, not just the core). */
function redactBase64Runs(text: string, core: string): string {
  let result = text;
  let from = 0;
  for (;;) {
    const at = result.indexOf(core, from);
    if (at < 0) return result;
    let start = at;
    let end = at + core.length;
    while (start > 0 && BASE64_CHAR.test(result[start - 1] as string)) start--;
    while (end < result.length && BASE64_CHAR.test(result[end] as string)) end++;
    while (result[end] === '=') end++;
    result = `${result.slice(0, start)}[redacted]${result.slice(end)}`;
    from = start + '[redacted]'.length;
  }
}

/**
 * Values shorter than this are too unspecific to remove wherever they occur: a two-digit PIN would take every
 * "12" out of a response. They are removed only as whole tokens (below); longer values are removed anywhere.
 */
const SHORT_VALUE_LENGTH = 4;

/** A letter or digit on either side means the occurrence is part of a longer word or number, not the value. */
function wholeToken(form: string): RegExp {
  const escaped = form.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(?<![\\p{L}\\p{N}])${escaped}(?![\\p{L}\\p{N}])`, 'gu');
}

/**
 * Removes secret values from text shown to people (summaries, error messages), including the encodings a
 * remote service might echo them back in (`secretValueForms`): base64 at any alignment (Basic auth), URL encoding,
 * JSON escaping, hex.
 * A value shorter than SHORT_VALUE_LENGTH is removed (as is, URL-encoded, JSON-escaped, in hex) only where it
 * stands as a whole token — `pin=42`, `"42"`, `code 42.` — never inside a longer word or number (`420`, `x42`).
 */
export function scrubSecrets(text: string, secretValues: readonly string[]): string {
  let result = text;
  // Longest first, so that a value containing another (a URL and its path) is removed whole.
  for (const value of [...secretValues].sort((a, b) => b.length - a.length)) {
    const short = value.length < SHORT_VALUE_LENGTH;
    for (const form of secretValueForms(value)) {
      if (isBase64Form(form)) result = redactBase64Runs(result, form.text);
      else if (short) result = result.replace(wholeToken(form.text), '[redacted]');
      else result = result.split(form.text).join('[redacted]');
    }
  }
  // Basic auth headers carry "user:password" in base64; a service echoing the header leaks both together.
  result = result.replace(/Basic\s+[A-Za-z0-9+/=]{8,}/g, 'Basic [redacted]');
  return result;
}

/**
 * A response with every secret value removed from its body and headers, before an integration's code reads
 * it: whatever the plugin makes of an echoed credential (a filtered error code, a quoted message), the value
 * is no longer there to be shown.
 */
export function scrubResponse(response: HttpResponse, secretValues: readonly string[]): HttpResponse {
  if (secretValues.length === 0) return response;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(response.headers))
    headers[name] = scrubSecrets(value, secretValues);
  return { status: response.status, headers, body: scrubSecrets(response.body, secretValues) };
}
