import { createSecretKey, type KeyObject, randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  decryptSecretFields,
  encryptSecretFields,
  generateDataKey,
  LocalKeyProvider,
  type MasterKey,
} from '../crypto/index.js';
import type { SecretMeta } from '../secrets/meta.js';
import {
  type AdminDatabase,
  builtEntry,
  type ChildDatabase,
  type ChildRun,
  childEnv,
  dataOf,
  masterKeyBase64,
  newChildDatabase,
  openAdminDatabase,
  RemoteClient,
  type ServerProcess,
  signUpRemote,
  spawnNode,
  startServerProcess,
  waitForSessionsToEnd,
} from '../testing/fault-helpers.js';
import { FAKE_DATA, testBackend, testMasterKey } from '../testing/harness.js';

// Issue 6, item 12: killing the server process (SIGKILL) in the middle of a member removal, a replace and a
// master-key rotation leaves the database in the before or the after state, never in between.
//
// The BUILT server (dist/main.js) and CLI (dist/cli.js) run as real child processes and are SIGKILLed while
// their work is running in PostgreSQL; the database is then read directly. PostgreSQL only: vitest.config.ts
// leaves src/faults out of the pglite project, because PGlite is one process per data directory (no second
// process can open the store, watch the first one's transaction, or outlive it).

const run = randomBytes(4).toString('hex');
const children: ChildRun[] = [];
const admins: AdminDatabase[] = [];

/** A schema of its own for one group of tests, and the tests' own (superuser) connection to it. */
async function freshDatabase(): Promise<{ target: ChildDatabase; admin: AdminDatabase }> {
  if (testBackend() !== 'postgres') {
    throw new Error('src/faults runs in the postgres vitest project only (LATCHKEY_TEST_BACKEND=postgres)');
  }
  const target = newChildDatabase(process.env.TEST_DATABASE_URL);
  const admin = await openAdminDatabase(target);
  admins.push(admin);
  return { target, admin };
}

async function startServer(target: ChildDatabase, appName: string, key: MasterKey): Promise<ServerProcess> {
  const server = await startServerProcess(await childEnv(target, appName, { active: key }));
  children.push(server);
  return server;
}

/** Rows in chunks (a statement takes at most 65535 parameters). */
async function insertChunked<T>(rows: T[], insert: (chunk: T[]) => Promise<unknown>, size = 1000) {
  for (let i = 0; i < rows.length; i += size) await insert(rows.slice(i, i + size));
}

/** A workspace's newest data key, unwrapped here with the master key (for writing valid rows in bulk). */
async function activeDataKey(admin: AdminDatabase, key: MasterKey, workspaceId: string) {
  const row = await admin.db
    .selectFrom('workspace_keys')
    .select(['version', 'master_key_id', 'wrapped_key'])
    .where('workspace_id', '=', workspaceId)
    .orderBy('version', 'desc')
    .executeTakeFirstOrThrow();
  const provider = new LocalKeyProvider({ active: key, all: [key] });
  return {
    version: row.version,
    key: await provider.unwrapDataKey(row.master_key_id, Buffer.from(row.wrapped_key), workspaceId),
  };
}

/** Every stored secret decrypted with `provider` (fresh unwraps): secret id → its fields. */
async function decryptAll(admin: AdminDatabase, provider: LocalKeyProvider, secretIds?: string[]) {
  let query = admin.db
    .selectFrom('secrets as s')
    .innerJoin('workspace_keys as k', (join) =>
      join.onRef('k.workspace_id', '=', 's.workspace_id').onRef('k.version', '=', 's.key_version'),
    )
    .select([
      's.id',
      's.workspace_id',
      's.credential_type',
      's.public_fields',
      's.ciphertext',
      'k.master_key_id',
      'k.wrapped_key',
    ]);
  if (secretIds) query = query.where('s.id', 'in', secretIds);
  const rows = await query.execute();
  const keys = new Map<string, KeyObject>();
  const result = new Map<string, Record<string, string>>();
  for (const row of rows) {
    const cacheKey = `${row.workspace_id}:${row.master_key_id}:${Buffer.from(row.wrapped_key).toString('base64')}`;
    let dataKey = keys.get(cacheKey);
    if (!dataKey) {
      dataKey = await provider.unwrapDataKey(
        row.master_key_id,
        Buffer.from(row.wrapped_key),
        row.workspace_id,
      );
      keys.set(cacheKey, dataKey);
    }
    const binding = {
      workspaceId: row.workspace_id,
      secretId: row.id,
      credentialType: row.credential_type,
      publicFields: row.public_fields,
    };
    result.set(row.id, decryptSecretFields(dataKey, binding, Buffer.from(row.ciphertext)));
  }
  return result;
}

