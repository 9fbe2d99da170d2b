import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DbScope, withDbScope } from '../db/scope.js';
import { resolveNodeCredential } from '../runner/resolve-credential.js';
import { deleteSecret, secretUsage } from '../secrets/deletion.js';
import { listSecrets, selectableSecrets } from '../secrets/list.js';
import { createSecret } from '../secrets/write.js';
import { joinAs, rejection } from '../testing/fixtures.js';
import {
  createTestApp,
  FAKE_DATA,
  signedInUser,
  type TestApp,
  teamWorkspace,
  testBackend,
} from '../testing/harness.js';
import { removeMember } from '../workspaces/workspaces.js';

/**
 * Round trips are counted, not timed: every SQL statement the database receives while one operation runs is
 * recorded through `openDatabase({ onQuery })`. Transaction control (BEGIN/COMMIT/ROLLBACK/SAVEPOINT) is counted
 * apart from the statements that do the work; the limits below are on the work statements AND on the total.
 * An N+1 (a statement per secret, per node, per workflow) makes the counts grow with the data and fails here.
 */

/** Transaction control, and the row-level-security scope statement (db/scope.ts) that comes with it. */
const CONTROL =
  /^\s*(begin|commit|rollback|savepoint|release|start transaction|select set_config\('latchkey\.)/i;

interface Counted<T> {
  result: T;
  /** Statements that read or write data. */
  work: number;
  /** BEGIN/COMMIT/ROLLBACK/SAVEPOINT. */
  control: number;
  statements: string[];
}

let recording: string[] | null = null;

/**
 * One statement does the work; the only other one allowed is the scope statement that puts the connection in
 * the request's scope (db/scope.ts) when its previous statement had another scope.
 */
function expectOneStatement(counted: Counted<unknown>): void {
  expect(counted.work).toBe(1);
  expect(counted.control).toBeLessThanOrEqual(1);
  expect(counted.statements.filter((s) => /^\s*(begin|commit)/i.test(s))).toEqual([]);
}
let app: TestApp;

/**
 * Counts the statements of `fn` run as a request runs it: scoped (db/scope.ts) to the caller and the workspace
 * its input names, as the tRPC middleware does — so the scope's own statement is counted too.
 */
async function count<T>(scope: DbScope, fn: () => Promise<T>): Promise<Counted<T>> {
  const statements: string[] = [];
  recording = statements;
  let result: T;
  try {
    result = await withDbScope(scope, fn);
  } finally {
    recording = null;
  }
  const control = statements.filter((s) => CONTROL.test(s)).length;
  if (process.env.ROUND_TRIPS_VERBOSE) {
    console.log(`${statements.length - control} work + ${control} control:\n  ${statements.join('\n  ')}`);
  }
  return { result, work: statements.length - control, control, statements };
}

/** Like `count`, for an operation that must fail (its statements are counted all the same). */
async function countFailure(scope: DbScope, fn: () => Promise<unknown>): Promise<Counted<unknown>> {
  return count(scope, async () => {
    try {
      await fn();
    } catch (error) {
      return error;
    }
    throw new Error('expected the operation to fail');
  });
}

beforeAll(async () => {
  app = await createTestApp(testBackend(), {
    onQuery: (sql) => {
      recording?.push(sql);
    },
  });
});
afterAll(() => app.close());

const sendgrid = (name: string) => ({
  credentialType: 'sendgridApiKey',
  name,
  data: FAKE_DATA.sendgridApiKey,
});

describe(`statements per operation (${testBackend()})`, () => {
  it('resolving a node’s credential is ONE statement', async () => {
    const owner = await signedInUser(app.svc);
    const workspaceId = (await owner.caller.auth.me())?.workspaces[0]?.id as string;
    const secret = await owner.caller.secrets.create({ workspaceId, ...sendgrid('Resolve me') });
    const integration = app.svc.registry.integrationForNodeType('sendgrid');
    if (!integration) throw new Error('sendgrid is not installed');
    const node = { id: 'n1', name: 'Send', nodeType: 'sendgrid', secretId: secret.id, lostSecretName: null };
    const first = await count({ workspaceId, userId: owner.user.id }, () =>
      resolveNodeCredential(app.svc, workspaceId, node, integration),
    );
    expect(first.result.secretId).toBe(secret.id);
    expect(first.work).toBe(1);
    expect(first.control).toBe(0);
    // The unwrapped data key is cached; the secret itself is read afresh every time (still one statement).
    const again = await count({ workspaceId, userId: owner.user.id }, () =>
      resolveNodeCredential(app.svc, workspaceId, node, integration),
    );
    expectOneStatement(again);
  });

  it('creating a secret is at most 3 statements in one transaction, the write itself one statement', async () => {
    const owner = await signedInUser(app.svc);
    const workspaceId = (await owner.caller.auth.me())?.workspaces[0]?.id as string;
    const actor = { userId: owner.user.id };
    const created = await count({ workspaceId, userId: actor.userId }, () =>
      createSecret(app.svc, actor, { workspaceId, ...sendgrid('Created') }),
    );
    expect(created.result.name).toBe('Created');
    expect(created.result.createdBy.id).toBe(owner.user.id);
    // The data key read and the reservation of a block of encryption counts (the first create of the workspace on
    // this instance), the write; no transaction; at most one more to put the connection in the request's scope.
    expect(created.work).toBeLessThanOrEqual(3);
    expect(created.statements.filter((s) => /update workspace_keys/i.test(s))).toHaveLength(1);
    expect(created.control).toBeLessThanOrEqual(1);
    expect(created.statements.filter((s) => /^\s*(begin|commit)/i.test(s))).toEqual([]);
    // Exactly one statement writes (secret + audit event together), so there is nothing to roll back halfway.
    expect(created.statements.filter((s) => /insert into/i.test(s))).toHaveLength(1);

    // With the key and a count in memory, a create is its one write: the key row is not touched.
    const next = await count({ workspaceId, userId: actor.userId }, () =>
      createSecret(app.svc, actor, { workspaceId, ...sendgrid('Next') }),
    );
    expect(next.work).toBe(1);
    // Its only mention of the key table is the newest-version check (`keyGuard`), a read.
    const write = next.statements.join('\n');
    expect(write.match(/workspace_keys/gi)).toEqual(['workspace_keys']);
    expect(write).toMatch(/select max\(n\.version\) from workspace_keys n where/i);

    // The refusals cost no more.
    const duplicate = await countFailure({ workspaceId, userId: actor.userId }, () =>
      createSecret(app.svc, actor, { workspaceId, ...sendgrid('Created') }),
    );
    expect(duplicate.work).toBeLessThanOrEqual(2);
    expect(duplicate.control).toBeLessThanOrEqual(1);
    const stranger = await signedInUser(app.svc);
    const notMember = await countFailure({ workspaceId, userId: stranger.user.id }, () =>
      createSecret(app.svc, { userId: stranger.user.id }, { workspaceId, ...sendgrid('Nope') }),
    );
    expect((notMember.result as Error).message).toBe('Workspace not found');
    expect(notMember.work).toBe(1);
    expect(notMember.control).toBeLessThanOrEqual(1);
  });

  it('secrets.list is ONE statement (membership and role included), whatever the caller and page', async () => {
    const { workspaceId, owner, member } = await teamWorkspace(app.svc);
    for (let i = 0; i < 5; i++) await member.caller.secrets.create({ workspaceId, ...sendgrid(`M${i}`) });
    for (let i = 0; i < 5; i++) await owner.caller.secrets.create({ workspaceId, ...sendgrid(`O${i}`) });

    const ownerPage = await count({ workspaceId, userId: owner.user.id }, () =>
      listSecrets(app.svc, { userId: owner.user.id }, { workspaceId, limit: 3 }),
    );
    expect(ownerPage.result.items).toHaveLength(3);
    expectOneStatement(ownerPage);
    const cursor = ownerPage.result.nextCursor as string;
    const next = await count({ workspaceId, userId: owner.user.id }, () =>
      listSecrets(app.svc, { userId: owner.user.id }, { workspaceId, limit: 3, cursor }),
    );
    expect(next.result.items).toHaveLength(3);
    expectOneStatement(next);

    // A member sees only their own, in one statement too.
    const memberPage = await count({ workspaceId, userId: member.user.id }, () =>
      listSecrets(app.svc, { userId: member.user.id }, { workspaceId, limit: 50 }),
    );
    expect(memberPage.result.items.map((s) => s.name).sort()).toEqual(['M0', 'M1', 'M2', 'M3', 'M4']);
    expectOneStatement(memberPage);

    // An empty page is an empty page; a workspace one does not belong to is "not found": one statement each.
    const empty = await count({ workspaceId, userId: owner.user.id }, () =>
      listSecrets(app.svc, { userId: owner.user.id }, { workspaceId, search: 'no such name' }),
    );
    expect(empty.result).toEqual({ items: [], nextCursor: null });
    expectOneStatement(empty);
    const stranger = await signedInUser(app.svc);
    const notMember = await countFailure({ workspaceId, userId: stranger.user.id }, () =>
      listSecrets(app.svc, { userId: stranger.user.id }, { workspaceId }),
    );
    expect((notMember.result as Error).message).toBe('Workspace not found');
    expectOneStatement(notMember);
  });

  it('secrets.selectable is ONE statement (membership included)', async () => {
    const { workspaceId, owner, member } = await teamWorkspace(app.svc);
    for (let i = 0; i < 4; i++) await owner.caller.secrets.create({ workspaceId, ...sendgrid(`S${i}`) });
    const page = await count({ workspaceId, userId: member.user.id }, () =>
      selectableSecrets(app.svc, { userId: member.user.id }, { workspaceId, nodeType: 'sendgrid' }),
    );
    expect(page.result.map((s) => s.name)).toEqual(['S0', 'S1', 'S2', 'S3']);
    expectOneStatement(page);
    const none = await count({ workspaceId, userId: member.user.id }, () =>
      selectableSecrets(app.svc, { userId: member.user.id }, { workspaceId, nodeType: 'slack' }),
    );
    expect(none.result).toEqual([]);
    expectOneStatement(none);
    const stranger = await signedInUser(app.svc);
    const notMember = await countFailure({ workspaceId, userId: stranger.user.id }, () =>
      selectableSecrets(app.svc, { userId: stranger.user.id }, { workspaceId, nodeType: 'sendgrid' }),
    );
    expect((notMember.result as Error).message).toBe('Workspace not found');
    expectOneStatement(notMember);
  });

  it('deleting a secret and reading its usage cost a constant number of statements', async () => {
    const { workspaceId, owner } = await teamWorkspace(app.svc);
    const actor = { userId: owner.user.id };
    const secret = await owner.caller.secrets.create({ workspaceId, ...sendgrid('Doomed') });
    const workflow = await owner.caller.workflows.create({ workspaceId, name: 'Uses it' });
    for (let i = 0; i < 5; i++) {
      const node = await owner.caller.workflows.addNode({
        workflowId: workflow.id,
        name: `Send ${i}`,
        nodeType: 'sendgrid',
        params: {},
      });
      await owner.caller.workflows.updateNode({
        workflowId: workflow.id,
        nodeId: node.id,
        secretId: secret.id,
      });
    }
    const usage = await count({ workspaceId, userId: actor.userId }, () =>
      secretUsage(app.svc, actor, { workspaceId, secretId: secret.id }),
    );
    expect(usage.result).toHaveLength(5);
    expect(usage.work).toBeLessThanOrEqual(2);
    expect(usage.control).toBeLessThanOrEqual(1);
    const deleted = await count({ workspaceId, userId: actor.userId }, () =>
      deleteSecret(app.svc, actor, { workspaceId, secretId: secret.id }),
    );
    expect(deleted.result.affectedNodes).toHaveLength(5);
    expect(deleted.work).toBeLessThanOrEqual(2);
    expect(deleted.control).toBeLessThanOrEqual(1);
  });

  it('removing a member costs the same statements with 1 secret and with 50 secrets used by 50 nodes', async () => {
    async function removal(secrets: number) {
      const { workspaceId, owner } = await teamWorkspace(app.svc);
      const leaving = await joinAs(app.svc, owner, workspaceId, 'member', `Leaving ${secrets}`);
      const ids: string[] = [];
      for (let i = 0; i < secrets; i++) {
        ids.push((await leaving.caller.secrets.create({ workspaceId, ...sendgrid(`Key ${i}`) })).id);
      }
      // The nodes are spread over several workflows, so a per-workflow lookup would show as well.
      const workflows = await Promise.all(
        [0, 1, 2, 3, 4].map((w) => owner.caller.workflows.create({ workspaceId, name: `Flow ${w}` })),
      );
      for (let i = 0; i < secrets; i++) {
        const workflowId = (workflows[i % workflows.length] as { id: string }).id;
        const node = await owner.caller.workflows.addNode({
          workflowId,
          name: `Send ${i}`,
          nodeType: 'sendgrid',
          params: {},
        });
        await owner.caller.workflows.updateNode({ workflowId, nodeId: node.id, secretId: ids[i] as string });
      }
      const counted = await count({ workspaceId, userId: owner.user.id }, () =>
        removeMember(app.svc, { userId: owner.user.id }, { workspaceId, userId: leaving.user.id }),
      );
      expect(counted.result.deletedSecrets).toBe(secrets);
      expect(counted.result.affectedNodes).toHaveLength(secrets);
      expect(new Set(counted.result.affectedNodes.map((n) => n.workflowName)).size).toBe(
        Math.min(secrets, 5),
      );
      return counted;
    }
    const one = await removal(1);
    const fifty = await removal(50);
    expect(fifty.work).toBe(one.work);
    expect(fifty.control).toBe(one.control);
    // One transaction: BEGIN (with the request's scope, one round trip) and COMMIT.
    expect(one.control).toBe(2);
    expect(one.work).toBeLessThanOrEqual(5);
  });

  it('a caller that is not a member learns nothing more, in no more statements', async () => {
    const { workspaceId } = await teamWorkspace(app.svc);
    const stranger = await signedInUser(app.svc);
    const error = await rejection(stranger.caller.secrets.list({ workspaceId }));
    expect(error.code).toBe('NOT_FOUND');
  });
});
