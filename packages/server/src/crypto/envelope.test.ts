import { createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encryptFormat1Envelope } from '../testing/legacy-envelope.js';
import {
  DecryptionError,
  decryptSecretFields,
  ENVELOPE_FORMAT_VERSION,
  encryptSecretFields,
  readEnvelopeHeader,
  type SecretBinding,
  UNBOUND_ENVELOPE_FORMAT_VERSION,
} from './envelope.js';
import { generateDataKey } from './key-provider.js';

// Obviously fake values only.
const FAKE_DATA_KEY: KeyObject = createSecretKey(Buffer.alloc(32, 0x42));
const OTHER_DATA_KEY: KeyObject = createSecretKey(Buffer.alloc(32, 0x43));
const CANARY = 'FAKE-CANARY-not-a-real-token-0123456789';
const binding: SecretBinding = {
  workspaceId: 'ws_fake_1',
  secretId: 'sec_fake_1',
  credentialType: 'exampleApiKey',
  publicFields: { region: 'eu', allowedDomains: 'api.example.test' },
};

function encrypt(fields: Record<string, string>, version = 1, b: SecretBinding = binding): Buffer {
  return encryptSecretFields(FAKE_DATA_KEY, version, b, fields);
}

function decryptionFailure(run: () => unknown): DecryptionError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(DecryptionError);
    return error as DecryptionError;
  }
  throw new Error('expected a DecryptionError, but decryption succeeded');
}

