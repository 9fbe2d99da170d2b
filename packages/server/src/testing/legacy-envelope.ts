import { createCipheriv, type KeyObject, randomBytes } from 'node:crypto';

/**
 * Writes an envelope exactly as the server did before public fields were bound (format 1, crypto/envelope.ts's
 * header table), written out here on its own so the tests check the real old bytes, not the current code's idea
 * of them. Tests only: nothing in the server writes format 1 any more.
 */
export function encryptFormat1Envelope(
  dataKey: KeyObject,
  dataKeyVersion: number,
  binding: { workspaceId: string; secretId: string; credentialType: string },
  fields: Record<string, string>,
): Buffer {
  const prefixed = (text: string) => {
    const bytes = Buffer.from(text, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    return Buffer.concat([length, bytes]);
  };
  const header = Buffer.alloc(5);
  header.writeUInt8(1, 0);
  header.writeUInt32BE(dataKeyVersion, 1);
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', dataKey, nonce, { authTagLength: 16 });
  cipher.setAAD(
    Buffer.concat([
      prefixed('latchkey secret envelope'),
      header,
      prefixed(binding.workspaceId),
      prefixed(binding.secretId),
      prefixed(binding.credentialType),
    ]),
  );
  const ciphertext = Buffer.concat([cipher.update(JSON.stringify(fields), 'utf8'), cipher.final()]);
  return Buffer.concat([header, nonce, cipher.getAuthTag(), ciphertext]);
}
