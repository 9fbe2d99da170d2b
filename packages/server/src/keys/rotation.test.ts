import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import { createServices, StartupError } from '../app.js';
import { readConfig } from '../config.js';
import { type KeyProvider, LocalKeyProvider, type MasterKey } from '../crypto/index.js';
import type { Database } from '../db/schema.js';
import { hashToken } from '../identity/tokens.js';
import { resolveNodeCredential } from '../runner/resolve-credential.js';
import type { Services } from '../services.js';
import { freshFakeData } from '../testing/fake-services.js';
import {
  clientFor,
  openTestDatabase,
  ownerDb,
  ownerOf,
  signedInUser,
  TEST_SCRYPT,
  testMasterKey,
} from '../testing/harness.js';
import { startOAuth2TestEnv } from '../testing/oauth2-connections.js';
import { keyStatus, reencryptSecrets, rewrapDataKeys } from './rotation.js';
import { addDataKeyVersion, KeyRotationError } from './workspace-keys.js';

// Master-key rotation (issue 6, item 1): re-wrap online, idempotent, resumable; afterwards the old key can go.
// Data-key rotation: a new version for new secrets, old secrets re-encrypted in resumable batches.

const providerFor = (active: MasterKey, ...previous: MasterKey[]) =>
  new LocalKeyProvider({ active, all: [active, ...previous] });

type TestDb = Awaited<ReturnType<typeof openTestDatabase>>;

let database: TestDb;
let oldKey: MasterKey;
let newKey: MasterKey;
/** Every secret created by `seed`, with the fields it must still decrypt to. */
let expected: Map<
  string,
  { workspaceId: string; credentialType: string; nodeType: string; data: Record<string, string> }
>;
let workspaceIds: string[];

const NODE_TYPE: Record<string, string> = {
  sendgridApiKey: 'sendgrid',
  slackBotToken: 'slack',
  httpBasicAuth: 'httpRequest',
  mailgunApiKey: 'mailgun',
};

/** The runner may reach 127.0.0.1: the authorization server of the OAuth2 connection listens there. */
const runnerSettings = readConfig({ LATCHKEY_OUTBOUND_ALLOW: '127.0.0.1' }).runnerSettings;

function services(provider: KeyProvider): Promise<Services> {
  return createServices({ database, keyProvider: provider, passwordCost: TEST_SCRYPT, runnerSettings });
}

/**
 * An OAuth2 connection connected through a real authorization server while only the old key exists, in a
 * workspace of its own (added to `workspaceIds`), and used once by a node. Answers a check that a run on other
 * services sends the very access token the first run sent, without asking the provider for a new one: the
 * tokens in its envelope survived.
 */
async function connectionOnOldKey() {
  const svc = await services(providerFor(oldKey));
  const oauth = await startOAuth2TestEnv(svc);
  onTestFinished(() => oauth.close());
  const person = await signedInUser(svc, 'Connector');
  const workspaceId = (await person.caller.auth.me())?.workspaces[0]?.id as string;
  workspaceIds.push(workspaceId);
  const { secretId, location } = await oauth.connect(person, workspaceId, 'Connected API');
  expect(location).toBe(`/w/${workspaceId}/integrations?connected=${secretId}`);
  const workflow = await person.caller.workflows.create({ workspaceId, name: 'Uses the connection' });
  const node = await person.caller.workflows.addNode({
    workflowId: workflow.id,
    name: 'Call the API',
    nodeType: 'httpRequest',
    params: { method: 'GET', url: oauth.as.apiUrl },
  });
  await person.caller.workflows.updateNode({ workflowId: workflow.id, nodeId: node.id, secretId });
  const runOn = async (on: Services) => {
    const { caller, session } = clientFor(on);
    session.token = person.session.token;
    const calls = oauth.as.apiTokens.length;
    const result = await caller.workflows.run({ workflowId: workflow.id });
    expect(result.nodes[0], result.nodes[0]?.error).toMatchObject({ ok: true });
    expect(oauth.as.apiTokens).toHaveLength(calls + 1);
    return oauth.as.apiTokens[calls];
  };
  const sent = await runOn(svc);
  expect(sent).toMatch(/^[A-Za-z0-9_-]{20,}$/);
  const envelope = () =>
    ownerOf(database)
      .selectFrom('secrets')
      .select(['ciphertext', 'key_version', 'token_generation'])
      .where('id', '=', secretId)
      .executeTakeFirstOrThrow();
  const stored = await envelope();
  return {
    async expectSameAccessTokenOn(on: Services) {
      const refreshes = oauth.as.tokenRequests.refresh_token ?? 0;
      expect(await runOn(on)).toBe(sent);
      expect(oauth.as.tokenRequests.refresh_token ?? 0).toBe(refreshes);
      // Master-key rotation re-wraps data keys only: the connection's envelope is the one stored before.
      const now = await envelope();
      expect(Buffer.compare(now.ciphertext, stored.ciphertext)).toBe(0);
      expect(now).toMatchObject({
        key_version: stored.key_version,
        token_generation: stored.token_generation,
      });
    },
  };
}