describe('secret envelopes', () => {
  describe('round trips', () => {
    it.each([
      ['an empty object', {}],
      ['a 1-byte value', { apiKey: 'x' }],
      ['an 8 KiB value', { apiKey: 'k'.repeat(8 * 1024) }],
      ['non-ASCII and emoji values', { apiKey: 'clé-секрет-鍵-🔑🗝️', note: 'ünïcødé 👩‍💻' }],
      [
        'several fields, including an empty string',
        { user: 'fake-user', password: 'fake-password', extra: '' },
      ],
      [
        'field names that look like prototype keys',
        { constructor: 'fake', toString: 'fake', hasOwnProperty: 'fake' },
      ],
    ])('decrypts %s back to the same fields', (_name, fields) => {
      const envelope = encrypt(fields);
      expect(decryptSecretFields(FAKE_DATA_KEY, binding, envelope)).toEqual(fields);
    });

    it('does not let a "__proto__" field change the prototype of the result', () => {
      const fields = JSON.parse('{"__proto__":"fake-value"}') as Record<string, string>;
      const result = decryptSecretFields(FAKE_DATA_KEY, binding, encrypt(fields));
      expect(Object.getPrototypeOf(result)).toBe(Object.prototype);
      expect(Object.hasOwn(result, '__proto__')).toBe(true);
    });

    it('works with a freshly generated data key', () => {
      const raw = generateDataKey();
      const key = createSecretKey(raw);
      const envelope = encryptSecretFields(key, 7, binding, { apiKey: CANARY });
      expect(decryptSecretFields(key, binding, envelope)).toEqual({ apiKey: CANARY });
    });
  });

  describe('format', () => {
    it('lays out format version, data key version, nonce, tag and ciphertext', () => {
      const fields = { apiKey: CANARY };
      const envelope = encrypt(fields, 0x01020304);
      expect(ENVELOPE_FORMAT_VERSION).toBe(2);
      expect(envelope[0]).toBe(ENVELOPE_FORMAT_VERSION);
      expect(envelope.readUInt32BE(1)).toBe(0x01020304);
      expect(envelope.length).toBe(1 + 4 + 12 + 16 + Buffer.byteLength(JSON.stringify(fields)));
    });

    it('binds exactly the associated data the header comment documents (format 2)', () => {
      // Written out by hand from the table in envelope.ts: stored envelopes depend on these bytes never changing.
      const u32 = (n: number) => {
        const bytes = Buffer.alloc(4);
        bytes.writeUInt32BE(n);
        return bytes;
      };
      const text = (value: string) => Buffer.concat([u32(Buffer.byteLength(value)), Buffer.from(value)]);
      const envelope = encrypt({ apiKey: CANARY }, 7);
      const aad = Buffer.concat([
        text('latchkey secret envelope'),
        Buffer.from([2]),
        u32(7),
        text(binding.workspaceId),
        text(binding.secretId),
        text(binding.credentialType),
        u32(2),
        text('allowedDomains'),
        text('api.example.test'),
        text('region'),
        text('eu'),
      ]);
      const decipher = createDecipheriv('aes-256-gcm', FAKE_DATA_KEY, envelope.subarray(5, 17), {
        authTagLength: 16,
      });
      decipher.setAAD(aad);
      decipher.setAuthTag(envelope.subarray(17, 33));
      const plain = Buffer.concat([decipher.update(envelope.subarray(33)), decipher.final()]);
      expect(JSON.parse(plain.toString('utf8'))).toEqual({ apiKey: CANARY });
    });

    it('exposes the header so callers know which data key version to load', () => {
      expect(readEnvelopeHeader(encrypt({ apiKey: CANARY }, 42))).toEqual({
        formatVersion: 2,
        dataKeyVersion: 42,
      });
      expect(readEnvelopeHeader(encrypt({}, 0xffff_ffff)).dataKeyVersion).toBe(0xffff_ffff);
    });

    it('rejects a data key version outside uint32', () => {
      for (const version of [-1, 1.5, 2 ** 32, Number.NaN]) {
        expect(() => encrypt({ apiKey: CANARY }, version)).toThrow(RangeError);
      }
    });

    it('rejects a key that is not a 32-byte secret key', () => {
      const short = createSecretKey(Buffer.alloc(16, 0x42));
      expect(() => encryptSecretFields(short, 1, binding, {})).toThrow(TypeError);
    });

    it('rejects non-string field values', () => {
      expect(() => encrypt({ apiKey: 1 } as unknown as Record<string, string>)).toThrow(TypeError);
    });

    it('rejects an empty binding value', () => {
      expect(() => encrypt({}, 1, { ...binding, secretId: '' })).toThrow(TypeError);
    });
  });

  describe('confidentiality', () => {
    it('contains neither the plaintext nor its base64 nor its hex', () => {
      const fields = { apiKey: CANARY };
      const envelope = encrypt(fields);
      const json = JSON.stringify(fields);
      const needles = [CANARY, json];
      const haystacks = [envelope.toString('latin1'), envelope.toString('utf8')];
      const encodings = [
        envelope.toString('base64'),
        envelope.toString('base64url'),
        envelope.toString('hex'),
      ];
      for (const needle of needles) {
        const forms = [
          needle,
          Buffer.from(needle).toString('base64'),
          Buffer.from(needle).toString('base64url'),
          Buffer.from(needle).toString('hex'),
        ];
        for (const form of forms) {
          for (const haystack of [...haystacks, ...encodings]) expect(haystack.includes(form)).toBe(false);
        }
      }
    });

    it('gives different envelopes for the same plaintext twice', () => {
      const a = encrypt({ apiKey: CANARY });
      const b = encrypt({ apiKey: CANARY });
      expect(a.equals(b)).toBe(false);
      expect(a.subarray(5, 17).equals(b.subarray(5, 17))).toBe(false); // fresh nonce
      expect(a.subarray(33).equals(b.subarray(33))).toBe(false);
    });
  });

  describe('integrity', () => {
    it('fails with DecryptionError when any single byte of the envelope is flipped', () => {
      const envelope = encrypt({ apiKey: CANARY, region: 'eu' });
      for (let index = 0; index < envelope.length; index++) {
        for (const mask of [0x01, 0x80, 0xff]) {
          const altered = Buffer.from(envelope);
          altered[index] = (altered[index] as number) ^ mask;
          const error = decryptionFailure(() => decryptSecretFields(FAKE_DATA_KEY, binding, altered));
          expect(error.message).not.toContain(CANARY);
        }
      }
    });

    it('fails when the envelope is moved to another secret id', () => {
      const envelope = encrypt({ apiKey: CANARY });
      decryptionFailure(() =>
        decryptSecretFields(FAKE_DATA_KEY, { ...binding, secretId: 'sec_fake_2' }, envelope),
      );
    });

    it('fails when the envelope is moved to another workspace id', () => {
      const envelope = encrypt({ apiKey: CANARY });
      decryptionFailure(() =>
        decryptSecretFields(FAKE_DATA_KEY, { ...binding, workspaceId: 'ws_fake_2' }, envelope),
      );
    });

    it('fails when the envelope is moved to another credential type', () => {
      const envelope = encrypt({ apiKey: CANARY });
      decryptionFailure(() =>
        decryptSecretFields(FAKE_DATA_KEY, { ...binding, credentialType: 'otherApiKey' }, envelope),
      );
    });

    it('binds values unambiguously (moving characters between binding values fails)', () => {
      const envelope = encrypt({ apiKey: CANARY }, 1, {
        workspaceId: 'ab',
        secretId: 'c',
        credentialType: 'd',
        publicFields: {},
      });
      decryptionFailure(() =>
        decryptSecretFields(
          FAKE_DATA_KEY,
          { workspaceId: 'a', secretId: 'bc', credentialType: 'd', publicFields: {} },
          envelope,
        ),
      );
    });

    describe('public fields', () => {
      const withPublic = (publicFields: Record<string, string>) => ({ ...binding, publicFields });
      const sealed = () =>
        encrypt({ apiKey: CANARY }, 1, withPublic({ region: 'eu', domain: 'mg.example.test' }));

      it('decrypts with the same public fields in any order (jsonb reorders keys)', () => {
        const envelope = sealed();
        const reordered = withPublic({ domain: 'mg.example.test', region: 'eu' });
        expect(decryptSecretFields(FAKE_DATA_KEY, reordered, envelope)).toEqual({ apiKey: CANARY });
        expect(Object.keys(reordered.publicFields)).toEqual(['domain', 'region']);
      });

      it.each([
        ['a value changed', { region: 'us', domain: 'mg.example.test' }],
        ['a value widened', { region: 'eu', domain: 'mg.example.test, evil.example.test' }],
        ['a value emptied', { region: '', domain: 'mg.example.test' }],
        ['a field added', { region: 'eu', domain: 'mg.example.test', allowedDomains: 'evil.example.test' }],
        ['a field removed', { region: 'eu' }],
        ['every field removed', {}],
        ['a field renamed', { Region: 'eu', domain: 'mg.example.test' }],
      ])('fails with %s', (_name, publicFields) => {
        const error = decryptionFailure(() =>
          decryptSecretFields(FAKE_DATA_KEY, withPublic(publicFields), sealed()),
        );
        expect(error.reason).toBe('authentication-failed');
      });

      it('fails when a stored public value is not a string (the column rewritten to hold a number)', () => {
        const publicFields = { region: 1, domain: 'mg.example.test' } as unknown as Record<string, string>;
        const error = decryptionFailure(() =>
          decryptSecretFields(FAKE_DATA_KEY, withPublic(publicFields), sealed()),
        );
        expect(error.reason).toBe('authentication-failed');
      });

      it.each([
        ['characters moved from a name to its value', { ab: 'c' }, { a: 'bc' }],
        ['characters moved between two fields', { a: 'bc', d: 'e' }, { a: 'b', cd: 'e' }],
        ['an empty value against no field', { a: '', b: 'c' }, { b: 'c' }],
        [
          'a field spelled out inside a value',
          { a: 'x' },
          { a: 'x\u0000\u0000\u0000\u0001b\u0000\u0000\u0000\u0001y' },
        ],
        ['names that differ only beyond ASCII (NFC and NFD)', { '\u00e9': 'x' }, { 'e\u0301': 'x' }],
      ])('encodes unambiguously: %s', (_name, sealedWith, readWith) => {
        const envelope = encrypt({ apiKey: CANARY }, 1, withPublic(sealedWith));
        expect(decryptSecretFields(FAKE_DATA_KEY, withPublic(sealedWith), envelope)).toEqual({
          apiKey: CANARY,
        });
        decryptionFailure(() => decryptSecretFields(FAKE_DATA_KEY, withPublic(readWith), envelope));
      });

      it('refuses to encrypt public fields that are not strings', () => {
        const publicFields = { region: ['eu'] } as unknown as Record<string, string>;
        expect(() => encrypt({ apiKey: CANARY }, 1, withPublic(publicFields))).toThrow(TypeError);
        // A lone surrogate becomes U+FFFD in UTF-8: refused, or 'x\uD800' and 'x\uFFFD' would encode alike.
        expect(() => encrypt({}, 1, withPublic({ region: 'x\uD800' }))).toThrow(TypeError);
        expect(() => encrypt({}, 1, withPublic({ '\uDC00': 'x' }))).toThrow(TypeError);
        const sealedWithReplacement = encrypt({}, 1, withPublic({ region: 'x\uFFFD' }));
        decryptionFailure(() =>
          decryptSecretFields(FAKE_DATA_KEY, withPublic({ region: 'x\uD800' }), sealedWithReplacement),
        );
        expect(
          decryptSecretFields(FAKE_DATA_KEY, withPublic({ region: 'x\uFFFD' }), sealedWithReplacement),
        ).toEqual({});
        expect(() => encrypt({}, 1, { ...binding, publicFields: null } as unknown as SecretBinding)).toThrow(
          TypeError,
        );
      });
    });

    describe('format 1 (written before public fields were bound)', () => {
      const legacy = () => encryptFormat1Envelope(FAKE_DATA_KEY, 1, binding, { apiKey: CANARY });

      it('is refused unless the caller is the upgrade', () => {
        const envelope = legacy();
        expect(envelope[0]).toBe(UNBOUND_ENVELOPE_FORMAT_VERSION);
        const error = decryptionFailure(() => decryptSecretFields(FAKE_DATA_KEY, binding, envelope));
        expect(error.reason).toBe('unbound-format');
        expect(error.message).toContain('latchkey keys upgrade-envelopes');
      });

      it('is read by the upgrade, still bound to its secret, workspace, credential type and data key', () => {
        const envelope = legacy();
        const upgrade = { acceptUnbound: true };
        expect(decryptSecretFields(FAKE_DATA_KEY, binding, envelope, upgrade)).toEqual({ apiKey: CANARY });
        for (const other of [
          { ...binding, secretId: 'sec_fake_2' },
          { ...binding, workspaceId: 'ws_fake_2' },
          { ...binding, credentialType: 'otherApiKey' },
        ]) {
          decryptionFailure(() => decryptSecretFields(FAKE_DATA_KEY, other, envelope, upgrade));
        }
        decryptionFailure(() => decryptSecretFields(OTHER_DATA_KEY, binding, envelope, upgrade));
      });

      it('cannot be forged from a format-2 envelope by rewriting its version byte (the version is bound)', () => {
        const envelope = encrypt({ apiKey: CANARY });
        envelope[0] = UNBOUND_ENVELOPE_FORMAT_VERSION;
        const error = decryptionFailure(() =>
          decryptSecretFields(FAKE_DATA_KEY, binding, envelope, { acceptUnbound: true }),
        );
        expect(error.reason).toBe('authentication-failed');
      });
    });

    it('fails with another data key', () => {
      const envelope = encrypt({ apiKey: CANARY });
      decryptionFailure(() => decryptSecretFields(OTHER_DATA_KEY, binding, envelope));
    });

    it('fails when the data key version in the header is changed', () => {
      const envelope = encrypt({ apiKey: CANARY }, 1);
      envelope.writeUInt32BE(2, 1);
      decryptionFailure(() => decryptSecretFields(FAKE_DATA_KEY, binding, envelope));
    });

    it('rejects a truncated tag / too-short envelope', () => {
      const envelope = encrypt({ apiKey: CANARY });
      // Header with the tag cut short, and every shorter prefix.
      for (let length = 0; length < 1 + 4 + 12 + 16 + 2; length++) {
        const error = decryptionFailure(() =>
          decryptSecretFields(FAKE_DATA_KEY, binding, envelope.subarray(0, length)),
        );
        expect(error.reason).toBe('too-short');
      }
      // A truncated ciphertext fails authentication.
      decryptionFailure(() =>
        decryptSecretFields(FAKE_DATA_KEY, binding, envelope.subarray(0, envelope.length - 1)),
      );
      // An envelope whose tag was shortened (bytes removed from the tag field) does not authenticate.
      const shortTag = Buffer.concat([envelope.subarray(0, 17 + 8), envelope.subarray(33)]);
      decryptionFailure(() => decryptSecretFields(FAKE_DATA_KEY, binding, shortTag));
      expect(() => readEnvelopeHeader(Buffer.alloc(10))).toThrow(DecryptionError);
    });

    it('rejects an unknown format version', () => {
      for (const version of [0, 3, 0xff]) {
        const envelope = encrypt({ apiKey: CANARY });
        envelope[0] = version;
        const error = decryptionFailure(() => decryptSecretFields(FAKE_DATA_KEY, binding, envelope));
        expect(error.reason).toBe('unsupported-format');
        expect(() => readEnvelopeHeader(envelope)).toThrow(DecryptionError);
      }
    });

    it('never puts plaintext, ciphertext or key bytes in the error', () => {
      const envelope = encrypt({ apiKey: CANARY });
      const altered = Buffer.from(envelope);
      altered[40] = (altered[40] as number) ^ 1;
      const error = decryptionFailure(() => decryptSecretFields(FAKE_DATA_KEY, binding, altered));
      const printed = `${error.message} ${String(error.stack)} ${JSON.stringify(error)}`;
      expect(printed).not.toContain(CANARY);
      expect(printed).not.toContain(envelope.subarray(33).toString('hex'));
      expect(printed).not.toContain(Buffer.alloc(32, 0x42).toString('base64'));
      expect(printed).not.toContain(Buffer.alloc(32, 0x42).toString('hex'));
      expect(error.cause).toBeUndefined();
      expect(error.message).toMatch(/could not be decrypted/);
    });
  });
});
