/**
 * Master key (key-encryption key) loading — DESIGN.md §5.
 *
 * Sources, in order:
 *   1. `LATCHKEY_MASTER_KEY`       — base64 of exactly 32 bytes;
 *   2. `LATCHKEY_MASTER_KEY_FILE`  — path to a file holding that base64 (surrounding whitespace ignored);
 *   3. embedded default only (not production, not PostgreSQL): `<keyDir>/master.key`, generated on first
 *      start with mode 0600 inside a 0700 directory. keyDir defaults to `LATCHKEY_KEY_DIR`, else
 *      `$XDG_CONFIG_HOME/latchkey`, else `~/.config/latchkey` — deliberately outside the data directory, so a
 *      copy or backup of the data directory alone never holds the key.
 * `LATCHKEY_PREVIOUS_MASTER_KEYS` (comma-separated base64) lists older keys still accepted for unwrapping
 * while a rotation re-wraps the data keys.
 *
 * Key material is held only as `KeyObject`s; raw buffers are zeroed as soon as they have been copied into one.
 * A key file that group or others can access stops start-up; the server drops the key variables from its
 * environment once loaded (`forgetMasterKeyVariables`).
 * No error or warning produced here ever contains key material.
 */
import { createHmac, createSecretKey, type KeyObject, randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, relative, resolve } from 'node:path';

export const MASTER_KEY_BYTES = 32;
export const MASTER_KEY_FILE_NAME = 'master.key';
const KEY_ID_CONTEXT = 'latchkey master key id v1';

export interface MasterKey {
  /**
   * `mk_` + the first 16 hex chars of HMAC-SHA256(key, 'latchkey master key id v1'). Derived from the key
   * material, so a different key has a different id: it doubles as the key check value stored beside the data.
   */
  id: string;
  key: KeyObject;
}

/** A start-up problem with the master key, phrased so an operator can act on it. Never contains key material. */
export class MasterKeyError extends Error {
  override name = 'MasterKeyError';
}

/** The variables master keys are loaded from (config.ts reads them with the rest of the environment). */
export interface MasterKeyVariables {
  NODE_ENV?: string | undefined;
  LATCHKEY_MASTER_KEY?: string | undefined;
  LATCHKEY_MASTER_KEY_FILE?: string | undefined;
  LATCHKEY_PREVIOUS_MASTER_KEYS?: string | undefined;
  LATCHKEY_KEY_DIR?: string | undefined;
  XDG_CONFIG_HOME?: string | undefined;
}

export interface LoadMasterKeyOptions {
  env: MasterKeyVariables;
  /** True when running on the embedded default storage (PGlite); false with PostgreSQL. */
  embedded: boolean;
  /** Directory for the generated key file; overrides LATCHKEY_KEY_DIR / XDG_CONFIG_HOME / ~/.config. */
  keyDir?: string;
  /**
   * The data directory, if known. A generated key is never written inside it (start-up error), and a key file
   * found inside it is warned about — a backup of the data directory must not hold the key.
   */
  dataDir?: string;
  /**
   * Whether the embedded default may generate a key file when none exists (default true). Tools that only
   * operate on existing data (the `latchkey keys …` commands) pass false: a new key could open nothing.
   */
  generate?: boolean;
  warn(message: string): void;
}

const GENERATE_HINT =
  "Generate one with `openssl rand -base64 32` (or `node -e \"console.log(require('node:crypto').randomBytes(32).toString('base64'))\"`).";

/** Derives the id (key check value) of a master key. */
export function masterKeyId(key: KeyObject): string {
  return `mk_${createHmac('sha256', key).update(KEY_ID_CONTEXT, 'utf8').digest('hex').slice(0, 16)}`;
}

/**
 * Parses base64 key text into a MasterKey. `source` names where the text came from (a variable or a file)
 * and is the only thing an error message says about it.
 */
export function parseMasterKey(text: string, source: string): MasterKey {
  const compact = text.trim();
  if (compact === '') {
    throw new MasterKeyError(
      `${source} is empty. It must hold the base64 encoding of exactly 32 bytes. ${GENERATE_HINT}`,
    );
  }
  // Strict, canonical standard base64 (Buffer.from would silently skip invalid characters).
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(compact) || compact.length % 4 !== 0) {
    throw new MasterKeyError(
      `${source} is not valid base64. It must hold the base64 encoding of exactly 32 bytes. ${GENERATE_HINT}`,
    );
  }
  const raw = Buffer.from(compact, 'base64');
  try {
    if (raw.toString('base64') !== compact) {
      throw new MasterKeyError(
        `${source} is not valid base64. It must hold the base64 encoding of exactly 32 bytes. ${GENERATE_HINT}`,
      );
    }
    if (raw.length !== MASTER_KEY_BYTES) {
      throw new MasterKeyError(
        `${source} decodes to ${raw.length} bytes; a master key must be exactly ${MASTER_KEY_BYTES} bytes (AES-256). ${GENERATE_HINT}`,
      );
    }
    const key = createSecretKey(raw); // copies the bytes
    return { id: masterKeyId(key), key };
  } finally {
    raw.fill(0);
  }
}

