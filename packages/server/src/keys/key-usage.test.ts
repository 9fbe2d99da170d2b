import { randomBytes } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createServices } from '../app.js';
import { runCli } from '../cli/index.js';
import { readConfig } from '../config.js';
import { LocalKeyProvider, type MasterKey, readEnvelopeHeader } from '../crypto/index.js';
import type { Database } from '../db/schema.js';
import { resolveNodeCredential } from '../runner/resolve-credential.js';
import type { Services } from '../services.js';
import {
  clientFor,
  openTestDatabase,
  ownerOf,
  signedInUser,
  TEST_SCRYPT,
  testBackend,
  testMasterKey,
} from '../testing/harness.js';
import { DATA_KEY_LIMIT_VARIABLE, DEFAULT_DATA_KEY_MAX_ENCRYPTIONS, encryptionCount } from './key-usage.js';
import { keyStatus, reencryptSecrets } from './rotation.js';
import { addDataKeyVersion } from './workspace-keys.js';

const dataKeyLimitOf = (env: NodeJS.ProcessEnv) => readConfig(env).dataKeyMaxEncryptions;

// Issue 6, item 3: every encryption under a data key is counted, in the statement that stores it, and a key at
// the limit is followed by a new version before it would encrypt once more — also with concurrent writers.

type TestDb = Awaited<ReturnType<typeof openTestDatabase>>;

let database: TestDb;
let masterKey: MasterKey;
/** Every secret written, with the value it must decrypt to. */
let expected: Map<string, { workspaceId: string; token: string }>;

/** Direct reads and key maintenance (as the CLI runs it) use the tables' owner: row-level security does not bind it. */
const admin = (): Kysely<Database> => ownerOf(database);

/**
 * Services on the test database: another server instance each time. By default each reservation takes one count
 * (a block of 1), so the stored count is the number of encryptions and the tests of the limit read it exactly;
 * the tests of blocks pass a larger one.
 */
function services(dataKeyMaxEncryptions?: number, encryptionBlock = 1): Promise<Services> {
  return createServices({
    database,
    keyProvider: new LocalKeyProvider({ active: masterKey, all: [masterKey] }),
    passwordCost: TEST_SCRYPT,
    encryptionBlock,
    ...(dataKeyMaxEncryptions === undefined ? {} : { dataKeyMaxEncryptions }),
  });
}

/** The same signed-in person, on another instance. */
function on(svc: Services, person: Person): Person {
  const other = clientFor(svc);
  other.session.token = person.session.token;
  return { ...person, caller: other.caller };
}

type Person = Awaited<ReturnType<typeof signedInUser>>;

async function personalWorkspace(svc: Services, name = 'Key user') {
  const person = await signedInUser(svc, name);
  const workspaceId = (await person.caller.auth.me())?.workspaces[0]?.id as string;
  return { person, workspaceId };
}

const fakeToken = () => `xoxb-fake-${randomBytes(6).toString('hex')}`;

async function create(person: Person, workspaceId: string, name: string) {
  const token = fakeToken();
  const meta = await person.caller.secrets.create({
    workspaceId,
    credentialType: 'slackBotToken',
    name,
    data: { token },
  });
  expected.set(meta.id, { workspaceId, token });
  return meta.id;
}

async function replace(person: Person, workspaceId: string, secretId: string) {
  const token = fakeToken();
  await person.caller.secrets.replace({ workspaceId, secretId, data: { token } });
  expected.set(secretId, { workspaceId, token });
}

/** Encryptions per data-key version of a workspace. */
async function counts(workspaceId: string): Promise<Record<number, number>> {
  const rows = await admin()
    .selectFrom('workspace_keys')
    .select(['version', 'encryptions'])
    .where('workspace_id', '=', workspaceId)
    .orderBy('version')
    .execute();
  return Object.fromEntries(rows.map((r) => [r.version, encryptionCount(r.encryptions)]));
}

async function keyVersionOf(secretId: string): Promise<number> {
  const row = await admin()
    .selectFrom('secrets')
    .select(['key_version', 'ciphertext'])
    .where('id', '=', secretId)
    .executeTakeFirstOrThrow();
  // The envelope names the same version (it is part of the associated data).
  expect(readEnvelopeHeader(Buffer.from(row.ciphertext)).dataKeyVersion).toBe(row.key_version);
  return row.key_version;
}

