import { createSecretKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decryptSecretFields, encryptSecretFields } from './envelope.js';
import {
  DataKeyUnwrapError,
  generateDataKey,
  type KeyProvider,
  LocalKeyProvider,
  UnknownMasterKeyError,
} from './key-provider.js';
import { type MasterKey, masterKeyId } from './master-key.js';

// Obviously fake master keys: constant byte patterns.
function fakeMasterKey(fill: number): MasterKey {
  const key = createSecretKey(Buffer.alloc(32, fill));
  return { id: masterKeyId(key), key };
}
const MK_A = fakeMasterKey(0xa1);
const MK_B = fakeMasterKey(0xb2);
const FAKE_DATA_KEY = Buffer.alloc(32, 0x5d);

describe('LocalKeyProvider', () => {
  it('round trips a wrapped data key', async () => {
    const provider: KeyProvider = new LocalKeyProvider({ active: MK_A, all: [MK_A] });
    const { keyId, wrapped } = await provider.wrapDataKey(FAKE_DATA_KEY, 'ws_fake_1');
    expect(keyId).toBe(MK_A.id);
    expect(provider.activeKeyId).toBe(MK_A.id);
    const unwrapped = await provider.unwrapDataKey(keyId, wrapped, 'ws_fake_1');
    expect(unwrapped.type).toBe('secret');
    expect(unwrapped.export().equals(FAKE_DATA_KEY)).toBe(true);
  });

  it('does not store the data key in the clear, and wraps it differently each time', async () => {
    const provider = new LocalKeyProvider({ active: MK_A, all: [MK_A] });
    const first = await provider.wrapDataKey(FAKE_DATA_KEY, 'ws_fake_1');
    const second = await provider.wrapDataKey(FAKE_DATA_KEY, 'ws_fake_1');
    expect(first.wrapped.includes(FAKE_DATA_KEY)).toBe(false);
    expect(first.wrapped.toString('hex')).not.toContain(FAKE_DATA_KEY.toString('hex'));
    expect(first.wrapped.equals(second.wrapped)).toBe(false);
    expect(first.wrapped.length).toBe(1 + 12 + 16 + 32);
  });

  it('an unwrapped data key decrypts what the original data key encrypted', async () => {
    const provider = new LocalKeyProvider({ active: MK_A, all: [MK_A] });
    const raw = generateDataKey();
    const binding = {
      workspaceId: 'ws_fake_1',
      secretId: 'sec_fake_1',
      credentialType: 'exampleApiKey',
      publicFields: {},
    };
    const envelope = encryptSecretFields(createSecretKey(raw), 1, binding, { apiKey: 'fake-value' });
    const { keyId, wrapped } = await provider.wrapDataKey(raw, 'ws_fake_1');
    raw.fill(0);
    const dataKey = await provider.unwrapDataKey(keyId, wrapped, 'ws_fake_1');
    expect(decryptSecretFields(dataKey, binding, envelope)).toEqual({ apiKey: 'fake-value' });
  });

  it('fails to unwrap a wrapped key for another workspace', async () => {
    const provider = new LocalKeyProvider({ active: MK_A, all: [MK_A] });
    const { keyId, wrapped } = await provider.wrapDataKey(FAKE_DATA_KEY, 'ws_fake_1');
    await expect(provider.unwrapDataKey(keyId, wrapped, 'ws_fake_2')).rejects.toBeInstanceOf(
      DataKeyUnwrapError,
    );
  });

  it('fails to unwrap under another known key id', async () => {
    const provider = new LocalKeyProvider({ active: MK_A, all: [MK_A, MK_B] });
    const { wrapped } = await provider.wrapDataKey(FAKE_DATA_KEY, 'ws_fake_1');
    await expect(provider.unwrapDataKey(MK_B.id, wrapped, 'ws_fake_1')).rejects.toBeInstanceOf(
      DataKeyUnwrapError,
    );
  });

  it('fails to unwrap when any byte of the wrapped key is flipped, or it is truncated', async () => {
    const provider = new LocalKeyProvider({ active: MK_A, all: [MK_A] });
    const { keyId, wrapped } = await provider.wrapDataKey(FAKE_DATA_KEY, 'ws_fake_1');
    for (let index = 0; index < wrapped.length; index++) {
      const altered = Buffer.from(wrapped);
      altered[index] = (altered[index] as number) ^ 0x01;
      await expect(provider.unwrapDataKey(keyId, altered, 'ws_fake_1')).rejects.toBeInstanceOf(
        DataKeyUnwrapError,
      );
    }
    await expect(provider.unwrapDataKey(keyId, wrapped.subarray(0, 40), 'ws_fake_1')).rejects.toBeInstanceOf(
      DataKeyUnwrapError,
    );
  });

  it('throws UnknownMasterKeyError naming an unknown key id', async () => {
    const provider = new LocalKeyProvider({ active: MK_A, all: [MK_A] });
    const { wrapped } = await provider.wrapDataKey(FAKE_DATA_KEY, 'ws_fake_1');
    expect(provider.knows('mk_0000000000000000')).toBe(false);
    const error = await provider
      .unwrapDataKey('mk_0000000000000000', wrapped, 'ws_fake_1')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnknownMasterKeyError);
    expect((error as UnknownMasterKeyError).keyId).toBe('mk_0000000000000000');
    expect((error as Error).message).toContain('mk_0000000000000000');
    expect((error as Error).message).toContain(MK_A.id);
  });

  it('accepts previous keys for unwrapping but wraps new keys with the active key id', async () => {
    const old = new LocalKeyProvider({ active: MK_B, all: [MK_B] });
    const before = await old.wrapDataKey(FAKE_DATA_KEY, 'ws_fake_1');
    expect(before.keyId).toBe(MK_B.id);

    const rotated = new LocalKeyProvider({ active: MK_A, all: [MK_A, MK_B] });
    expect(rotated.knows(MK_B.id)).toBe(true);
    expect(rotated.knows(MK_A.id)).toBe(true);
    const unwrapped = await rotated.unwrapDataKey(before.keyId, before.wrapped, 'ws_fake_1');
    expect(unwrapped.export().equals(FAKE_DATA_KEY)).toBe(true);

    const after = await rotated.wrapDataKey(unwrapped.export(), 'ws_fake_1');
    expect(after.keyId).toBe(MK_A.id);
    expect(rotated.activeKeyId).toBe(MK_A.id);

    const rotatedOnly = new LocalKeyProvider({ active: MK_A, all: [MK_A] });
    expect((await rotatedOnly.unwrapDataKey(after.keyId, after.wrapped, 'ws_fake_1')).export()).toEqual(
      FAKE_DATA_KEY,
    );
    await expect(rotatedOnly.unwrapDataKey(before.keyId, before.wrapped, 'ws_fake_1')).rejects.toBeInstanceOf(
      UnknownMasterKeyError,
    );
  });

  it('refuses a data key that is not 32 bytes', async () => {
    const provider = new LocalKeyProvider({ active: MK_A, all: [MK_A] });
    await expect(provider.wrapDataKey(Buffer.alloc(16, 1), 'ws_fake_1')).rejects.toBeInstanceOf(TypeError);
  });

  it('never puts key bytes in its errors', async () => {
    const provider = new LocalKeyProvider({ active: MK_A, all: [MK_A] });
    const { keyId, wrapped } = await provider.wrapDataKey(FAKE_DATA_KEY, 'ws_fake_1');
    const errors = [
      await provider.unwrapDataKey(keyId, wrapped, 'ws_fake_2').catch((e: unknown) => e),
      await provider.unwrapDataKey('mk_ffffffffffffffff', wrapped, 'ws_fake_1').catch((e: unknown) => e),
    ];
    for (const error of errors) {
      const text = `${(error as Error).message} ${String((error as Error).stack)}`;
      for (const bytes of [FAKE_DATA_KEY, Buffer.alloc(32, 0xa1), wrapped]) {
        expect(text).not.toContain(bytes.toString('hex'));
        expect(text).not.toContain(bytes.toString('base64'));
      }
    }
  });

  it('generateDataKey returns 32 fresh random bytes', () => {
    const a = generateDataKey();
    const b = generateDataKey();
    expect(a.length).toBe(32);
    expect(a.equals(b)).toBe(false);
  });
});
