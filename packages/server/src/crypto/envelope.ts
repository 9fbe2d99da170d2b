/**
 * Secret envelopes: a secret's secret fields encrypted with its workspace's data key (DESIGN.md §5).
 *
 * Envelope bytes (the same layout in every format version):
 *
 *   offset  size  field
 *   0       1     format version (2; 1 = written before public fields were bound, see below)
 *   1       4     data key version (uint32, big-endian)
 *   5       12    nonce (fresh random 96 bits per encryption)
 *   17      16    GCM authentication tag
 *   33      n     AES-256-GCM ciphertext of the UTF-8 JSON of the fields
 *
 * The associated data (not stored) binds the ciphertext to its context, every string length-prefixed so that
 * no two different contexts encode alike (len = uint32 BE byte length of the UTF-8):
 *
 *   format  associated data
 *   1       len("latchkey secret envelope") ‖ "latchkey secret envelope" ‖ format version (1 byte) ‖
 *           data key version (uint32 BE) ‖ len(workspaceId) ‖ workspaceId ‖ len(secretId) ‖ secretId ‖
 *           len(credentialType) ‖ credentialType
 *   2       the same (with format version 2), then the secret's public fields (`secrets.public_fields`):
 *           count (uint32 BE) ‖ for each field, in ascending order of the UTF-8 bytes of its name:
 *           len(name) ‖ name ‖ len(value) ‖ value
 *
 * so an envelope copied to another secret, workspace or credential type, with its header edited, or whose
 * secret's public fields were changed, added or removed next to it (an HTTP Request credential's allowed
 * domains widened, a Mailgun region switched) fails to decrypt.
 *
 * Format 1 is only read by the upgrade that rewrites it as format 2 (keys/rotation.ts `reencryptSecrets`,
 * run at start-up and by `latchkey keys upgrade-envelopes`): everywhere else it fails like a tampered envelope,
 * so an old envelope put back in the database cannot bring back the unbound public fields.
 */
import { createCipheriv, createDecipheriv, type KeyObject, randomBytes } from 'node:crypto';

export const ENVELOPE_FORMAT_VERSION = 2;
/** The format written before public fields were bound: readable only by the upgrade (`acceptUnbound`). */
export const UNBOUND_ENVELOPE_FORMAT_VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = 1 + 4 + NONCE_BYTES + TAG_BYTES;
/** The smallest plaintext is `{}` (2 bytes); GCM ciphertext is as long as the plaintext. */
const MIN_ENVELOPE_BYTES = HEADER_BYTES + 2;
const AAD_CONTEXT = 'latchkey secret envelope';

export interface SecretBinding {
  workspaceId: string;
  secretId: string;
  credentialType: string;
  /** The secret's public fields, as stored next to the envelope (bound from format 2 on). */
  publicFields: Readonly<Record<string, string>>;
}

export type DecryptionFailure =
  | 'too-short'
  | 'unsupported-format'
  | 'unbound-format'
  | 'authentication-failed'
  | 'malformed-content';

const REASON_TEXT: Record<DecryptionFailure, string> = {
  'too-short': 'the envelope is truncated',
  'unsupported-format': 'unsupported envelope format version',
  'unbound-format':
    'the envelope does not bind its public fields (format 1): run `latchkey keys upgrade-envelopes`',
  'authentication-failed': 'authentication failed',
  'malformed-content': 'the decrypted content is not a set of fields',
};

/**
 * A secret envelope could not be decrypted. The message never contains plaintext, ciphertext or key bytes,
 * and no underlying error is attached (a JSON parse error, for one, would quote the plaintext).
 */
export class DecryptionError extends Error {
  override name = 'DecryptionError';
  constructor(readonly reason: DecryptionFailure) {
    super(
      `The secret could not be decrypted (${REASON_TEXT[reason]}): it was altered, or it belongs to another ` +
        'secret/workspace/credential type, or its public fields were changed, or it was encrypted with ' +
        'another data key.',
    );
  }
}

function lengthPrefixed(value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** A lone UTF-16 surrogate: UTF-8 turns every one into U+FFFD, so two such strings could encode alike. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * The public fields as bytes: their count, then each name and value length-prefixed, in ascending order of the
 * names' UTF-8 bytes — the same bytes whatever order the object (or `jsonb`, which reorders keys) holds them in,
 * and different bytes for any two different sets of fields. Null when a value is not a string (a stored column
 * rewritten to hold a number, say) or a name or value holds a lone surrogate: such fields were never encrypted,
 * so nothing can match them.
 */
function publicFieldsEncoding(publicFields: unknown): Buffer | null {
  if (typeof publicFields !== 'object' || publicFields === null || Array.isArray(publicFields)) return null;
  const fields = Object.entries(publicFields);
  const encodable = (text: unknown): text is string => typeof text === 'string' && !LONE_SURROGATE.test(text);
  if (!fields.every(([name, value]) => encodable(name) && encodable(value))) return null;
  const encoded = fields.map(([name, value]) => ({
    name: lengthPrefixed(name),
    value: lengthPrefixed(value),
  }));
  // The documented order: by the names' own UTF-8 bytes (past the length prefix, which would sort by length).
  encoded.sort((a, b) => Buffer.compare(a.name.subarray(4), b.name.subarray(4)));
  const count = Buffer.alloc(4);
  count.writeUInt32BE(encoded.length);
  return Buffer.concat([count, ...encoded.flatMap((field) => [field.name, field.value])]);
}

function associatedData(
  formatVersion: number,
  dataKeyVersion: number,
  binding: SecretBinding,
  publicFields: Buffer | null,
): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt8(formatVersion, 0);
  header.writeUInt32BE(dataKeyVersion, 1);
  const parts = [
    lengthPrefixed(AAD_CONTEXT),
    header,
    lengthPrefixed(binding.workspaceId),
    lengthPrefixed(binding.secretId),
    lengthPrefixed(binding.credentialType),
  ];
  if (formatVersion !== UNBOUND_ENVELOPE_FORMAT_VERSION) parts.push(publicFields as Buffer);
  return Buffer.concat(parts);
}