async function renewals(workspaceId: string) {
  return admin()
    .selectFrom('audit_events')
    .select('details')
    .where('workspace_id', '=', workspaceId)
    .where('action', '=', 'workspace.data_key_rotated')
    .orderBy('seq')
    .execute();
}

/** Resolves every expected secret through the runner, on fresh services (no key cached from the writes). */
async function expectEverySecretDecrypts(): Promise<void> {
  const svc = await services();
  const integration = svc.registry.integrationForNodeType('slack');
  if (!integration) throw new Error('slack is not installed');
  for (const [secretId, secret] of expected) {
    const resolved = await resolveNodeCredential(
      svc,
      secret.workspaceId,
      { id: 'n', name: 'Node', nodeType: 'slack', secretId, lostSecretName: null },
      integration,
    );
    expect(resolved.credential.fields()).toEqual({ token: secret.token });
  }
}

/** `latchkey …` on the test database, with this test's master key. */
async function cli(argv: string[], env: NodeJS.ProcessEnv) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, {
    env,
    out: (line) => out.push(line),
    err: (line) => err.push(line),
    database: { ...database, close: async () => {} },
    keyProvider: new LocalKeyProvider({ active: masterKey, all: [masterKey] }),
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const sum = (values: Record<number, number>) => Object.values(values).reduce((a, b) => a + b, 0);

/** Secrets stored under each data-key version of a workspace. */
async function storedPerVersion(workspaceId: string): Promise<Record<number, number>> {
  const rows = await admin()
    .selectFrom('secrets')
    .select((eb) => ['key_version', eb.fn.countAll<string>().as('n')])
    .where('workspace_id', '=', workspaceId)
    .groupBy('key_version')
    .execute();
  return Object.fromEntries(rows.map((r) => [r.key_version, Number(r.n)]));
}

/** Every version counts at least the ciphertexts stored under it, and no version counts past the limit. */
async function expectCountsCover(workspaceId: string, limit: number): Promise<void> {
  const perVersion = await counts(workspaceId);
  for (const [version, n] of Object.entries(await storedPerVersion(workspaceId))) {
    expect(perVersion[Number(version)]).toBeGreaterThanOrEqual(n);
  }
  for (const n of Object.values(perVersion)) expect(n).toBeLessThanOrEqual(limit);
}

beforeEach(async () => {
  database = await openTestDatabase();
  masterKey = testMasterKey();
  expected = new Map();
});
afterEach(async () => {
  vi.unstubAllEnvs();
  await database.close();
});

describe(`encryptions per data key (${testBackend()})`, () => {
  it('with a limit of 3, the 4th secret gets a new data-key version; counts are exact and all decrypt', async () => {
    const svc = await services(3);
    const { person, workspaceId } = await personalWorkspace(svc);
    const ids: string[] = [];
    for (let i = 1; i <= 3; i++) ids.push(await create(person, workspaceId, `Token ${i}`));
    expect(await counts(workspaceId)).toEqual({ 1: 3 });
    expect(await renewals(workspaceId)).toEqual([]);

    ids.push(await create(person, workspaceId, 'Token 4'));
    expect(await counts(workspaceId)).toEqual({ 1: 3, 2: 1 });
    expect(await Promise.all(ids.map(keyVersionOf))).toEqual([1, 1, 1, 2]);
    // One audit event for the automatic renewal, saying why.
    expect(await renewals(workspaceId)).toEqual([
      { details: { version: 2, masterKeyId: masterKey.id, reason: 'encryption-limit' } },
    ]);
    for (let i = 5; i <= 7; i++) ids.push(await create(person, workspaceId, `Token ${i}`));
    expect(await counts(workspaceId)).toEqual({ 1: 3, 2: 3, 3: 1 });
    await expectEverySecretDecrypts();

    // keys status reports the busiest active key against the limit.
    const status = await keyStatus(admin(), svc.keys.provider);
    expect(status.mostUsedActiveDataKey).toEqual({ workspaceId, version: 3, encryptions: 1 });
    const status3 = await cli(['keys', 'status'], { [DATA_KEY_LIMIT_VARIABLE]: '3' });
    expect(status3.code).toBe(0);
    expect(status3.out).toContain(
      `Encryptions per active data key: at most 1 (33.3% of the limit 3, ${DATA_KEY_LIMIT_VARIABLE}; workspace ${workspaceId}, version 3).`,
    );
    const unset = await cli(['keys', 'status'], {});
    expect(unset.out).toContain('at most 1 (<0.01% of the limit 1073741824');
    const invalid = await cli(['keys', 'status'], { [DATA_KEY_LIMIT_VARIABLE]: '3.5' });
    expect(invalid.code).toBe(1);
    expect(invalid.err).toContain(`${DATA_KEY_LIMIT_VARIABLE} must be a whole number from 1 to 4294967296`);
  });

  it('a refused create uses up no encryption: duplicate name, invalid data', async () => {
    const svc = await services(3);
    const { person, workspaceId } = await personalWorkspace(svc);
    const ids = [await create(person, workspaceId, 'Only once')];
    await expect(create(person, workspaceId, 'Only once')).rejects.toThrow(/already exists/);
    await expect(
      person.caller.secrets.create({
        workspaceId,
        credentialType: 'slackBotToken',
        name: 'Bad',
        data: { token: 'not a slack token' },
      }),
    ).rejects.toThrow();
    // The duplicate's count (reserved before its write) went back to this instance: invalid data reserved none.
    expect(await counts(workspaceId)).toEqual({ 1: 2 });
    expect(svc.keys.encryptions.unused(workspaceId)).toEqual({ version: 1, left: 1 });
    // So the limit of 3 still holds three secrets under version 1.
    ids.push(await create(person, workspaceId, 'Second'), await create(person, workspaceId, 'Third'));
    expect(await counts(workspaceId)).toEqual({ 1: 3 });
    expect(await Promise.all(ids.map(keyVersionOf))).toEqual([1, 1, 1]);
    expect(await renewals(workspaceId)).toEqual([]);
  });

  it('a create with a remembered key that another instance rotated away uses the newest key', async () => {
    const svc = await services();
    const { person, workspaceId } = await personalWorkspace(svc);
    const first = await create(person, workspaceId, 'Before the rotation');
    // This instance now remembers version 1; another instance (here: the CLI's function) adds version 2.
    expect(svc.keys.lastActive(workspaceId)?.version).toBe(1);
    await addDataKeyVersion(admin(), svc.keys.provider, workspaceId);
    const second = await create(person, workspaceId, 'After the rotation');
    expect(await keyVersionOf(first)).toBe(1);
    expect(await keyVersionOf(second)).toBe(2);
    // The stale attempt stored and counted nothing; the retry counted once under version 2.
    expect(await counts(workspaceId)).toEqual({ 1: 1, 2: 1 });
    expect(svc.keys.lastActive(workspaceId)?.version).toBe(2);
    // Only the rotation itself is audited: the retry added no version.
    expect(await renewals(workspaceId)).toHaveLength(1);
    await expectEverySecretDecrypts();
  });

  it('replacing a value counts, and at the limit the replaced value is encrypted with a new version', async () => {
    const svc = await services(3);
    const { person, workspaceId } = await personalWorkspace(svc);
    const a = await create(person, workspaceId, 'A');
    const b = await create(person, workspaceId, 'B');
    await replace(person, workspaceId, a);
    expect(await counts(workspaceId)).toEqual({ 1: 3 });
    await replace(person, workspaceId, b);
    expect(await counts(workspaceId)).toEqual({ 1: 3, 2: 1 });
    expect(await keyVersionOf(a)).toBe(1);
    expect(await keyVersionOf(b)).toBe(2);
    await replace(person, workspaceId, a);
    expect(await counts(workspaceId)).toEqual({ 1: 3, 2: 2 });
    expect(await keyVersionOf(a)).toBe(2);
    await expectEverySecretDecrypts();
  });

  it('re-encryption by data-key rotation counts, and renews a key it fills part-way through', async () => {
    const svc = await services(3);
    const { person, workspaceId } = await personalWorkspace(svc);
    for (let i = 1; i <= 5; i++) await create(person, workspaceId, `Token ${i}`);
    expect(await counts(workspaceId)).toEqual({ 1: 3, 2: 2 });

    // Operator rotation: version 3 for everything; it holds 3 re-encryptions, then version 4 takes the rest.
    const { version } = await addDataKeyVersion(admin(), svc.keys.provider, workspaceId);
    expect(version).toBe(3);
    const report = await reencryptSecrets(admin(), svc.keys, workspaceId, {
      maxEncryptions: 3,
      batchSize: 2,
    });
    expect(report).toEqual({ workspaceId, version: 4, reencrypted: 5, upgraded: 0, failed: [] });
    expect(await counts(workspaceId)).toEqual({ 1: 3, 2: 2, 3: 3, 4: 2 });
    const versions = await Promise.all([...expected.keys()].map(keyVersionOf));
    expect(versions.sort()).toEqual([3, 3, 3, 4, 4]);
    expect((await renewals(workspaceId)).map((r) => r.details)).toEqual([
      { version: 2, masterKeyId: masterKey.id, reason: 'encryption-limit' },
      { version: 3, masterKeyId: masterKey.id },
      { version: 4, masterKeyId: masterKey.id, reason: 'encryption-limit' },
    ]);
    await expectEverySecretDecrypts();
  });

  it('a lowered limit applies at the next write; a key never counts past the limit it was written under', async () => {
    const generous = await services(10);
    const { person, workspaceId } = await personalWorkspace(generous);
    for (let i = 1; i <= 4; i++) await create(person, workspaceId, `Token ${i}`);
    // The same user, on a server restarted with a lower limit than the key has already used.
    await create(on(await services(2), person), workspaceId, 'Token 5');
    expect(await counts(workspaceId)).toEqual({ 1: 4, 2: 1 });
    await expectEverySecretDecrypts();
  });

  it('concurrent creates never push a key past the limit: 20 at once with a limit of 5', async () => {
    const svc = await services(5);
    const { person, workspaceId } = await personalWorkspace(svc);
    const ids = await Promise.all(
      Array.from({ length: 20 }, (_, i) => create(person, workspaceId, `Parallel ${i}`)),
    );
    expect(new Set(ids).size).toBe(20);
    const perVersion = await counts(workspaceId);
    // Each exhausted version was renewed exactly once, however many writers found it full.
    const versions = Object.keys(perVersion).length;
    expect(await renewals(workspaceId)).toHaveLength(versions - 1);
    // Every version but the newest is full; no version holds more ciphertexts than it counted, nor counts past 5
    // (a count a writer took just before another renewed its key is spent without a ciphertext: safe).
    await expectCountsCover(workspaceId, 5);
    for (let v = 1; v < versions; v++) expect(perVersion[v]).toBe(5);
    expect(sum(await storedPerVersion(workspaceId))).toBe(20);
    await expectEverySecretDecrypts();
  });

  it('creates, replaces and a re-encryption run at the same time: no deadlock, every encryption counted once', async () => {
    const svc = await services(7);
    const { person, workspaceId } = await personalWorkspace(svc);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await create(person, workspaceId, `Old ${i}`));
    await addDataKeyVersion(admin(), svc.keys.provider, workspaceId);
    const [report] = await Promise.all([
      reencryptSecrets(admin(), svc.keys, workspaceId, { maxEncryptions: 7, batchSize: 2 }),
      ...ids.map((id) => replace(person, workspaceId, id)),
      ...Array.from({ length: 6 }, (_, i) => create(person, workspaceId, `New ${i}`)),
    ]);
    const perVersion = await counts(workspaceId);
    await expectCountsCover(workspaceId, 7);
    // 6 creates + 6 replaces + 6 more creates + whatever the run re-encrypted (a replace it waited for, or
    // that came first with the new key, leaves it nothing to do for that secret); a count taken just before
    // another writer renewed the key is spent without a ciphertext, never the other way round.
    expect(sum(perVersion)).toBeGreaterThanOrEqual(18 + report.reencrypted);
    expect(report.failed).toEqual([]);
    await expectEverySecretDecrypts();
  });
});