beforeAll(() => {
  // Fail (never skip) before any seeding when the build is missing.
  builtEntry('main.js');
  builtEntry('cli.js');
});

afterAll(async () => {
  for (const child of children) await child.kill();
  for (const admin of admins) await admin.drop();
});

describe('SIGKILL during a member removal (one transaction: membership, secrets, nodes, audit)', () => {
  // Big enough that the one set-based removal statement runs for a while, so the kill lands inside it.
  const SECRETS = 4000;
  const appName = `latchkey-kill-removal-${run}`;
  const key = testMasterKey();
  let target: ChildDatabase;
  let admin: AdminDatabase;
  let server: ServerProcess;
  let ownerSession: string;
  let workspaceId: string;
  let memberId: string;

  beforeAll(async () => {
    ({ target, admin } = await freshDatabase());
    server = await startServer(target, appName, key);
    // A team workspace, built over HTTP: an owner, and a member who creates one secret used by one node…
    const owner = await signUpRemote(server.url, 'Olivia Owner');
    const member = await signUpRemote(server.url, 'Mia Member');
    ownerSession = owner.client.sessionToken as string;
    memberId = member.userId;
    workspaceId = dataOf<{ id: string }>(
      await owner.client.mutate('workspaces.create', { name: 'Acme', plan: 'team' }),
    ).id;
    const invite = dataOf<{ token: string }>(
      await owner.client.mutate('workspaces.invite', { workspaceId, email: member.email, role: 'member' }),
    );
    dataOf(await member.client.mutate('workspaces.acceptInvite', { token: invite.token }));
    const first = dataOf<SecretMeta>(
      await member.client.mutate('secrets.create', {
        workspaceId,
        credentialType: 'httpBearerToken',
        name: 'Bulk bearer 0',
        data: FAKE_DATA.httpBearerToken,
      }),
    );
    const workflow = dataOf<{ id: string }>(
      await member.client.mutate('workflows.create', { workspaceId, name: 'Uses every bulk secret' }),
    );
    const node = dataOf<{ id: string }>(
      await member.client.mutate('workflows.addNode', {
        workflowId: workflow.id,
        name: 'Node 0',
        nodeType: first.nodeType,
        params: {},
      }),
    );
    dataOf(
      await member.client.mutate('workflows.updateNode', {
        workflowId: workflow.id,
        nodeId: node.id,
        secretId: first.id,
      }),
    );
    // …then thousands more like them, in bulk: rows as the product writes them (each ciphertext made with the
    // workspace data key and bound to its row's id), far faster than one request each.
    const template = await admin.db
      .selectFrom('workflow_nodes')
      .select(['params', 'position'])
      .where('id', '=', node.id)
      .executeTakeFirstOrThrow();
    const dataKey = await activeDataKey(admin, key, workspaceId);
    const secrets = [];
    const nodes = [];
    for (let i = 1; i < SECRETS; i++) {
      const id = randomUUID();
      secrets.push({
        id,
        workspace_id: workspaceId,
        name: `Bulk bearer ${i}`,
        integration_id: first.integrationId,
        node_type: first.nodeType,
        credential_type: first.credentialType,
        public_fields: JSON.stringify(first.publicFields),
        ciphertext: encryptSecretFields(
          dataKey.key,
          dataKey.version,
          {
            workspaceId,
            secretId: id,
            credentialType: first.credentialType,
            publicFields: first.publicFields,
          },
          { token: `fake-bulk-token-${i}` },
        ),
        key_version: dataKey.version,
        created_by: memberId,
        updated_at: new Date(),
      });
      nodes.push({
        id: randomUUID(),
        workflow_id: workflow.id,
        workspace_id: workspaceId,
        name: `Node ${i}`,
        node_type: first.nodeType,
        params: JSON.stringify(template.params),
        secret_id: id,
        lost_secret_name: null,
        position: template.position + i,
        updated_at: new Date(),
      });
    }
    await insertChunked(secrets, (chunk) => admin.db.insertInto('secrets').values(chunk).execute());
    await insertChunked(nodes, (chunk) => admin.db.insertInto('workflow_nodes').values(chunk).execute());
    // Fresh statistics for this schema's tables only (a bare ANALYZE would walk every schema of the shared server).
    await admin.observer.query('analyze secrets, workflow_nodes');
  }, 60_000);

  /** The removal's observable state: membership, the member's secrets, the nodes that used them, the audit. */
  async function removalState() {
    const { rows } = await admin.observer.query(
      `select
         exists (select 1 from memberships where workspace_id = $1 and user_id = $2) as member,
         (select count(*)::int from secrets where workspace_id = $1 and created_by = $2) as secrets,
         (select count(*)::int from workflow_nodes where workspace_id = $1 and secret_id is not null) as nodes_using,
         (select count(*)::int from workflow_nodes where workspace_id = $1 and lost_secret_name is not null)
           as nodes_flagged,
         (select count(*)::int from workflow_nodes
           where workspace_id = $1 and secret_id is null
             and lost_secret_name = replace(name, 'Node ', 'Bulk bearer '))
           as flagged_with_their_secret_name,
         (select count(*)::int from audit_events
           where workspace_id = $1 and action = 'member.removed' and target_id = $2) as audit_events`,
      [workspaceId, memberId],
    );
    return rows[0];
  }

  const BEFORE = {
    member: true,
    secrets: SECRETS,
    nodes_using: SECRETS,
    nodes_flagged: 0,
    flagged_with_their_secret_name: 0,
    audit_events: 0,
  };
  const AFTER = {
    member: false,
    secrets: 0,
    nodes_using: 0,
    nodes_flagged: SECRETS,
    flagged_with_their_secret_name: SECRETS,
    audit_events: 1,
  };

  it('leaves all of it or none of it, and a new server process then completes the removal', async () => {
    expect(await removalState()).toEqual(BEFORE);
    const owner = new RemoteClient(server.url, ownerSession);
    let answered = false;
    const request = owner
      .mutate('workspaces.removeMember', { workspaceId, userId: memberId }, 30_000)
      .finally(() => {
        answered = true;
      });
    request.catch(() => {});
    // Watch PostgreSQL until the removal statement itself is executing inside its transaction, then kill.
    type Seen = { pid: number; in_transaction: boolean; running_ms: number };
    let seen: Seen | undefined;
    const deadline = Date.now() + 20_000;
    while (!seen && !answered && Date.now() < deadline) {
      const { rows } = await admin.observer.query<Seen>(
        `select pid, xact_start is not null as in_transaction,
                extract(epoch from clock_timestamp() - query_start) * 1000 as running_ms
         from pg_stat_activity
         where application_name = $1 and state = 'active' and query ilike '%delete from memberships%'`,
        [appName],
      );
      seen = rows[0];
    }
    const answeredBeforeKill = answered;
    const exit = await server.kill();
    console.log(
      `[fault] removal: SIGKILL when the removal statement had run ${Number(seen?.running_ms ?? Number.NaN).toFixed(1)} ms (${SECRETS} secrets and nodes)`,
    );

    // The kill landed in flight: the statement was seen executing inside its transaction, with no answer yet.
    expect(seen, 'the removal statement was never seen running').toBeDefined();
    expect(seen?.in_transaction).toBe(true);
    expect(answeredBeforeKill).toBe(false);
    expect(exit.signal).toBe('SIGKILL');
    await expect(request).rejects.toThrow();

    // PostgreSQL ends the dead client's session (rolling back what it had not committed) before we look.
    await waitForSessionsToEnd(admin.observer, appName);
    const state = await removalState();
    const outcome = JSON.stringify(state) === JSON.stringify(BEFORE) ? 'before' : 'after';
    console.log(`[fault] removal: the database is in the ${outcome} state`);
    expect([BEFORE, AFTER]).toContainEqual(state);

    // Nothing was left locked or half-done: a new server process removes the member (or finds them gone).
    const again = await startServer(target, `${appName}-again`, key);
    const retry = new RemoteClient(again.url, ownerSession);
    const started = Date.now();
    const answer = await retry.mutate('workspaces.removeMember', { workspaceId, userId: memberId }, 30_000);
    if (outcome === 'before') {
      expect(dataOf<{ deletedSecrets: number }>(answer).deletedSecrets).toBe(SECRETS);
      console.log(
        `[fault] removal: uninterrupted, the same removal took ${Date.now() - started} ms over HTTP`,
      );
    } else {
      expect(answer.status).toBe(404);
    }
    expect(await removalState()).toEqual(AFTER);
    await again.stop();
  }, 60_000);
});