function checkBinding(binding: SecretBinding): void {
  for (const name of ['workspaceId', 'secretId', 'credentialType'] as const) {
    const value: unknown = binding[name];
    if (typeof value !== 'string' || value === '') {
      throw new TypeError(`SecretBinding.${name} must be a non-empty string`);
    }
  }
}

function checkDataKey(dataKey: KeyObject): void {
  if (dataKey.type !== 'secret' || dataKey.symmetricKeySize !== 32) {
    throw new TypeError('A data key must be a 32-byte secret KeyObject');
  }
}

/** Encrypts `fields` (secret field name → value) into a new envelope bound to `binding`, public fields included. */
export function encryptSecretFields(
  dataKey: KeyObject,
  dataKeyVersion: number,
  binding: SecretBinding,
  fields: Record<string, string>,
): Buffer {
  checkDataKey(dataKey);
  checkBinding(binding);
  if (!Number.isInteger(dataKeyVersion) || dataKeyVersion < 0 || dataKeyVersion > 0xffff_ffff) {
    throw new RangeError('dataKeyVersion must be an integer from 0 to 2^32-1');
  }
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) {
    throw new TypeError('fields must be an object of strings');
  }
  for (const [name, value] of Object.entries(fields)) {
    if (typeof value !== 'string') throw new TypeError(`Secret field "${name}" must be a string`);
  }
  const publicFields = publicFieldsEncoding(binding.publicFields);
  if (!publicFields) {
    throw new TypeError('SecretBinding.publicFields must be an object of well-formed strings');
  }

  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', dataKey, nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(associatedData(ENVELOPE_FORMAT_VERSION, dataKeyVersion, binding, publicFields));
  const plaintext = Buffer.from(JSON.stringify(fields), 'utf8');
  let ciphertext: Buffer;
  try {
    ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  } finally {
    plaintext.fill(0);
  }
  const header = Buffer.alloc(5);
  header.writeUInt8(ENVELOPE_FORMAT_VERSION, 0);
  header.writeUInt32BE(dataKeyVersion, 1);
  return Buffer.concat([header, nonce, cipher.getAuthTag(), ciphertext]);
}

/**
 * Reads the unauthenticated header of an envelope, so the caller knows which data key version to load.
 * The values are only trusted once decryptSecretFields has succeeded (they are part of the associated data).
 */
export function readEnvelopeHeader(envelope: Buffer): { formatVersion: number; dataKeyVersion: number } {
  if (!Buffer.isBuffer(envelope) || envelope.length < MIN_ENVELOPE_BYTES) {
    throw new DecryptionError('too-short');
  }
  const formatVersion = envelope.readUInt8(0);
  if (formatVersion !== ENVELOPE_FORMAT_VERSION && formatVersion !== UNBOUND_ENVELOPE_FORMAT_VERSION) {
    throw new DecryptionError('unsupported-format');
  }
  return { formatVersion, dataKeyVersion: envelope.readUInt32BE(1) };
}

export interface DecryptOptions {
  /**
   * Also read format 1, which binds no public fields. Only for the upgrade that rewrites it as format 2
   * (`reencryptSecrets`); without it a format-1 envelope fails with reason 'unbound-format'.
   */
  acceptUnbound?: boolean;
}

/**
 * Decrypts an envelope made by encryptSecretFields for the same binding (the public fields as stored next to it).
 * Throws DecryptionError on any failure.
 */
export function decryptSecretFields(
  dataKey: KeyObject,
  binding: SecretBinding,
  envelope: Buffer,
  options: DecryptOptions = {},
): Record<string, string> {
  checkDataKey(dataKey);
  checkBinding(binding);
  const { formatVersion, dataKeyVersion } = readEnvelopeHeader(envelope);
  if (formatVersion === UNBOUND_ENVELOPE_FORMAT_VERSION && !options.acceptUnbound) {
    throw new DecryptionError('unbound-format');
  }
  const publicFields = publicFieldsEncoding(binding.publicFields);
  if (formatVersion !== UNBOUND_ENVELOPE_FORMAT_VERSION && !publicFields) {
    throw new DecryptionError('authentication-failed');
  }
  const nonce = envelope.subarray(5, 5 + NONCE_BYTES);
  const tag = envelope.subarray(5 + NONCE_BYTES, HEADER_BYTES);
  const ciphertext = envelope.subarray(HEADER_BYTES);

  const parts: Buffer[] = [];
  let json: string;
  try {
    // authTagLength makes setAuthTag reject any tag that is not exactly 16 bytes.
    const decipher = createDecipheriv('aes-256-gcm', dataKey, nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(associatedData(formatVersion, dataKeyVersion, binding, publicFields));
    decipher.setAuthTag(tag);
    parts.push(decipher.update(ciphertext));
    parts.push(decipher.final());
    const plain = Buffer.concat(parts);
    parts.push(plain);
    json = plain.toString('utf8');
  } catch {
    throw new DecryptionError('authentication-failed');
  } finally {
    for (const part of parts) part.fill(0);
  }

  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    throw new DecryptionError('malformed-content');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new DecryptionError('malformed-content');
  }
  const entries = Object.entries(parsed);
  if (!entries.every(([, value]) => typeof value === 'string'))
    throw new DecryptionError('malformed-content');
  // fromEntries defines own properties, so a "__proto__" field name cannot change the prototype.
  return Object.fromEntries(entries) as Record<string, string>;
}
