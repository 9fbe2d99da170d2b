/**
 * Whether text shows a secret value (in any of the forms of `secretValueForms`, core's one definition of
 * them), and whether a part of a request carries one. No vitest here.
 */
import { secretValueForms } from '../secret-forms.js';

const decoder = new TextDecoder();

/** Whether text shows any of the secret values, in any of its forms or in another letter case. */
export function showsSecret(text: string, secretValues: readonly string[]): boolean {
  const lower = text.toLowerCase();
  return secretValues.some(
    (value) =>
      value.length >= 4 &&
      (secretValueForms(value).some((form) => text.includes(form.text)) ||
        lower.includes(value.toLowerCase())),
  );
}

/** The base64 words of a header value (`Basic dXNlcjpwYXNz`), decoded. */
function decodedBase64Words(text: string): string[] {
  const words: string[] = [];
  for (const word of text.split(/[\s,;"]+/)) {
    if (word.length < 4 || word.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(word)) continue;
    try {
      words.push(decoder.decode(Uint8Array.from(atob(word), (c) => c.charCodeAt(0))));
    } catch {
      // not base64 after all
    }
  }
  return words;
}

/** Whether one part of a request (a header or query value, the URL) carries a secret value: as is, URL-encoded or in base64. */
export function carriesSecret(part: string, secretValues: readonly string[]): boolean {
  const decoded = decodedBase64Words(part);
  return secretValues.some(
    (value) =>
      value.length > 0 &&
      (part.includes(value) ||
        part.includes(encodeURIComponent(value)) ||
        decoded.some((word) => word.includes(value))),
  );
}