describe('SIGKILL during a stream of in-place replaces (one statement: value and audit event)', () => {
  const TRIALS = 4;
  const key = testMasterKey();
  const provider = new LocalKeyProvider({ active: key, all: [key] });
  let target: ChildDatabase;
  let admin: AdminDatabase;
  let ownerSession: string;
  let workspaceId: string;
  let firstServer: ServerProcess;

  const tokenFor = (trial: number, k: number) => `fake-replace-token-${trial}-${k}`;

  beforeAll(async () => {
    ({ target, admin } = await freshDatabase());
    firstServer = await startServer(target, `latchkey-kill-replace-${run}-0`, key);
    const owner = await signUpRemote(firstServer.url, 'Rita Replacer');
    ownerSession = owner.client.sessionToken as string;
    workspaceId = owner.workspaceId;
  }, 60_000);

  /** The stored value of a secret (decrypted here) and how many replace events it has. */
  async function storedReplace(secretId: string) {
    const fields = (await decryptAll(admin, provider, [secretId])).get(secretId);
    const { rows } = await admin.observer.query<{ n: number }>(
      `select count(*)::int as n from audit_events where target_id = $1 and action = 'secret.replaced'`,
      [secretId],
    );
    return { token: fields?.token, replacedEvents: rows[0]?.n ?? -1 };
  }

  it('the stored value is always that of the last replace that has its audit event', async () => {
    const outcomes: string[] = [];
    let server = firstServer;
    for (let trial = 1; trial <= TRIALS; trial++) {
      const appName = `latchkey-kill-replace-${run}-${trial}`;
      if (trial > 1) server = await startServer(target, appName, key);
      const client = new RemoteClient(server.url, ownerSession);
      const secret = dataOf<SecretMeta>(
        await client.mutate('secrets.create', {
          workspaceId,
          credentialType: 'httpBearerToken',
          name: `Replaced under fire ${trial}`,
          data: { token: tokenFor(trial, 0), allowedDomains: 'api.example.test' },
        }),
      );
      // Replace k carries k in its value; each is sent as soon as the previous one was answered.
      let acknowledged = 0;
      let refused: string | undefined;
      const stream = (async () => {
        for (let k = 1; ; k++) {
          const answer = await client
            .mutate('secrets.replace', {
              workspaceId,
              secretId: secret.id,
              data: { token: tokenFor(trial, k), allowedDomains: 'api.example.test' },
            })
            .catch(() => undefined);
          if (!answer) return; // the server died under this request
          if (answer.status !== 200) {
            refused = `HTTP ${answer.status}`;
            return;
          }
          acknowledged = k;
        }
      })();
      // Kill at a random moment once the stream is flowing.
      while (acknowledged < 3 && !refused && server.alive()) await new Promise((r) => setTimeout(r, 2));
      await new Promise((r) => setTimeout(r, Math.random() * 250));
      const acknowledgedAtKill = acknowledged;
      const exit = await server.kill();
      await stream;

      expect(refused).toBeUndefined();
      expect(exit.signal).toBe('SIGKILL');
      // In flight: replaces had been answered and the stream was still going (it ends only when the server dies).
      expect(acknowledgedAtKill).toBeGreaterThanOrEqual(3);
      await waitForSessionsToEnd(admin.observer, appName);
      const stored = await storedReplace(secret.id);
      // k audit events ⇔ the value of replace k: never a value without its event, nor an event without its value…
      expect(stored.token).toBe(tokenFor(trial, stored.replacedEvents));
      // …and it is the last answered replace, or the one in flight when the process died (committed, unanswered).
      expect([acknowledgedAtKill, acknowledgedAtKill + 1]).toContain(stored.replacedEvents);
      outcomes.push(
        `${acknowledgedAtKill} answered, stored ${stored.replacedEvents === acknowledgedAtKill ? 'the last answered one' : 'the unanswered one in flight'}`,
      );
    }
    console.log(`[fault] replace: ${outcomes.join('; ')}`);
  }, 60_000);
});

