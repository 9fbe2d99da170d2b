/**
 * The forms a secret value takes when something quotes it — the one definition that the runner's scrubber,
 * the plugin conformance checks, the fake services and the canary test all use. Isomorphic (no Buffer).
 */

export type SecretFormKind = 'plain' | 'url' | 'json' | 'hex' | 'HEX' | 'base64' | 'base64url';

export interface SecretForm {
  kind: SecretFormKind;
  text: string;
}

/** Base64 cores shorter than this are too unspecific to look for (they would match unrelated text). */
const MIN_BASE64_CORE = 8;

const encoder = new TextEncoder();

function base64(bytes: Uint8Array): string {
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/**
 * Every form of `value`: as is, URL-encoded, JSON-escaped, hex (both cases), and base64 and base64url at each
 * of the three byte alignments. A value inside `Basic base64(user:password)` is encoded at an offset that
 * depends on what precedes it, so for each alignment only the characters made of the value's own bytes (its
 * "core") are stable; a longer encoded text that contains the value contains one of these cores.
 * Forms are distinct and non-empty; base64 cores shorter than 8 characters are left out.
 */
export function secretValueForms(value: string): SecretForm[] {
  const bytes = encoder.encode(value);
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
  const forms: SecretForm[] = [
    { kind: 'plain', text: value },
    { kind: 'url', text: encodeURIComponent(value) },
    { kind: 'json', text: JSON.stringify(value).slice(1, -1) },
    { kind: 'hex', text: hex },
    { kind: 'HEX', text: hex.toUpperCase() },
  ];
  for (let offset = 0; offset < 3; offset++) {
    const shifted = new Uint8Array(offset + bytes.length);
    shifted.set(bytes, offset);
    const whole = Math.floor(shifted.length / 3) * 4;
    const core = base64(shifted).slice(offset === 0 ? 0 : 4, whole);
    if (core.length < MIN_BASE64_CORE) continue;
    forms.push({ kind: 'base64', text: core });
    forms.push({ kind: 'base64url', text: core.replace(/\+/g, '-').replace(/\//g, '_') });
  }
  return forms.filter(
    (form, i) => form.text.length > 0 && forms.findIndex((other) => other.text === form.text) === i,
  );
}

/** Whether a form is a base64 core (the scrubber removes the whole encoded run around it, not just the core). */
export const isBase64Form = (form: SecretForm): boolean =>
  form.kind === 'base64' || form.kind === 'base64url';