/** Two people, each with a personal and a team workspace, with secrets of several types in each. */
async function seed(svc: Services): Promise<void> {
  for (let p = 0; p < 2; p++) {
    const person = await signedInUser(svc, `Rotator ${p}`);
    const personal = (await person.caller.auth.me())?.workspaces[0]?.id as string;
    const team = (await person.caller.workspaces.create({ name: `Team ${p}`, plan: 'team' })).id;
    for (const workspaceId of [personal, team]) {
      workspaceIds.push(workspaceId);
      for (const credentialType of Object.keys(NODE_TYPE)) {
        const data = freshFakeData()[credentialType] as Record<string, string>;
        const meta = await person.caller.secrets.create({
          workspaceId,
          credentialType,
          name: `${credentialType} ${workspaceId.slice(0, 6)}`,
          data,
        });
        expected.set(meta.id, {
          workspaceId,
          credentialType,
          nodeType: NODE_TYPE[credentialType] as string,
          data,
        });
      }
    }
  }
}

/** Resolves and decrypts every expected secret through the runner's own path, on `svc`. */
async function expectEverySecretDecrypts(svc: Services): Promise<void> {
  for (const [secretId, secret] of expected) {
    const integration = svc.registry.integrationForNodeType(secret.nodeType);
    if (!integration) throw new Error(`no integration for ${secret.nodeType}`);
    const resolved = await resolveNodeCredential(
      svc,
      secret.workspaceId,
      { id: 'n', name: 'Node', nodeType: secret.nodeType, secretId, lostSecretName: null },
      integration,
    );
    expect(resolved.credential.fields()).toEqual(secret.data);
  }
}

async function keyRows(db: Kysely<Database>) {
  return db
    .selectFrom('workspace_keys')
    .select(['workspace_id', 'version', 'master_key_id', 'wrapped_key'])
    .orderBy('workspace_id')
    .orderBy('version')
    .execute();
}

async function secretRows(db: Kysely<Database>) {
  return db
    .selectFrom('secrets')
    .select(['id', 'workspace_id', 'key_version', 'ciphertext', 'updated_at'])
    .orderBy('id')
    .execute();
}

beforeEach(async () => {
  database = await openTestDatabase();
  oldKey = testMasterKey();
  newKey = testMasterKey();
  expected = new Map();
  workspaceIds = [];
  await seed(await services(providerFor(oldKey)));
});
afterEach(() => database.close());

