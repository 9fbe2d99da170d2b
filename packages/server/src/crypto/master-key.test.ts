import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalKeyProvider } from './key-provider.js';
import {
  forgetMasterKeyVariables,
  type LoadMasterKeyOptions,
  loadMasterKeys,
  MasterKeyError,
  type MasterKeyVariables,
} from './master-key.js';

// Obviously fake keys: constant byte patterns.
const FAKE_KEY_A = Buffer.alloc(32, 0x11).toString('base64'); // "EREREREr..."
const FAKE_KEY_B = Buffer.alloc(32, 0x22).toString('base64');
const FAKE_KEY_C = Buffer.alloc(32, 0x33).toString('base64');
const FAKE_16_BYTES = Buffer.alloc(16, 0x44).toString('base64');
const NOT_BASE64 = 'fake!!not*base64@@key';
const posix = process.platform !== 'win32';

let root: string;
let warnings: string[];

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'latchkey-crypto-test-'));
  warnings = [];
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

function options(env: MasterKeyVariables, extra: Partial<LoadMasterKeyOptions> = {}): LoadMasterKeyOptions {
  return { env, embedded: true, keyDir: join(root, 'keys'), warn: (m) => warnings.push(m), ...extra };
}

function loadError(opts: LoadMasterKeyOptions): MasterKeyError {
  try {
    loadMasterKeys(opts);
  } catch (error) {
    expect(error).toBeInstanceOf(MasterKeyError);
    return error as MasterKeyError;
  }
  throw new Error('expected a MasterKeyError');
}

function expectNoKeyMaterial(text: string, ...keys: string[]): void {
  for (const key of keys) {
    expect(text).not.toContain(key);
    expect(text).not.toContain(key.trim().replace(/=+$/, ''));
    const bytes = Buffer.from(key, 'base64');
    if (bytes.length > 0) expect(text).not.toContain(bytes.toString('hex'));
  }
}