describe('SIGKILL during `latchkey keys rotate` (master-key rotation, one workspace per transaction)', () => {
  const WORKSPACES = 2000;
  const appName = `latchkey-kill-rotate-${run}`;
  const oldKey = testMasterKey();
  const newKey = testMasterKey();
  let target: ChildDatabase;
  let admin: AdminDatabase;
  /** secret id → the (fake) token it must decrypt to. */
  const expected = new Map<string, string>();

  beforeAll(async () => {
    ({ target, admin } = await freshDatabase());
    // The server migrates the schema and signs someone up; then it stops (the CLI works on the database alone).
    const server = await startServer(target, `${appName}-server`, oldKey);
    const person = await signUpRemote(server.url, 'Kim Keyholder');
    await server.stop();
    // Thousands of workspaces with their data keys wrapped by the old key, every third with two versions, and
    // a secret under each version: valid rows (real wraps and envelopes), written in bulk.
    const oldProvider = new LocalKeyProvider({ active: oldKey, all: [oldKey] });
    const workspaces = [];
    const memberships = [];
    const keys = [];
    const secrets = [];
    for (let i = 0; i < WORKSPACES; i++) {
      const workspaceId = randomUUID();
      workspaces.push({ id: workspaceId, name: `Rotation ${i}`, plan: 'team' as const });
      memberships.push({ workspace_id: workspaceId, user_id: person.userId, role: 'owner' as const });
      for (let version = 1; version <= (i % 3 === 0 ? 2 : 1); version++) {
        const raw = generateDataKey();
        const { keyId, wrapped } = await oldProvider.wrapDataKey(raw, workspaceId);
        const dataKey = createSecretKey(raw);
        raw.fill(0);
        keys.push({ workspace_id: workspaceId, version, master_key_id: keyId, wrapped_key: wrapped });
        const secretId = randomUUID();
        const token = `fake-rotation-token-${i}-${version}`;
        expected.set(secretId, token);
        secrets.push({
          id: secretId,
          workspace_id: workspaceId,
          name: `Bearer v${version}`,
          integration_id: 'httpRequest',
          node_type: 'httpRequest',
          credential_type: 'httpBearerToken',
          public_fields: '{}',
          ciphertext: encryptSecretFields(
            dataKey,
            version,
            { workspaceId, secretId, credentialType: 'httpBearerToken', publicFields: {} },
            { token },
          ),
          key_version: version,
          created_by: person.userId,
          updated_at: new Date(),
        });
      }
    }
    await insertChunked(workspaces, (chunk) => admin.db.insertInto('workspaces').values(chunk).execute());
    await insertChunked(memberships, (chunk) => admin.db.insertInto('memberships').values(chunk).execute());
    await insertChunked(keys, (chunk) => admin.db.insertInto('workspace_keys').values(chunk).execute());
    await insertChunked(secrets, (chunk) => admin.db.insertInto('secrets').values(chunk).execute());
    await admin.observer.query('analyze workspaces, memberships, workspace_keys, secrets');
  }, 60_000);

  async function keyRows() {
    return admin.db.selectFrom('workspace_keys').select(['workspace_id', 'master_key_id']).execute();
  }

  /** Every secret decrypts with `provider` (fresh unwraps) to the value it was stored with. */
  async function expectEverySecretDecrypts(provider: LocalKeyProvider) {
    const decrypted = await decryptAll(admin, provider);
    expect(decrypted.size).toBe(expected.size);
    const wrong = [...expected].filter(([id, token]) => decrypted.get(id)?.token !== token).length;
    expect(wrong).toBe(0);
  }

  it('every data key is on the old or the new key, every secret still opens, and running it again finishes', async () => {
    const cli = builtEntry('cli.js');
    const env = await childEnv(target, appName, { active: newKey, previous: [oldKey] });
    const total = WORKSPACES + 1; // and the personal workspace of the person who made them
    // Kill somewhere between 10% and 60% of the way, as soon as the CLI has printed that much progress.
    const killAt = Math.ceil(total * (0.1 + Math.random() * 0.5));
    let printedDone = 0;
    let printedTotal = 0;
    let reported = false;
    let killing: Promise<unknown> | undefined;
    const rotation: ChildRun = spawnNode(cli, ['keys', 'rotate'], env, (line) => {
      const progress = /^\[(\d+)\/(\d+)\]/.exec(line);
      if (progress) {
        printedDone = Number(progress[1]);
        printedTotal = Number(progress[2]);
      }
      if (line.startsWith('Report:')) reported = true;
      if (!killing && printedDone >= killAt) killing = rotation.kill();
    });
    children.push(rotation);
    const exit = await rotation.exited;
    const doneAtKill = printedDone;
    console.log(`[fault] rotate: SIGKILL after the CLI printed [${doneAtKill}/${printedTotal}]`);

    // In flight: it had printed progress, not its report, and died of the kill.
    expect(exit.signal, rotation.lines.slice(-5).join('\n')).toBe('SIGKILL');
    expect(printedTotal).toBe(total);
    expect(doneAtKill).toBeGreaterThanOrEqual(killAt);
    expect(doneAtKill).toBeLessThan(total);
    expect(reported).toBe(false);
    await waitForSessionsToEnd(admin.observer, appName);

    const rows = await keyRows();
    const byWorkspace = new Map<string, Set<string>>();
    for (const row of rows) {
      byWorkspace.set(
        row.workspace_id,
        (byWorkspace.get(row.workspace_id) ?? new Set()).add(row.master_key_id),
      );
    }
    const onNew = [...byWorkspace.values()].filter((ids) => ids.has(newKey.id)).length;
    console.log(
      `[fault] rotate: ${onNew} of ${byWorkspace.size} workspaces were on the new key when it died`,
    );
    // Each data key is wrapped by the old or the new master key, nothing else…
    expect(new Set(rows.map((r) => r.master_key_id))).toEqual(new Set([oldKey.id, newKey.id]));
    // …a workspace's versions moved together (one transaction each); at least what it printed, not all.
    expect([...byWorkspace.values()].filter((ids) => ids.size !== 1)).toEqual([]);
    expect(onNew).toBeGreaterThanOrEqual(doneAtKill);
    expect(onNew).toBeLessThan(total);
    // A server holding both keys reads every secret.
    await expectEverySecretDecrypts(new LocalKeyProvider({ active: newKey, all: [newKey, oldKey] }));

    // Running it again finishes the rest and leaves every data key on the new key.
    const resumed = spawnNode(cli, ['keys', 'rotate'], env);
    children.push(resumed);
    const resumedExit = await resumed.exited;
    const out = resumed.lines.join('\n');
    expect(resumedExit.code, out.slice(-2000)).toBe(0);
    expect(out).toContain(`${total - onNew} workspaces to re-wrap`);
    expect(out).toMatch(/failed:\s+0/);
    expect(out).toContain(`master keys in use now:  ${newKey.id}`);
    for (const key of [oldKey, newKey]) expect(out).not.toContain(masterKeyBase64(key));
    expect(new Set((await keyRows()).map((r) => r.master_key_id))).toEqual(new Set([newKey.id]));
    await expectEverySecretDecrypts(new LocalKeyProvider({ active: newKey, all: [newKey] }));
  }, 60_000);
});