describe('master-key rotation (keys rotate)', () => {
  it('re-wraps every data key; then the old key can be removed and every secret still decrypts', async () => {
    const connection = await connectionOnOldKey();
    // Servers restarted with the new key active and the old one still accepted, then the command runs.
    const both = providerFor(newKey, oldKey);
    await services(both);
    const progress: string[] = [];
    const report = await rewrapDataKeys(ownerOf(database), both, {
      onProgress: (p) => progress.push(`${p.done}/${p.total} ${p.outcome}`),
    });
    expect(report).toMatchObject({
      activeKeyId: newKey.id,
      workspaces: workspaceIds.length,
      rewrapped: workspaceIds.length,
      dataKeysRewrapped: workspaceIds.length,
      alreadyCurrent: 0,
      failed: [],
      masterKeyIdsInUse: [newKey.id],
    });
    expect(progress).toEqual(workspaceIds.map((_, i) => `${i + 1}/${workspaceIds.length} rewrapped`));
    for (const row of await keyRows(ownerOf(database))) expect(row.master_key_id).toBe(newKey.id);

    // The old key is removed: the server starts with the new key alone and every secret decrypts.
    const onlyNew = await services(providerFor(newKey));
    await expectEverySecretDecrypts(onlyNew);
    // The OAuth2 connection's tokens survived: a run on the new key alone sends the same access token.
    await connection.expectSameAccessTokenOn(onlyNew);
    // …and the old key alone is now the wrong key.
    const refused = await services(providerFor(oldKey)).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(StartupError);
    expect((refused as Error).message).toContain(newKey.id);
  });

  it('is idempotent: a second run re-wraps nothing and writes nothing', async () => {
    const both = providerFor(newKey, oldKey);
    await rewrapDataKeys(ownerOf(database), both);
    const before = await keyRows(ownerOf(database));
    const again = await rewrapDataKeys(ownerOf(database), both);
    expect(again).toMatchObject({ rewrapped: 0, alreadyCurrent: workspaceIds.length, failed: [] });
    expect(await keyRows(ownerOf(database))).toEqual(before);
  });

  it('keeps serving while it runs: after every workspace, every secret decrypts and new secrets work', async () => {
    const both = providerFor(newKey, oldKey);
    const server = await services(both);
    const person = await signedInUser(server, 'Busy user');
    const busyWorkspace = (await person.caller.auth.me())?.workspaces[0]?.id as string;
    let step = 0;
    const report = await rewrapDataKeys(ownerOf(database), both, {
      async afterWorkspace() {
        step += 1;
        const rows = await keyRows(ownerOf(database));
        expect(rows.some((r) => r.master_key_id === newKey.id)).toBe(true);
        await expectEverySecretDecrypts(server);
        const meta = await person.caller.secrets.create({
          workspaceId: busyWorkspace,
          credentialType: 'slackBotToken',
          name: `During rotation ${step}`,
          data: { token: `xoxb-fake-during-${step}` },
        });
        expected.set(meta.id, {
          workspaceId: busyWorkspace,
          credentialType: 'slackBotToken',
          nodeType: 'slack',
          data: { token: `xoxb-fake-during-${step}` },
        });
      },
    });
    // The busy user's workspace was created with the new key already: nothing to do there.
    expect(report.rewrapped).toBe(workspaceIds.length);
    expect(report.failed).toEqual([]);
    await expectEverySecretDecrypts(await services(providerFor(newKey)));
  });

  it('resumes after being stopped between workspaces: every row is old or new, and a rerun finishes', async () => {
    const both = providerFor(newKey, oldKey);
    for (const stopAfter of [1, 2]) {
      let handled = 0;
      const stopped = await rewrapDataKeys(ownerOf(database), both, {
        afterWorkspace() {
          handled += 1;
          if (handled === stopAfter) throw new Error('killed');
        },
      }).catch((e: unknown) => e);
      expect((stopped as Error).message).toBe('killed');
      const ids = (await keyRows(ownerOf(database))).map((r) => r.master_key_id);
      expect(ids.every((id) => id === oldKey.id || id === newKey.id)).toBe(true);
      // Mid-rotation, a server holding both keys decrypts everything.
      await expectEverySecretDecrypts(await services(both));
    }
    const finish = await rewrapDataKeys(ownerOf(database), both);
    expect(finish.rewrapped).toBe(workspaceIds.length - 3);
    expect(finish.alreadyCurrent).toBe(3);
    expect(finish.masterKeyIdsInUse).toEqual([newKey.id]);
    await expectEverySecretDecrypts(await services(providerFor(newKey)));
  });

  it('re-wraps a workspace all or nothing: a failure on its second data key leaves both keys as they were', async () => {
    const both = providerFor(newKey, oldKey);
    const target = workspaceIds[2] as string;
    // A second data-key version (wrapped with the old key, as a server on the old key would have done).
    await addDataKeyVersion(ownerOf(database), providerFor(oldKey), target);
    let wraps = 0;
    const flaky: KeyProvider = {
      activeKeyId: both.activeKeyId,
      knows: (id) => both.knows(id),
      unwrapDataKey: (...args) => both.unwrapDataKey(...args),
      async wrapDataKey(dataKey, workspaceId) {
        if (workspaceId === target && ++wraps === 2) throw new Error('the process died here');
        return both.wrapDataKey(dataKey, workspaceId);
      },
    };
    const report = await rewrapDataKeys(ownerOf(database), flaky);
    expect(report.failed).toEqual([{ workspaceId: target, reason: 'unexpected Error' }]);
    expect(report.rewrapped).toBe(workspaceIds.length - 1);
    const targetRows = (await keyRows(ownerOf(database))).filter((r) => r.workspace_id === target);
    expect(targetRows.map((r) => r.master_key_id)).toEqual([oldKey.id, oldKey.id]);
    expect(report.masterKeyIdsInUse).toEqual([newKey.id, oldKey.id].sort());

    const rerun = await rewrapDataKeys(ownerOf(database), both);
    expect(rerun).toMatchObject({ rewrapped: 1, dataKeysRewrapped: 2, failed: [] });
    await expectEverySecretDecrypts(await services(providerFor(newKey)));
  });

  it('reports a damaged wrapped key as failed and re-wraps the others', async () => {
    const damaged = workspaceIds[1] as string;
    const row = (await keyRows(ownerOf(database))).find((r) => r.workspace_id === damaged);
    const bytes = Buffer.from(row?.wrapped_key as Uint8Array);
    bytes[20] = (bytes[20] as number) ^ 0xff;
    await ownerOf(database)
      .updateTable('workspace_keys')
      .set({ wrapped_key: bytes })
      .where('workspace_id', '=', damaged)
      .execute();
    const report = await rewrapDataKeys(ownerOf(database), providerFor(newKey, oldKey));
    expect(report.failed).toHaveLength(1);
    expect(report.failed[0]?.workspaceId).toBe(damaged);
    expect(report.failed[0]?.reason).toMatch(/could not be unwrapped/);
    expect(report.rewrapped).toBe(workspaceIds.length - 1);
  });

  it('refuses to start while a data key is wrapped with a key it does not hold, and writes nothing', async () => {
    const before = await keyRows(ownerOf(database));
    const error = await rewrapDataKeys(ownerOf(database), providerFor(newKey)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KeyRotationError);
    expect((error as Error).message).toContain(oldKey.id);
    expect((error as Error).message).toMatch(/LATCHKEY_PREVIOUS_MASTER_KEYS/);
    expect(await keyRows(ownerOf(database))).toEqual(before);
  });

  it('keys status counts the master key ids in use and the secrets on older data keys', async () => {
    const both = providerFor(newKey, oldKey);
    await addDataKeyVersion(ownerOf(database), both, workspaceIds[0] as string);
    const status = await keyStatus(ownerOf(database), both);
    expect(status).toMatchObject({
      activeKeyId: newKey.id,
      workspaces: workspaceIds.length,
      dataKeys: workspaceIds.length + 1,
      secrets: expected.size,
      secretsOnOlderDataKeys: Object.keys(NODE_TYPE).length,
      workspacesWithSeveralDataKeys: 1,
    });
    expect(status.masterKeys).toEqual([
      { id: newKey.id, loaded: 'active', workspaces: 1, dataKeys: 1 },
      { id: oldKey.id, loaded: 'previous', workspaces: workspaceIds.length, dataKeys: workspaceIds.length },
    ]);
    const stranger = testMasterKey();
    const missing = await keyStatus(ownerOf(database), providerFor(stranger));
    expect(missing.masterKeys.find((k) => k.id === oldKey.id)?.loaded).toBe('missing');
  });
});