// Issue 15 §4: counts are reserved a block at a time per instance, before they are used, so a create does not
// update the key's row — and the limit still holds exactly across instances and crashes.
describe(`encryption counts reserved in blocks (${testBackend()})`, () => {
  /** The key row's encryptions and the transaction that last wrote it (xmin: any update changes it). */
  async function keyRow(workspaceId: string, version: number) {
    const { rows } = await sql<{ encryptions: string | number; xmin: string }>`
      select encryptions, xmin::text as xmin from workspace_keys
      where workspace_id = ${workspaceId} and version = ${version}`.execute(admin());
    const row = rows[0];
    if (!row) throw new Error(`no data key version ${version}`);
    return { encryptions: encryptionCount(row.encryptions), xmin: row.xmin };
  }

  it('a create with counts left in its block does not touch the key row; the next block is one statement', async () => {
    const svc = await services(undefined, 5);
    const { person, workspaceId } = await personalWorkspace(svc);
    await create(person, workspaceId, 'Reserves the block');
    const reserved = await keyRow(workspaceId, 1);
    expect(reserved.encryptions).toBe(5);
    for (let i = 2; i <= 5; i++) await create(person, workspaceId, `From the block ${i}`);
    // Four more creates: the row is exactly as the reservation left it (not even rewritten with the same value).
    expect(await keyRow(workspaceId, 1)).toEqual(reserved);
    expect(svc.keys.encryptions.unused(workspaceId)).toEqual({ version: 1, left: 0 });
    await create(person, workspaceId, 'Reserves the next block');
    expect((await keyRow(workspaceId, 1)).encryptions).toBe(10);
    expect(await storedPerVersion(workspaceId)).toEqual({ 1: 6 });
    await expectEverySecretDecrypts();
  });

  it('concurrent creates on one instance share one reservation', async () => {
    const svc = await services(undefined, 10);
    const { person, workspaceId } = await personalWorkspace(svc);
    await Promise.all(Array.from({ length: 6 }, (_, i) => create(person, workspaceId, `Together ${i}`)));
    expect(await counts(workspaceId)).toEqual({ 1: 10 });
    expect(svc.keys.encryptions.unused(workspaceId)).toEqual({ version: 1, left: 4 });
  });

  it('two instances writing at once with a small limit and block: the limit holds exactly, versions renew', async () => {
    const limit = 7;
    const block = 3;
    const first = await services(limit, block);
    const second = await services(limit, block);
    const { person, workspaceId } = await personalWorkspace(first);
    const onSecond = on(second, person);
    const ids = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        create(i % 2 ? onSecond : person, workspaceId, `Instance ${i % 2} secret ${i}`),
      ),
    );
    expect(new Set(ids).size).toBe(30);
    const perVersion = await counts(workspaceId);
    const stored = await storedPerVersion(workspaceId);
    expect(sum(stored)).toBe(30);
    await expectCountsCover(workspaceId, limit);
    const versions = Object.keys(perVersion).length;
    // Every version but the newest was used up to its limit and renewed once, whichever instance found it full.
    for (let v = 1; v < versions; v++) expect(perVersion[v]).toBe(limit);
    expect(await renewals(workspaceId)).toHaveLength(versions - 1);
    // What a version counted without a ciphertext is what the two instances held unused: at most a block each.
    for (const [v, n] of Object.entries(perVersion)) {
      expect(n - (stored[Number(v)] ?? 0)).toBeLessThanOrEqual(2 * block);
    }
    await expectEverySecretDecrypts();
  });

  it('an instance that crashes with a reserved block wastes at most that block and never passes the limit', async () => {
    const limit = 10;
    const block = 4;
    const crashed = await services(limit, block);
    const { person, workspaceId } = await personalWorkspace(crashed);
    await create(person, workspaceId, 'Before the crash');
    expect(await counts(workspaceId)).toEqual({ 1: 4 });
    // The instance is gone with 3 counts unused; another one goes on.
    const survivor = await services(limit, block);
    const onSurvivor = on(survivor, person);
    for (let i = 1; i <= 8; i++) await create(onSurvivor, workspaceId, `After the crash ${i}`);
    // Version 1: 4 (crashed) + 4 + 2 (the block capped by what was left) = the limit; 7 ciphertexts under it.
    expect(await counts(workspaceId)).toEqual({ 1: limit, 2: 4 });
    expect(await storedPerVersion(workspaceId)).toEqual({ 1: 7, 2: 2 });
    expect(survivor.keys.encryptions.unused(workspaceId)).toEqual({ version: 2, left: 2 });
    await expectCountsCover(workspaceId, limit);
    await expectEverySecretDecrypts();
  });

  it('a block of a key another instance renewed is dropped: the create is retried with the newest key', async () => {
    const limit = 4;
    const block = 2;
    const a = await services(limit, block);
    const b = await services(limit, block);
    const { person, workspaceId } = await personalWorkspace(a);
    const onB = on(b, person);
    const first = await create(person, workspaceId, 'A before');
    expect(a.keys.encryptions.unused(workspaceId)).toEqual({ version: 1, left: 1 });
    // B uses up version 1 (its block of 2 is what was left) and renews it.
    await create(onB, workspaceId, 'B 1');
    await create(onB, workspaceId, 'B 2');
    const renewed = await create(onB, workspaceId, 'B after the renewal');
    expect(await keyVersionOf(renewed)).toBe(2);
    expect(await renewals(workspaceId)).toHaveLength(1);
    // A still holds a count of version 1 and believes it newest: its write stores nothing and is retried.
    expect(a.keys.lastActive(workspaceId)?.version).toBe(1);
    const second = await create(person, workspaceId, 'A after');
    expect(await keyVersionOf(first)).toBe(1);
    expect(await keyVersionOf(second)).toBe(2);
    expect(a.keys.lastActive(workspaceId)?.version).toBe(2);
    expect(a.keys.encryptions.unused(workspaceId)).toEqual({ version: 2, left: 1 });
    // No version added by the retry; version 1 counted 4 for 3 ciphertexts (A's unused count, wasted).
    expect(await renewals(workspaceId)).toHaveLength(1);
    expect(await counts(workspaceId)).toEqual({ 1: 4, 2: 4 });
    expect(await storedPerVersion(workspaceId)).toEqual({ 1: 3, 2: 2 });
    await expectEverySecretDecrypts();
  });
});

