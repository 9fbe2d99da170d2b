import { createCipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * A credential's `data` as n8n writes it in an export made without `--decrypted`: base64 of "Salted__", an
 * 8-byte salt and AES-256-CBC ciphertext of the JSON, key and IV from OpenSSL's EVP_BytesToKey (MD5, one
 * iteration) of the instance's key. Written here from the format, independently of `import/n8n.ts`, so the
 * tests (the server's and the browser suite's) do not trust the code they check.
 */
export function encryptN8n(data: unknown, passphrase: string): string {
  const salt = randomBytes(8);
  let material: Buffer = Buffer.alloc(0);
  let block: Buffer = Buffer.alloc(0);
  while (material.length < 48) {
    block = createHash('md5')
      .update(Buffer.concat([block, Buffer.from(passphrase), salt]))
      .digest();
    material = Buffer.concat([material, block]);
  }
  const cipher = createCipheriv('aes-256-cbc', material.subarray(0, 32), material.subarray(32, 48));
  const body = Buffer.concat([cipher.update(JSON.stringify(data), 'utf8'), cipher.final()]);
  return Buffer.concat([Buffer.from('Salted__', 'latin1'), salt, body]).toString('base64');
}
