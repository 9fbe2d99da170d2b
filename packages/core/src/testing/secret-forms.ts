/** How a secret value can show up in text, and whether a part of a request carries one. No vitest here. */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function base64(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function hex(value: string): string {
  return Array.from(encoder.encode(value), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

/**
 * The forms a secret value takes when something quotes it: as is, URL-encoded, JSON-escaped, hex, and base64
 * at each of the three byte alignments (a password inside `Basic base64(user:password)` is encoded at an
 * offset that depends on the user name, so only the groups made of the password's own bytes are stable).
 */
export function secretForms(value: string): string[] {
  const forms = new Set<string>([
    value,
    encodeURIComponent(value),
    JSON.stringify(value).slice(1, -1),
    hex(value),
  ]);
  const bytes = encoder.encode(value);
  for (let offset = 0; offset < 3; offset++) {
    const shifted = new Uint8Array(offset + bytes.length);
    shifted.set(bytes, offset);
    const whole = Math.floor(shifted.length / 3) * 4;
    const core = base64(shifted).slice(offset === 0 ? 0 : 4, whole);
    if (core.length >= 8) forms.add(core);
  }
  return [...forms].filter((form) => form.length >= 4);
}

/** Whether text shows any of the secret values, in any form of `secretForms` or in another letter case. */
export function showsSecret(text: string, secretValues: readonly string[]): boolean {
  const lower = text.toLowerCase();
  return secretValues.some(
    (value) =>
      value.length >= 4 &&
      (secretForms(value).some((form) => text.includes(form)) || lower.includes(value.toLowerCase())),
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
