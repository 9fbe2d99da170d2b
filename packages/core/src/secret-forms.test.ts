import { describe, expect, it } from 'vitest';
import { isBase64Form, secretValueForms } from './secret-forms.js';

const texts = (value: string) => secretValueForms(value).map((form) => form.text);

describe('secretValueForms', () => {
  it('lists the value as is, URL-encoded, JSON-escaped and in hex of both cases', () => {
    const forms = secretValueForms('fake "key"/1');
    expect(forms).toContainEqual({ kind: 'plain', text: 'fake "key"/1' });
    expect(forms).toContainEqual({ kind: 'url', text: 'fake%20%22key%22%2F1' });
    expect(forms).toContainEqual({ kind: 'json', text: 'fake \\"key\\"/1' });
    expect(forms).toContainEqual({ kind: 'hex', text: '66616b6520226b6579222f31' });
    expect(forms).toContainEqual({ kind: 'HEX', text: '66616B6520226B6579222F31' });
  });

  it('finds the value base64-encoded at every alignment, in base64 and base64url', () => {
    const value = 'fake-pass>>?word-0001';
    for (const prefix of ['', 'a', 'ab', 'user:', 'fake-user-x:']) {
      const encoded = btoa(`${prefix}${value}`);
      const url = encoded.replace(/\+/g, '-').replace(/\//g, '_');
      const base64 = secretValueForms(value).filter(isBase64Form);
      expect(
        base64.some((form) => encoded.includes(form.text)),
        `base64 after '${prefix}'`,
      ).toBe(true);
      expect(
        base64.some((form) => url.includes(form.text)),
        `base64url after '${prefix}'`,
      ).toBe(true);
    }
  });

  it('leaves out base64 cores too short to be specific, and never yields an empty or repeated form', () => {
    expect(secretValueForms('abc').filter(isBase64Form)).toEqual([]);
    const all = texts('1234');
    expect(all.every((text) => text.length > 0)).toBe(true);
    expect(new Set(all).size).toBe(all.length);
    // '1234' is its own JSON escape and URL encoding: one plain form, not three.
    expect(all.filter((text) => text === '1234')).toHaveLength(1);
  });
});