function isErrno(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && (error as NodeJS.ErrnoException).code === code;
}

function isInside(child: string, parent: string): boolean {
  const rel = relative(resolve(parent), resolve(child));
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** The permission bits of `path` when group or others have any access to it; undefined when private. */
function openToOthers(path: string): string | undefined {
  if (process.platform === 'win32') return undefined;
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch {
    return undefined;
  }
  return (mode & 0o077) !== 0 ? (mode & 0o777).toString(8).padStart(3, '0') : undefined;
}

/**
 * Refuses a key file that users other than its owner can access: anyone who can read it holds every stored
 * credential, so this is a start-up error, not a warning that scrolls away.
 */
function refuseKeyFileOpenToOthers(path: string, source: string): void {
  const mode = openToOthers(path);
  if (mode !== undefined) {
    throw new MasterKeyError(
      `${source}: the master key file ${path} has mode ${mode}, so other users on this machine can read it. ` +
        `Restrict it with \`chmod 600 ${path}\` and start again.`,
    );
  }
}

/** Warns when the key directory can be listed or written by others (the file itself is checked strictly). */
function warnDirectoryOpenToOthers(path: string, warn: (message: string) => void): void {
  const mode = openToOthers(path);
  if (mode !== undefined) {
    warn(
      `Master key directory ${path} has mode ${mode}: other users on this machine can access it. ` +
        `Restrict it with \`chmod 700 ${path}\`.`,
    );
  }
}

function readKeyFile(path: string, source: string): MasterKey {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    const why =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EACCES' || code === 'EPERM'
          ? 'cannot be read by this process (permission denied)'
          : code === 'EISDIR'
            ? 'is a directory, not a file'
            : `cannot be read (${code})`;
    throw new MasterKeyError(`${source}: the master key file ${path} ${why}.`);
  }
  refuseKeyFileOpenToOthers(path, source);
  return parseMasterKey(text, source);
}

function defaultKeyDir(env: MasterKeyVariables): string {
  if (env.LATCHKEY_KEY_DIR) return resolve(env.LATCHKEY_KEY_DIR);
  // The XDG spec says relative values are invalid and must be ignored.
  if (env.XDG_CONFIG_HOME && isAbsolute(env.XDG_CONFIG_HOME)) return join(env.XDG_CONFIG_HOME, 'latchkey');
  return join(homedir(), '.config', 'latchkey');
}