describe('loadMasterKeys', () => {
  it('loads the key from LATCHKEY_MASTER_KEY', () => {
    const { active, all } = loadMasterKeys(options({ LATCHKEY_MASTER_KEY: FAKE_KEY_A }));
    expect(active.id).toMatch(/^mk_[0-9a-f]{16}$/);
    expect(active.key.export().equals(Buffer.alloc(32, 0x11))).toBe(true);
    expect(all).toEqual([active]);
    expect(warnings).toEqual([]);
    expect(existsSync(join(root, 'keys'))).toBe(false);
  });

  it('derives the key id from the key material', () => {
    const a1 = loadMasterKeys(options({ LATCHKEY_MASTER_KEY: FAKE_KEY_A })).active;
    const a2 = loadMasterKeys(options({ LATCHKEY_MASTER_KEY: `  ${FAKE_KEY_A}\n` })).active;
    const b = loadMasterKeys(options({ LATCHKEY_MASTER_KEY: FAKE_KEY_B })).active;
    expect(a1.id).toBe(a2.id);
    expect(a1.id).not.toBe(b.id);
    expect(FAKE_KEY_A).not.toContain(a1.id.slice(3));
  });

  it('loads the key from LATCHKEY_MASTER_KEY_FILE, trimming whitespace', () => {
    const file = join(root, 'fake.key');
    writeFileSync(file, `\n  ${FAKE_KEY_A}  \n`, { mode: 0o600 });
    const fromFile = loadMasterKeys(options({ LATCHKEY_MASTER_KEY_FILE: file })).active;
    const fromEnv = loadMasterKeys(options({ LATCHKEY_MASTER_KEY: FAKE_KEY_A })).active;
    expect(fromFile.id).toBe(fromEnv.id);
    expect(warnings).toEqual([]);
  });

  it('prefers LATCHKEY_MASTER_KEY over LATCHKEY_MASTER_KEY_FILE and warns', () => {
    const file = join(root, 'fake.key');
    writeFileSync(file, FAKE_KEY_B, { mode: 0o600 });
    const { active } = loadMasterKeys(
      options({ LATCHKEY_MASTER_KEY: FAKE_KEY_A, LATCHKEY_MASTER_KEY_FILE: file }),
    );
    expect(active.id).toBe(loadMasterKeys(options({ LATCHKEY_MASTER_KEY: FAKE_KEY_A })).active.id);
    expect(warnings.join('\n')).toMatch(/Both LATCHKEY_MASTER_KEY and LATCHKEY_MASTER_KEY_FILE/);
  });

  it.runIf(posix)(
    'refuses a key file that group or others can read, naming the file and the chmod fix',
    () => {
      for (const mode of [0o640, 0o604, 0o644, 0o660, 0o666]) {
        const file = join(root, `fake-${mode.toString(8)}.key`);
        writeFileSync(file, FAKE_KEY_A);
        chmodSync(file, mode);
        const error = loadError(options({ LATCHKEY_MASTER_KEY_FILE: file }));
        expect(error.message).toContain(file);
        expect(error.message).toContain(mode.toString(8));
        expect(error.message).toContain(`chmod 600 ${file}`);
        expectNoKeyMaterial(error.message, FAKE_KEY_A);
      }
      const privateFile = join(root, 'private.key');
      writeFileSync(privateFile, FAKE_KEY_A);
      chmodSync(privateFile, 0o400);
      expect(loadMasterKeys(options({ LATCHKEY_MASTER_KEY_FILE: privateFile })).active.id).toMatch(/^mk_/);
    },
  );

  it.runIf(posix)('refuses an embedded default key file that others can read', () => {
    const keyDir = join(root, 'keys');
    mkdirSync(keyDir, { mode: 0o700 });
    const file = join(keyDir, 'master.key');
    writeFileSync(file, `${FAKE_KEY_C}\n`);
    chmodSync(file, 0o644);
    const error = loadError(options({}));
    expect(error.message).toContain(`chmod 600 ${file}`);
  });

  it('forgetMasterKeyVariables removes the key variables and nothing else', () => {
    const env: NodeJS.ProcessEnv = {
      LATCHKEY_MASTER_KEY: FAKE_KEY_A,
      LATCHKEY_PREVIOUS_MASTER_KEYS: FAKE_KEY_B,
      LATCHKEY_MASTER_KEY_FILE: '/nowhere/fake.key',
      PORT: '3000',
    };
    forgetMasterKeyVariables(env);
    expect(env).toEqual({ LATCHKEY_MASTER_KEY_FILE: '/nowhere/fake.key', PORT: '3000' });
  });

  it('names the file when LATCHKEY_MASTER_KEY_FILE does not exist', () => {
    const missing = join(root, 'missing.key');
    const error = loadError(options({ LATCHKEY_MASTER_KEY_FILE: missing }));
    expect(error.message).toContain('LATCHKEY_MASTER_KEY_FILE');
    expect(error.message).toContain(missing);
    expect(error.message).toMatch(/does not exist/);
  });

  it('rejects malformed base64, naming the variable', () => {
    const error = loadError(options({ LATCHKEY_MASTER_KEY: NOT_BASE64 }));
    expect(error.message).toMatch(/^LATCHKEY_MASTER_KEY is not valid base64/);
    expectNoKeyMaterial(error.message, NOT_BASE64);
  });

  it('rejects non-canonical base64 that Buffer would silently accept', () => {
    for (const value of [
      `${FAKE_KEY_A.slice(0, 20)} ${FAKE_KEY_A.slice(20)}`,
      FAKE_KEY_A.replace('=', ''),
      `${FAKE_KEY_A}=`,
    ]) {
      const error = loadError(options({ LATCHKEY_MASTER_KEY: value }));
      expect(error.message).toContain('LATCHKEY_MASTER_KEY');
      expectNoKeyMaterial(error.message, value, FAKE_KEY_A);
    }
  });

  it('rejects a key of the wrong length (16 bytes), naming the variable and the length', () => {
    const error = loadError(options({ LATCHKEY_MASTER_KEY: FAKE_16_BYTES }));
    expect(error.message).toContain('LATCHKEY_MASTER_KEY');
    expect(error.message).toMatch(/16 bytes/);
    expect(error.message).toMatch(/exactly 32 bytes/);
    expectNoKeyMaterial(error.message, FAKE_16_BYTES);
  });

  it('rejects a malformed key file, naming the file', () => {
    const file = join(root, 'bad.key');
    writeFileSync(file, FAKE_16_BYTES, { mode: 0o600 });
    const error = loadError(options({ LATCHKEY_MASTER_KEY_FILE: file }));
    expect(error.message).toContain(file);
    expect(error.message).toContain('LATCHKEY_MASTER_KEY_FILE');
    expectNoKeyMaterial(error.message, FAKE_16_BYTES);
  });

  it('rejects an empty LATCHKEY_MASTER_KEY instead of falling back to a generated key', () => {
    const error = loadError(options({ LATCHKEY_MASTER_KEY: '' }));
    expect(error.message).toMatch(/LATCHKEY_MASTER_KEY is empty/);
    expect(existsSync(join(root, 'keys'))).toBe(false);
  });

  it('throws in production without a key, and writes nothing', () => {
    const error = loadError(options({ NODE_ENV: 'production' }));
    expect(error.message).toMatch(/^LATCHKEY_MASTER_KEY or LATCHKEY_MASTER_KEY_FILE is required/);
    expect(error.message).toMatch(/production/);
    expect(existsSync(join(root, 'keys'))).toBe(false);
  });

  it('throws on PostgreSQL (not embedded) without a key, and writes nothing', () => {
    const error = loadError(options({}, { embedded: false }));
    expect(error.message).toMatch(/^LATCHKEY_MASTER_KEY or LATCHKEY_MASTER_KEY_FILE is required/);
    expect(existsSync(join(root, 'keys'))).toBe(false);
  });

  it('embedded default generates a 0600 key file under keyDir and warns', () => {
    const keyDir = join(root, 'config', 'latchkey');
    const { active, all } = loadMasterKeys(options({}, { keyDir }));
    const file = join(keyDir, 'master.key');
    expect(existsSync(file)).toBe(true);
    if (posix) {
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(statSync(keyDir).mode & 0o777).toBe(0o700);
    }
    const stored = readFileSync(file, 'utf8').trim();
    expect(Buffer.from(stored, 'base64').length).toBe(32);
    expect(active.key.export().toString('base64')).toBe(stored);
    expect(all).toEqual([active]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(file);
    expect(warnings[0]).toMatch(/back this file up/i);
    expect(warnings[0]).toMatch(/separately from the data directory/);
    expectNoKeyMaterial(warnings.join('\n'), stored);
  });

  it('a second load reads the same key (same id) without warning again', () => {
    const first = loadMasterKeys(options({})).active;
    warnings = [];
    const second = loadMasterKeys(options({})).active;
    expect(second.id).toBe(first.id);
    expect(warnings).toEqual([]);
  });

  it('reads a key file that already exists (e.g. created by another process) instead of replacing it', () => {
    const keyDir = join(root, 'keys');
    mkdirSync(keyDir, { mode: 0o700 });
    writeFileSync(join(keyDir, 'master.key'), `${FAKE_KEY_C}\n`, { mode: 0o600 });
    const { active } = loadMasterKeys(options({}, { keyDir }));
    expect(active.id).toBe(loadMasterKeys(options({ LATCHKEY_MASTER_KEY: FAKE_KEY_C })).active.id);
    expect(readFileSync(join(keyDir, 'master.key'), 'utf8')).toBe(`${FAKE_KEY_C}\n`);
    expect(warnings).toEqual([]);
    expect(readdirSync(keyDir)).toEqual(['master.key']); // no temporary file left behind
  });

  it('the generated key file is not inside the data directory', () => {
    const dataDir = join(root, 'data', '.latchkey');
    mkdirSync(dataDir, { recursive: true });
    const keyDir = join(root, 'config', 'latchkey');
    loadMasterKeys(options({}, { keyDir, dataDir }));
    const file = join(keyDir, 'master.key');
    expect(existsSync(file)).toBe(true);
    expect(relative(dataDir, file).startsWith('..')).toBe(true);
  });

  it('refuses to generate the key inside the data directory', () => {
    const dataDir = join(root, 'data');
    const error = loadError(options({}, { keyDir: join(dataDir, 'keys'), dataDir }));
    expect(error.message).toMatch(/inside the data directory/);
    expect(existsSync(join(dataDir, 'keys', 'master.key'))).toBe(false);
  });

  it('defaults keyDir to LATCHKEY_KEY_DIR, then $XDG_CONFIG_HOME/latchkey', () => {
    const viaKeyDir = join(root, 'via-key-dir');
    loadMasterKeys(options({ LATCHKEY_KEY_DIR: viaKeyDir }, { keyDir: undefined }));
    expect(existsSync(join(viaKeyDir, 'master.key'))).toBe(true);

    const xdg = join(root, 'xdg');
    loadMasterKeys(options({ XDG_CONFIG_HOME: xdg }, { keyDir: undefined }));
    expect(existsSync(join(xdg, 'latchkey', 'master.key'))).toBe(true);
  });

  it('accepts previous keys for unwrapping, but new wraps use the active key id', async () => {
    const before = loadMasterKeys(options({ LATCHKEY_MASTER_KEY: FAKE_KEY_B }));
    const wrappedBefore = await new LocalKeyProvider(before).wrapDataKey(Buffer.alloc(32, 0x5d), 'ws_fake_1');

    const keys = loadMasterKeys(
      options({
        LATCHKEY_MASTER_KEY: FAKE_KEY_A,
        LATCHKEY_PREVIOUS_MASTER_KEYS: ` ${FAKE_KEY_B} , ${FAKE_KEY_C},`,
      }),
    );
    expect(keys.all.map((k) => k.id)).toEqual([
      keys.active.id,
      before.active.id,
      loadMasterKeys(options({ LATCHKEY_MASTER_KEY: FAKE_KEY_C })).active.id,
    ]);
    const provider = new LocalKeyProvider(keys);
    const dataKey = await provider.unwrapDataKey(wrappedBefore.keyId, wrappedBefore.wrapped, 'ws_fake_1');
    expect(dataKey.export().equals(Buffer.alloc(32, 0x5d))).toBe(true);
    const rewrapped = await provider.wrapDataKey(dataKey.export(), 'ws_fake_1');
    expect(rewrapped.keyId).toBe(keys.active.id);
    expect(rewrapped.keyId).not.toBe(wrappedBefore.keyId);
  });

  it('lists a previous key equal to the active key only once', () => {
    const keys = loadMasterKeys(
      options({ LATCHKEY_MASTER_KEY: FAKE_KEY_A, LATCHKEY_PREVIOUS_MASTER_KEYS: FAKE_KEY_A }),
    );
    expect(keys.all).toHaveLength(1);
  });

  it('rejects a malformed previous key, naming the variable and entry', () => {
    const error = loadError(
      options({
        LATCHKEY_MASTER_KEY: FAKE_KEY_A,
        LATCHKEY_PREVIOUS_MASTER_KEYS: `${FAKE_KEY_B},${FAKE_16_BYTES}`,
      }),
    );
    expect(error.message).toContain('LATCHKEY_PREVIOUS_MASTER_KEYS (entry 2)');
    expectNoKeyMaterial(error.message, FAKE_KEY_A, FAKE_KEY_B, FAKE_16_BYTES);
  });

  it('error messages never contain key material', () => {
    const cases: Array<[MasterKeyVariables, string[]]> = [
      [{ LATCHKEY_MASTER_KEY: NOT_BASE64 }, [NOT_BASE64]],
      [{ LATCHKEY_MASTER_KEY: FAKE_16_BYTES }, [FAKE_16_BYTES]],
      [{ LATCHKEY_MASTER_KEY: `${FAKE_KEY_A}AAAA` }, [FAKE_KEY_A]],
      [
        { LATCHKEY_MASTER_KEY: FAKE_KEY_A, LATCHKEY_PREVIOUS_MASTER_KEYS: `${NOT_BASE64}` },
        [FAKE_KEY_A, NOT_BASE64],
      ],
      [{ LATCHKEY_MASTER_KEY: FAKE_KEY_A.slice(0, 43) }, [FAKE_KEY_A.slice(0, 43)]],
    ];
    for (const [env, secrets] of cases) {
      const error = loadError(options(env));
      expectNoKeyMaterial(`${error.message}\n${String(error.stack)}\n${warnings.join('\n')}`, ...secrets);
      expect(error.cause).toBeUndefined();
    }
  });
});