describe('LATCHKEY_DATA_KEY_MAX_ENCRYPTIONS', () => {
  it('defaults to 2^30 and takes a whole number from 1 to 2^32', () => {
    expect(DEFAULT_DATA_KEY_MAX_ENCRYPTIONS).toBe(2 ** 30);
    expect(dataKeyLimitOf({})).toBe(2 ** 30);
    expect(dataKeyLimitOf({ [DATA_KEY_LIMIT_VARIABLE]: '' })).toBe(2 ** 30);
    expect(dataKeyLimitOf({ [DATA_KEY_LIMIT_VARIABLE]: '1' })).toBe(1);
    expect(dataKeyLimitOf({ [DATA_KEY_LIMIT_VARIABLE]: '1000000' })).toBe(1_000_000);
    expect(dataKeyLimitOf({ [DATA_KEY_LIMIT_VARIABLE]: String(2 ** 32) })).toBe(2 ** 32);
    for (const bad of ['0', '-5', 'many', '1.5', '1e6', '0x10', '10k', String(2 ** 32 + 1), '9'.repeat(30)]) {
      expect(() => dataKeyLimitOf({ [DATA_KEY_LIMIT_VARIABLE]: bad })).toThrow(
        /^LATCHKEY_DATA_KEY_MAX_ENCRYPTIONS must be a whole number from 1 to 4294967296/,
      );
    }
  });

  it('an invalid value stops start-up with a message naming the variable, before anything is written', async () => {
    // As main.ts starts: the configuration is read (config.ts) before the database is opened or migrated.
    const start = () => Promise.resolve().then(() => services(readConfig(process.env).dataKeyMaxEncryptions));
    vi.stubEnv(DATA_KEY_LIMIT_VARIABLE, 'lots');
    const error = await start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/^LATCHKEY_DATA_KEY_MAX_ENCRYPTIONS must be a whole number/);
    // Not even migrated.
    const table = await sql<{ t: string | null }>`select to_regclass('workspace_keys')::text as t`.execute(
      admin(),
    );
    expect(table.rows[0]?.t).toBeNull();

    vi.stubEnv(DATA_KEY_LIMIT_VARIABLE, '12');
    expect((await start()).dataKeyMaxEncryptions).toBe(12);
    // Without a configured limit the default applies; an explicit option is checked the same way.
    expect((await services()).dataKeyMaxEncryptions).toBe(2 ** 30);
    expect((await services(4)).dataKeyMaxEncryptions).toBe(4);
    await expect(services(0)).rejects.toThrow(/must be a whole number from 1/);
  });
});
