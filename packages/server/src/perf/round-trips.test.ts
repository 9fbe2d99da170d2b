import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveNodeCredential } from '../runner/resolve-credential.js';
import {
  createSecret,
  deleteSecret,
  listSecrets,
  secretUsage,
  selectableSecrets,
} from '../secrets/secrets.js';
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

const CONTROL = /^\s*(begin|commit|rollback|savepoint|release|start transaction)\b/i;

interface Counted<T> {
  result: T;
  /** Statements that read or write data. */
  work: number;
  /** BEGIN/COMMIT/ROLLBACK/SAVEPOINT. */
  control: number;
  statements: string[];
}

let recording: string[] | null = null;
let app: TestApp;

async function count<T>(fn: () => Promise<T>): Promise<Counted<T>> {
  const statements: string[] = [];
  recording = statements;
  let result: T;
  try {
    result = await fn();
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
async function countFailure(fn: () => Promise<unknown>): Promise<Counted<unknown>> {
  return count(async () => {
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
    const first = await count(() => resolveNodeCredential(app.svc, workspaceId, node, integration));
    expect(first.result.secretId).toBe(secret.id);
    expect(first.work).toBe(1);
    expect(first.control).toBe(0);
    // The unwrapped data key is cached; the secret itself is read afresh every time (still one statement).
    const again = await count(() => resolveNodeCredential(app.svc, workspaceId, node, integration));
    expect(again.statements).toHaveLength(1);
  });

  it('creating a secret is at most 3 statements in one transaction, the write itself one statement', async () => {
    const owner = await signedInUser(app.svc);
    const workspaceId = (await owner.caller.auth.me())?.workspaces[0]?.id as string;
    const actor = { userId: owner.user.id };
    const created = await count(() => createSecret(app.svc, actor, { workspaceId, ...sendgrid('Created') }));
    expect(created.result.name).toBe('Created');
    expect(created.result.createdBy.id).toBe(owner.user.id);
    expect(created.work + created.control).toBeLessThanOrEqual(3);
    expect(created.work).toBeLessThanOrEqual(2);
    // Exactly one statement writes (secret + audit event together), so there is nothing to roll back halfway.
    expect(created.statements.filter((s) => /insert into/i.test(s))).toHaveLength(1);

    // The refusals cost no more.
    const duplicate = await countFailure(() =>
      createSecret(app.svc, actor, { workspaceId, ...sendgrid('Created') }),
    );
    expect(duplicate.work + duplicate.control).toBeLessThanOrEqual(3);
    const stranger = await signedInUser(app.svc);
    const notMember = await countFailure(() =>
      createSecret(app.svc, { userId: stranger.user.id }, { workspaceId, ...sendgrid('Nope') }),
    );
    expect((notMember.result as Error).message).toBe('Workspace not found');
    expect(notMember.work + notMember.control).toBeLessThanOrEqual(1);
  });

  it('secrets.list is ONE statement (membership and role included), whatever the caller and page', async () => {
    const { workspaceId, owner, member } = await teamWorkspace(app.svc);
    for (let i = 0; i < 5; i++) await member.caller.secrets.create({ workspaceId, ...sendgrid(`M${i}`) });
    for (let i = 0; i < 5; i++) await owner.caller.secrets.create({ workspaceId, ...sendgrid(`O${i}`) });

    const ownerPage = await count(() =>
      listSecrets(app.svc, { userId: owner.user.id }, { workspaceId, limit: 3 }),
    );
    expect(ownerPage.result.items).toHaveLength(3);
    expect(ownerPage.statements).toHaveLength(1);
    const cursor = ownerPage.result.nextCursor as string;
    const next = await count(() =>
      listSecrets(app.svc, { userId: owner.user.id }, { workspaceId, limit: 3, cursor }),
    );
    expect(next.result.items).toHaveLength(3);
    expect(next.statements).toHaveLength(1);

    // A member sees only their own, in one statement too.
    const memberPage = await count(() =>
      listSecrets(app.svc, { userId: member.user.id }, { workspaceId, limit: 50 }),
    );
    expect(memberPage.result.items.map((s) => s.name).sort()).toEqual(['M0', 'M1', 'M2', 'M3', 'M4']);
    expect(memberPage.statements).toHaveLength(1);

    // An empty page is an empty page; a workspace one does not belong to is "not found": one statement each.
    const empty = await count(() =>
      listSecrets(app.svc, { userId: owner.user.id }, { workspaceId, search: 'no such name' }),
    );
    expect(empty.result).toEqual({ items: [], nextCursor: null });
    expect(empty.statements).toHaveLength(1);
    const stranger = await signedInUser(app.svc);
    const notMember = await countFailure(() =>
      listSecrets(app.svc, { userId: stranger.user.id }, { workspaceId }),
    );
    expect((notMember.result as Error).message).toBe('Workspace not found');
    expect(notMember.statements).toHaveLength(1);
  });

  it('secrets.selectable is ONE statement (membership included)', async () => {
    const { workspaceId, owner, member } = await teamWorkspace(app.svc);
    for (let i = 0; i < 4; i++) await owner.caller.secrets.create({ workspaceId, ...sendgrid(`S${i}`) });
    const page = await count(() =>
      selectableSecrets(app.svc, { userId: member.user.id }, { workspaceId, nodeType: 'sendgrid' }),
    );
    expect(page.result.map((s) => s.name)).toEqual(['S0', 'S1', 'S2', 'S3']);
    expect(page.statements).toHaveLength(1);
    const none = await count(() =>
      selectableSecrets(app.svc, { userId: member.user.id }, { workspaceId, nodeType: 'slack' }),
    );
    expect(none.result).toEqual([]);
    expect(none.statements).toHaveLength(1);
    const stranger = await signedInUser(app.svc);
    const notMember = await countFailure(() =>
      selectableSecrets(app.svc, { userId: stranger.user.id }, { workspaceId, nodeType: 'sendgrid' }),
    );
    expect((notMember.result as Error).message).toBe('Workspace not found');
    expect(notMember.statements).toHaveLength(1);
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
    const usage = await count(() => secretUsage(app.svc, actor, { workspaceId, secretId: secret.id }));
    expect(usage.result).toHaveLength(5);
    expect(usage.statements.length).toBeLessThanOrEqual(2);
    const deleted = await count(() => deleteSecret(app.svc, actor, { workspaceId, secretId: secret.id }));
    expect(deleted.result.affectedNodes).toHaveLength(5);
    expect(deleted.work).toBeLessThanOrEqual(2);
    expect(deleted.work + deleted.control).toBeLessThanOrEqual(4);
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
      const counted = await count(() =>
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
    // One transaction: BEGIN and COMMIT only.
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