describe('data-key rotation (keys rotate-data-keys)', () => {
  it('adds a version that new and replaced secrets use, and re-encrypts the older secrets with it', async () => {
    const provider = providerFor(oldKey);
    const svc = await services(provider);
    const target = workspaceIds[0] as string;
    const before = await secretRows(ownerOf(database));
    const { version } = await addDataKeyVersion(ownerOf(database), provider, target);
    expect(version).toBe(2);
    const audit = await ownerOf(database)
      .selectFrom('audit_events')
      .select(['action', 'actor_id', 'details'])
      .where('workspace_id', '=', target)
      .where('action', '=', 'workspace.data_key_rotated')
      .execute();
    expect(audit).toEqual([
      {
        action: 'workspace.data_key_rotated',
        actor_id: null,
        details: { version: 2, masterKeyId: oldKey.id },
      },
    ]);

    // New secrets use the newest version at once.
    const owner = await ownerOf(database)
      .selectFrom('memberships')
      .select('user_id')
      .where('workspace_id', '=', target)
      .executeTakeFirstOrThrow();
    const created = await createAs(svc, owner.user_id, target, 'After data-key rotation');
    expect(created.key_version).toBe(2);

    const report = await reencryptSecrets(ownerOf(database), svc.keys, target, { batchSize: 3 });
    expect(report).toEqual({
      workspaceId: target,
      version: 2,
      reencrypted: Object.keys(NODE_TYPE).length,
      upgraded: 0,
      failed: [],
    });
    const after = await secretRows(ownerOf(database));
    for (const row of after) {
      const old = before.find((b) => b.id === row.id);
      if (row.workspace_id === target) {
        expect(row.key_version).toBe(2);
        if (old) {
          expect(Buffer.compare(row.ciphertext, old.ciphertext)).not.toBe(0);
          expect(row.updated_at).toEqual(old.updated_at); // the value did not change
        }
      } else {
        expect(row).toEqual(old); // other workspaces untouched
      }
    }
    await expectEverySecretDecrypts(await services(provider));
    // Nothing left: a rerun re-encrypts nothing.
    expect((await reencryptSecrets(ownerOf(database), svc.keys, target)).reencrypted).toBe(0);
  });

  it('resumes after being stopped between batches, and keeps a value replaced while it ran', async () => {
    const provider = providerFor(oldKey);
    const svc = await services(provider);
    const target = workspaceIds[3] as string;
    await addDataKeyVersion(ownerOf(database), provider, target);
    const stopped = await reencryptSecrets(ownerOf(database), svc.keys, target, {
      batchSize: 2,
      afterBatch() {
        throw new Error('killed');
      },
    }).catch((e: unknown) => e);
    expect((stopped as Error).message).toBe('killed');
    const versions = (await secretRows(ownerOf(database)))
      .filter((r) => r.workspace_id === target)
      .map((r) => r.key_version)
      .sort();
    expect(versions).toEqual([1, 1, 2, 2]);
    await expectEverySecretDecrypts(await services(provider));

    // A replace between two batches: its new value is what ends up re-encrypted.
    const pending = (await secretRows(ownerOf(database))).find(
      (r) => r.workspace_id === target && r.key_version === 1,
    );
    const info = expected.get(pending?.id as string);
    const owner = await ownerOf(database)
      .selectFrom('memberships')
      .select('user_id')
      .where('workspace_id', '=', target)
      .executeTakeFirstOrThrow();
    let replaced = false;
    const finish = await reencryptSecrets(ownerOf(database), svc.keys, target, {
      batchSize: 1,
      async afterBatch() {
        if (replaced || !info) return;
        replaced = true;
        const data = freshFakeData()[info.credentialType] as Record<string, string>;
        const { caller, session } = clientFor(svc);
        session.token = await sessionFor(svc, owner.user_id);
        await caller.secrets.replace({ workspaceId: target, secretId: pending?.id as string, data });
        info.data = data;
      },
    });
    expect(finish.failed).toEqual([]);
    expect(replaced).toBe(true);
    expect(
      (await secretRows(ownerOf(database)))
        .filter((r) => r.workspace_id === target)
        .every((r) => r.key_version === 2),
    ).toBe(true);
    await expectEverySecretDecrypts(await services(provider));
  });
});

/** A session token for an existing user (inserted directly: the test acts as that user). */
async function sessionFor(svc: Services, userId: string): Promise<string> {
  const token = randomBytes(32).toString('base64url');
  await ownerDb(svc)
    .insertInto('sessions')
    .values({ token_hash: hashToken(token), user_id: userId, expires_at: new Date(Date.now() + 3600_000) })
    .execute();
  return token;
}

/** Creates a secret through the API as `userId`, and returns its stored row. */
async function createAs(svc: Services, userId: string, workspaceId: string, name: string) {
  const { caller, session } = clientFor(svc);
  session.token = await sessionFor(svc, userId);
  const data = { token: `xoxb-fake-${randomBytes(4).toString('hex')}` };
  const meta = await caller.secrets.create({ workspaceId, credentialType: 'slackBotToken', name, data });
  expected.set(meta.id, { workspaceId, credentialType: 'slackBotToken', nodeType: 'slack', data });
  return ownerDb(svc)
    .selectFrom('secrets')
    .select(['id', 'key_version'])
    .where('id', '=', meta.id)
    .executeTakeFirstOrThrow();
}