/** Creates `path` (failing if it exists), private to this user, and writes `contents` to disk before returning. */
function writeNewFile(path: string, contents: Buffer): void {
  const fd = openSync(path, 'wx', 0o600);
  try {
    writeSync(fd, contents);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Creates `path` holding `contents` only if it does not exist yet, so that concurrent first starts agree on
 * one key. The key is written in full (flag 'wx', mode 0600, fsync) to a private temporary file which is then
 * hard-linked into place: link() fails atomically with EEXIST if another process won, and a reader never sees
 * a half-written key file. Returns false if the file already existed.
 */
function createExclusive(path: string, contents: Buffer): boolean {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  writeNewFile(tmp, contents);
  try {
    linkSync(tmp, path);
    return true;
  } catch (error) {
    if (isErrno(error, 'EEXIST')) return false;
    if (isErrno(error, 'EPERM') || isErrno(error, 'ENOTSUP') || isErrno(error, 'ENOSYS')) {
      // File system without hard links: fall back to an exclusive create of the final name.
      try {
        writeNewFile(path, contents);
        return true;
      } catch (inner) {
        if (isErrno(inner, 'EEXIST')) return false;
        throw inner;
      }
    }
    throw error;
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
  }
}

function loadOrCreateEmbeddedKey(options: LoadMasterKeyOptions): MasterKey {
  const keyDir = resolve(options.keyDir ?? defaultKeyDir(options.env));
  const path = join(keyDir, MASTER_KEY_FILE_NAME);
  const source = `The generated master key file ${path}`;
  if (options.dataDir !== undefined && isInside(path, options.dataDir)) {
    throw new MasterKeyError(
      `The master key directory ${keyDir} is inside the data directory ${resolve(options.dataDir)}; ` +
        'a backup of the data directory would then hold the key that decrypts it. ' +
        'Point LATCHKEY_KEY_DIR elsewhere, or set LATCHKEY_MASTER_KEY or LATCHKEY_MASTER_KEY_FILE.',
    );
  }
  try {
    mkdirSync(keyDir, { recursive: true, mode: 0o700 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new MasterKeyError(
      `Cannot create the master key directory ${keyDir} (${code}). ` +
        'Set LATCHKEY_KEY_DIR to a writable directory, or set LATCHKEY_MASTER_KEY or LATCHKEY_MASTER_KEY_FILE.',
    );
  }
  warnDirectoryOpenToOthers(keyDir, options.warn);

  const raw = randomBytes(MASTER_KEY_BYTES);
  const text = Buffer.from(`${raw.toString('base64')}\n`, 'utf8');
  raw.fill(0);
  let created: boolean;
  try {
    created = createExclusive(path, text);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new MasterKeyError(
      `Cannot write the master key file ${path} (${code}). ` +
        'Set LATCHKEY_KEY_DIR to a writable directory, or set LATCHKEY_MASTER_KEY or LATCHKEY_MASTER_KEY_FILE.',
    );
  } finally {
    text.fill(0);
  }
  const key = readKeyFile(path, source);
  if (created) {
    options.warn(
      `Generated a new master key (id ${key.id}) at ${path}. Back this file up, separately from the data ` +
        'directory: without it the stored secrets cannot be decrypted, and a backup that holds both the data ' +
        'and the key protects nothing. In production set LATCHKEY_MASTER_KEY or LATCHKEY_MASTER_KEY_FILE instead.',
    );
  }
  return key;
}

function loadActiveKey(options: LoadMasterKeyOptions): MasterKey {
  const { env, warn } = options;
  const inline = env.LATCHKEY_MASTER_KEY;
  const file = env.LATCHKEY_MASTER_KEY_FILE;
  if (inline !== undefined) {
    if (file !== undefined) {
      warn('Both LATCHKEY_MASTER_KEY and LATCHKEY_MASTER_KEY_FILE are set; using LATCHKEY_MASTER_KEY.');
    }
    return parseMasterKey(inline, 'LATCHKEY_MASTER_KEY');
  }
  if (file !== undefined) {
    if (file.trim() === '') {
      throw new MasterKeyError(
        'LATCHKEY_MASTER_KEY_FILE is set but empty; it must be the path of a key file.',
      );
    }
    const path = resolve(file.trim());
    if (options.dataDir !== undefined && isInside(path, options.dataDir)) {
      warn(
        `The master key file ${path} is inside the data directory ${resolve(options.dataDir)}; ` +
          'a backup of the data directory will hold the key that decrypts it. Move the key file elsewhere.',
      );
    }
    return readKeyFile(path, `LATCHKEY_MASTER_KEY_FILE (${path})`);
  }
  if (env.NODE_ENV === 'production' || !options.embedded) {
    const why =
      env.NODE_ENV === 'production'
        ? 'in production (NODE_ENV=production)'
        : 'when using PostgreSQL (DATABASE_URL is set)';
    throw new MasterKeyError(
      `LATCHKEY_MASTER_KEY or LATCHKEY_MASTER_KEY_FILE is required ${why}: set one to the base64 encoding ` +
        `of a 32-byte key, kept outside the database and its backups. ${GENERATE_HINT}`,
    );
  }
  if (options.generate === false) {
    const path = join(resolve(options.keyDir ?? defaultKeyDir(env)), MASTER_KEY_FILE_NAME);
    let exists = true;
    try {
      statSync(path);
    } catch {
      exists = false;
    }
    if (!exists) {
      throw new MasterKeyError(
        `No master key: LATCHKEY_MASTER_KEY and LATCHKEY_MASTER_KEY_FILE are not set, and the embedded ` +
          `default key file ${path} does not exist. Set LATCHKEY_MASTER_KEY (or LATCHKEY_KEY_DIR) to the key the server uses.`,
      );
    }
  }
  return loadOrCreateEmbeddedKey(options);
}

function loadPreviousKeys(env: MasterKeyVariables): MasterKey[] {
  const list = env.LATCHKEY_PREVIOUS_MASTER_KEYS;
  if (list === undefined || list.trim() === '') return [];
  const keys: MasterKey[] = [];
  list.split(',').forEach((entry, index) => {
    if (entry.trim() === '') return;
    keys.push(parseMasterKey(entry, `LATCHKEY_PREVIOUS_MASTER_KEYS (entry ${index + 1})`));
  });
  return keys;
}

/**
 * Loads the active master key and the previous keys still accepted for unwrapping.
 * `all` starts with `active` and holds each key once. Throws MasterKeyError on any problem.
 */
export function loadMasterKeys(options: LoadMasterKeyOptions): { active: MasterKey; all: MasterKey[] } {
  const active = loadActiveKey(options);
  const all: MasterKey[] = [active];
  for (const key of loadPreviousKeys(options.env)) {
    if (!all.some((known) => known.id === key.id)) all.push(key);
  }
  return { active, all };
}

/**
 * Removes the key variables from the server's environment once the keys are held as `KeyObject`s, so that
 * nothing reading the environment later (a child process, a crash reporter, a debug endpoint, a dependency)
 * finds key material there.
 */
export function forgetMasterKeyVariables(env: NodeJS.ProcessEnv): void {
  delete env.LATCHKEY_MASTER_KEY;
  delete env.LATCHKEY_PREVIOUS_MASTER_KEYS;
}
