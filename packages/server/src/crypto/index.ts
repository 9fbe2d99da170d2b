export {
  DecryptionError,
  type DecryptionFailure,
  type DecryptOptions,
  decryptSecretFields,
  ENVELOPE_FORMAT_VERSION,
  encryptSecretFields,
  readEnvelopeHeader,
  type SecretBinding,
  UNBOUND_ENVELOPE_FORMAT_VERSION,
} from './envelope.js';
export {
  DATA_KEY_BYTES,
  DataKeyUnwrapError,
  generateDataKey,
  type KeyProvider,
  LocalKeyProvider,
  UnknownMasterKeyError,
} from './key-provider.js';
export {
  type LoadMasterKeyOptions,
  loadMasterKeys,
  MASTER_KEY_BYTES,
  MASTER_KEY_FILE_NAME,
  type MasterKey,
  MasterKeyError,
  masterKeyId,
  parseMasterKey,
} from './master-key.js';
