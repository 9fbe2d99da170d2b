export {
  DecryptionError,
  decryptSecretFields,
  ENVELOPE_FORMAT_VERSION,
  encryptSecretFields,
  readEnvelopeHeader,
  UNBOUND_ENVELOPE_FORMAT_VERSION,
} from './envelope.js';
export {
  DataKeyUnwrapError,
  generateDataKey,
  type KeyProvider,
  LocalKeyProvider,
  UnknownMasterKeyError,
} from './key-provider.js';
export {
  loadMasterKeys,
  type MasterKey,
  MasterKeyError,
  parseMasterKey,
} from './master-key.js';
