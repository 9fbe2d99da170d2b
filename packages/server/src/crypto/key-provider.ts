/**
 * Wrapping of per-workspace data keys by a master key (DESIGN.md §5).
 */
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject, randomBytes } from 'node:crypto';
import type { MasterKey } from './master-key.js';

export const DATA_KEY_BYTES = 32;

/**
 * Wraps and unwraps workspace data keys with a master key (KEK).
 *
 * This is an interface so that a KMS — AWS KMS, GCP KMS, Vault transit — can implement it later: such a
 * provider sends the data key to the KMS to be wrapped (passing the workspace id as encryption context /
 * associated data) and never holds the master key itself. `LocalKeyProvider` is the implementation for
 * master keys held by this process.
 */
export interface KeyProvider {
  /** Id of the key that new wraps use; stored beside each wrapped data key. */
  readonly activeKeyId: string;
  /** Whether a data key wrapped under `keyId` can be unwrapped (the active key or a previous one). */
  knows(keyId: string): boolean;
  /** Wraps a raw 32-byte data key for `workspaceId` with the active master key. */
  wrapDataKey(dataKey: Buffer, workspaceId: string): Promise<{ keyId: string; wrapped: Buffer }>;
  /**
   * Unwraps a data key previously wrapped for `workspaceId` under `keyId`.
   * Throws UnknownMasterKeyError if `keyId` is not known, DataKeyUnwrapError if the wrapped bytes were altered
   * or belong to another workspace.
   */
  unwrapDataKey(keyId: string, wrapped: Buffer, workspaceId: string): Promise<KeyObject>;
}

/** A data key was wrapped under a master key this process does not have. */
export class UnknownMasterKeyError extends Error {
  override name = 'UnknownMasterKeyError';
  constructor(
    readonly keyId: string,
    readonly knownKeyIds: readonly string[] = [],
  ) {
    super(
      `The data key is wrapped with master key ${keyId}, which is not loaded` +
        (knownKeyIds.length > 0 ? ` (loaded: ${knownKeyIds.join(', ')})` : '') +
        '. Provide that key as LATCHKEY_MASTER_KEY or in LATCHKEY_PREVIOUS_MASTER_KEYS.',
    );
  }
}

/** A wrapped data key failed authentication: altered, truncated, or wrapped for another workspace. */
export class DataKeyUnwrapError extends Error {
  override name = 'DataKeyUnwrapError';
  constructor(readonly keyId: string) {
    super(
      `A workspace data key could not be unwrapped with master key ${keyId}: ` +
        'the wrapped key was altered, or it belongs to another workspace.',
    );
  }
}

/** A fresh random 32-byte data key. The caller wraps it and then zeroes it (`fill(0)`). */
export function generateDataKey(): Buffer {
  return randomBytes(DATA_KEY_BYTES);
}

// Wrapped data key: format version (1 byte, =1) | nonce (12) | tag (16) | ciphertext (32).
const WRAP_FORMAT_VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const WRAP_HEADER_BYTES = 1 + NONCE_BYTES + TAG_BYTES;
const WRAPPED_BYTES = WRAP_HEADER_BYTES + DATA_KEY_BYTES;
const WRAP_CONTEXT = 'latchkey data key wrap v1';

function lengthPrefixed(value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** Associated data binding a wrapped data key to its format version, master key id and workspace id. */
function wrapAad(keyId: string, workspaceId: string): Buffer {
  return Buffer.concat([
    lengthPrefixed(WRAP_CONTEXT),
    Buffer.from([WRAP_FORMAT_VERSION]),
    lengthPrefixed(keyId),
    lengthPrefixed(workspaceId),
  ]);
}

function requireWorkspaceId(workspaceId: string): void {
  if (typeof workspaceId !== 'string' || workspaceId === '') {
    throw new TypeError('workspaceId must be a non-empty string');
  }
}

/** KeyProvider for master keys held in this process (from loadMasterKeys). AES-256-GCM key wrapping. */
export class LocalKeyProvider implements KeyProvider {
  readonly activeKeyId: string;
  readonly #active: MasterKey;
  readonly #byId: ReadonlyMap<string, MasterKey>;

  constructor(keys: { active: MasterKey; all: MasterKey[] }) {
    const byId = new Map<string, MasterKey>();
    for (const key of [keys.active, ...keys.all]) {
      if (key.key.type !== 'secret' || key.key.symmetricKeySize !== 32) {
        throw new TypeError(`Master key ${key.id} is not a 32-byte secret key`);
      }
      byId.set(key.id, key);
    }
    this.#active = keys.active;
    this.#byId = byId;
    this.activeKeyId = keys.active.id;
  }

  /** Ids of every loaded master key, the active one first. */
  get keyIds(): string[] {
    return [...this.#byId.keys()];
  }

  knows(keyId: string): boolean {
    return this.#byId.has(keyId);
  }

  async wrapDataKey(dataKey: Buffer, workspaceId: string): Promise<{ keyId: string; wrapped: Buffer }> {
    if (!Buffer.isBuffer(dataKey) || dataKey.length !== DATA_KEY_BYTES) {
      throw new TypeError(`A data key must be a Buffer of exactly ${DATA_KEY_BYTES} bytes`);
    }
    requireWorkspaceId(workspaceId);
    const keyId = this.#active.id;
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#active.key, nonce, { authTagLength: TAG_BYTES });
    cipher.setAAD(wrapAad(keyId, workspaceId));
    const ciphertext = Buffer.concat([cipher.update(dataKey), cipher.final()]);
    const tag = cipher.getAuthTag();
    const wrapped = Buffer.concat([Buffer.from([WRAP_FORMAT_VERSION]), nonce, tag, ciphertext]);
    return { keyId, wrapped };
  }

  async unwrapDataKey(keyId: string, wrapped: Buffer, workspaceId: string): Promise<KeyObject> {
    const master = this.#byId.get(keyId);
    if (master === undefined) throw new UnknownMasterKeyError(keyId, this.keyIds);
    requireWorkspaceId(workspaceId);
    if (!Buffer.isBuffer(wrapped) || wrapped.length !== WRAPPED_BYTES || wrapped[0] !== WRAP_FORMAT_VERSION) {
      throw new DataKeyUnwrapError(keyId);
    }
    const nonce = wrapped.subarray(1, 1 + NONCE_BYTES);
    const tag = wrapped.subarray(1 + NONCE_BYTES, WRAP_HEADER_BYTES);
    const ciphertext = wrapped.subarray(WRAP_HEADER_BYTES);
    const parts: Buffer[] = [];
    try {
      const decipher = createDecipheriv('aes-256-gcm', master.key, nonce, { authTagLength: TAG_BYTES });
      decipher.setAAD(wrapAad(keyId, workspaceId));
      decipher.setAuthTag(tag);
      parts.push(decipher.update(ciphertext));
      parts.push(decipher.final());
      const plain = Buffer.concat(parts);
      parts.push(plain);
      return createSecretKey(plain); // copies the bytes; every buffer here is zeroed below
    } catch {
      throw new DataKeyUnwrapError(keyId);
    } finally {
      for (const part of parts) part.fill(0);
    }
  }
}
