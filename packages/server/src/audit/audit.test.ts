import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../db/schema.js';
import {
  freshFakeData,
  PARAMS,
  personalWorkspace,
  type RunnerTestEnv,
  startRunnerTestEnv,
  workflowWith,
} from '../testing/fake-services.js';
import { rejection, whileAuditIsDown } from '../testing/fixtures.js';
import { ownerDb, signedInUser } from '../testing/harness.js';
import {
  type HttpTestServer,
  type RawResponse,
  signUpOverHttp,
  startHttpServer,
} from '../testing/http-harness.js';
import type { ExportedAuditEvent } from './audit.js';

// Issue 6, item 8: every create, replace, delete, use and test of a secret and every membership and role
// change writes exactly one audit event, in the same transaction (if the audit write fails, the operation
// fails and changes nothing); owners export the log as JSON lines.

let env: RunnerTestEnv;
beforeAll(async () => {
  env = await startRunnerTestEnv();
});
afterAll(() => env.close());

type Person = Awaited<ReturnType<typeof signedInUser>>;

interface Event {
  seq: string;
  workspace_id: string;
  actor_id: string | null;
  action: string;
  target_id: string | null;
}

async function lastSeq(db: Kysely<Database>): Promise<string> {
  const { rows } = await sql<{ seq: string | null }>`select max(seq)::text as seq from audit_events`.execute(
    db,
  );
  return rows[0]?.seq ?? '0';
}

/** Runs `operation` and returns every audit event (of any workspace) it wrote. */
async function eventsOf(operation: () => Promise<unknown>): Promise<Event[]> {
  const before = await lastSeq(ownerDb(env.svc));
  await operation();
  return ownerDb(env.svc)
    .selectFrom('audit_events')
    .select(['seq', 'workspace_id', 'actor_id', 'action', 'target_id'])
    .where('seq', '>', before)
    .orderBy('seq')
    .execute() as Promise<Event[]>;
}

async function expectOneEvent(
  operation: () => Promise<unknown>,
  expected: { workspaceId: string; actor: Person; action: string; targetId?: string },
): Promise<void> {
  const events = await eventsOf(operation);
  expect(events.map((e) => e.action)).toEqual([expected.action]);
  expect(events[0]).toMatchObject({
    workspace_id: expected.workspaceId,
    actor_id: expected.actor.user.id,
    ...(expected.targetId ? { target_id: expected.targetId } : {}),
  });
}

/** A team: owner, admin, member, one secret each, and a workflow whose two nodes use two of them. */
async function team() {
  const owner = await signedInUser(env.svc, 'Audit Owner');
  const admin = await signedInUser(env.svc, 'Audit Admin');
  const member = await signedInUser(env.svc, 'Audit Member');
  const { id: workspaceId } = await owner.caller.workspaces.create({ name: 'Audited', plan: 'team' });
  for (const [person, role] of [
    [admin, 'admin'],
    [member, 'member'],
  ] as const) {
    const { token } = await owner.caller.workspaces.invite({ workspaceId, email: person.email, role });
    await person.caller.workspaces.acceptInvite({ token });
  }
  const fake = freshFakeData();
  const mail = await member.caller.secrets.create({
    workspaceId,
    credentialType: 'sendgridApiKey',
    name: 'Mail',
    data: fake.sendgridApiKey,
  });
  const bot = await owner.caller.secrets.create({
    workspaceId,
    credentialType: 'slackBotToken',
    name: 'Bot',
    data: fake.slackBotToken,
  });
  const flow = await workflowWith(owner.caller, workspaceId, 'Notify', [
    { name: 'Send mail', nodeType: 'sendgrid', params: PARAMS.sendgrid, secretId: mail.id },
    { name: 'Post', nodeType: 'slack', params: PARAMS.slack, secretId: bot.id },
    { name: 'No credential', nodeType: 'slack', params: PARAMS.slack },
  ]);
  return { workspaceId, owner, admin, member, mail, bot, workflowId: flow.workflowId, nodes: flow.nodes };
}

/** Every row of every table of the database (schema), as text: equal snapshots mean nothing changed. */
async function snapshot(db: Kysely<Database>): Promise<Record<string, string[]>> {
  const tables = await sql<{ name: string }>`
    select table_name as name from information_schema.tables
    where table_schema = current_schema() and table_type = 'BASE TABLE' order by table_name`.execute(db);
  const result: Record<string, string[]> = {};
  for (const { name } of tables.rows) {
    const rows = await sql<{ row: string }>`select t::text as row from ${sql.table(name)} t`.execute(db);
    result[name] = rows.rows.map((r) => r.row).sort();
  }
  return result;
}

describe('exactly one audit event per change', () => {
  it('secrets: create, replace, test, use (one per node that used one) and delete', async () => {
    const t = await team();
    let createdId = '';
    await expectOneEvent(
      async () => {
        createdId = (
          await t.admin.caller.secrets.create({
            workspaceId: t.workspaceId,
            credentialType: 'slackBotToken',
            name: 'Created',
            data: freshFakeData().slackBotToken,
          })
        ).id;
      },
      { workspaceId: t.workspaceId, actor: t.admin, action: 'secret.created' },
    );
    const created = await ownerDb(env.svc)
      .selectFrom('audit_events')
      .select('target_id')
      .where('action', '=', 'secret.created')
      .where('target_id', '=', createdId)
      .execute();
    expect(created).toHaveLength(1);

    await expectOneEvent(
      () =>
        t.admin.caller.secrets.replace({
          workspaceId: t.workspaceId,
          secretId: createdId,
          data: freshFakeData().slackBotToken,
        }),
      { workspaceId: t.workspaceId, actor: t.admin, action: 'secret.replaced', targetId: createdId },
    );
    await expectOneEvent(
      () => t.member.caller.secrets.test({ workspaceId: t.workspaceId, secretId: t.mail.id }),
      {
        workspaceId: t.workspaceId,
        actor: t.member,
        action: 'secret.tested',
        targetId: t.mail.id,
      },
    );

    const run = await eventsOf(() => t.member.caller.workflows.run({ workflowId: t.workflowId }));
    expect(run.map((e) => [e.action, e.target_id, e.actor_id])).toEqual([
      ['secret.used', t.mail.id, t.member.user.id],
      ['secret.used', t.bot.id, t.member.user.id],
      ['workflow.run', t.workflowId, t.member.user.id],
    ]);

    await expectOneEvent(
      () => t.owner.caller.secrets.delete({ workspaceId: t.workspaceId, secretId: createdId }),
      {
        workspaceId: t.workspaceId,
        actor: t.owner,
        action: 'secret.deleted',
        targetId: createdId,
      },
    );
    // Testing unsaved form data touches no stored secret: nothing to record.
    expect(
      await eventsOf(() =>
        t.member.caller.secrets.test({
          workspaceId: t.workspaceId,
          credentialType: 'sendgridApiKey',
          data: freshFakeData().sendgridApiKey,
        }),
      ),
    ).toEqual([]);
  });

  it('membership: invite, join, role change, removal and leaving', async () => {
    const t = await team();
    const newcomer = await signedInUser(env.svc, 'Newcomer');
    let token = '';
    await expectOneEvent(
      async () => {
        token = (
          await t.admin.caller.workspaces.invite({
            workspaceId: t.workspaceId,
            email: newcomer.email,
            role: 'member',
          })
        ).token;
      },
      { workspaceId: t.workspaceId, actor: t.admin, action: 'member.invited' },
    );
    await expectOneEvent(() => newcomer.caller.workspaces.acceptInvite({ token }), {
      workspaceId: t.workspaceId,
      actor: newcomer,
      action: 'member.joined',
      targetId: newcomer.user.id,
    });
    await expectOneEvent(
      () =>
        t.owner.caller.workspaces.setRole({
          workspaceId: t.workspaceId,
          userId: newcomer.user.id,
          role: 'admin',
        }),
      {
        workspaceId: t.workspaceId,
        actor: t.owner,
        action: 'member.role_changed',
        targetId: newcomer.user.id,
      },
    );
    await expectOneEvent(
      () => t.owner.caller.workspaces.removeMember({ workspaceId: t.workspaceId, userId: t.member.user.id }),
      { workspaceId: t.workspaceId, actor: t.owner, action: 'member.removed', targetId: t.member.user.id },
    );
    await expectOneEvent(() => newcomer.caller.workspaces.leave({ workspaceId: t.workspaceId }), {
      workspaceId: t.workspaceId,
      actor: newcomer,
      action: 'member.left',
      targetId: newcomer.user.id,
    });
  });

  it('refused, invalid and no-op calls write nothing', async () => {
    const t = await team();
    const outsider = await signedInUser(env.svc, 'Outsider');
    const refused: [string, () => Promise<unknown>][] = [
      [
        'member deletes the owner’s secret',
        () => t.member.caller.secrets.delete({ workspaceId: t.workspaceId, secretId: t.bot.id }),
      ],
      [
        'member replaces the owner’s secret',
        () =>
          t.member.caller.secrets.replace({
            workspaceId: t.workspaceId,
            secretId: t.bot.id,
            data: freshFakeData().slackBotToken,
          }),
      ],
      [
        'invalid data',
        () =>
          t.owner.caller.secrets.create({
            workspaceId: t.workspaceId,
            credentialType: 'slackBotToken',
            name: 'Bad',
            data: { token: '' },
          }),
      ],
      [
        'outsider creates',
        () =>
          outsider.caller.secrets.create({
            workspaceId: t.workspaceId,
            credentialType: 'slackBotToken',
            name: 'Intruder',
            data: freshFakeData().slackBotToken,
          }),
      ],
      [
        'outsider tests',
        () => outsider.caller.secrets.test({ workspaceId: t.workspaceId, secretId: t.bot.id }),
      ],
      ['outsider runs', () => outsider.caller.workflows.run({ workflowId: t.workflowId })],
      [
        'member changes a role',
        () =>
          t.member.caller.workspaces.setRole({
            workspaceId: t.workspaceId,
            userId: t.admin.user.id,
            role: 'member',
          }),
      ],
      [
        'admin removes the owner',
        () => t.admin.caller.workspaces.removeMember({ workspaceId: t.workspaceId, userId: t.owner.user.id }),
      ],
      ['last owner leaves', () => t.owner.caller.workspaces.leave({ workspaceId: t.workspaceId })],
    ];
    for (const [name, call] of refused) {
      const events = await eventsOf(() => rejection(call()));
      expect(events, name).toEqual([]);
    }
    // Setting the role someone already has changes nothing and records nothing.
    expect(
      await eventsOf(() =>
        t.owner.caller.workspaces.setRole({
          workspaceId: t.workspaceId,
          userId: t.admin.user.id,
          role: 'admin',
        }),
      ),
    ).toEqual([]);
  });
});

/** The newest audit event of a workspace with its details, as `audit.list` shows it. */
async function newest(t: Awaited<ReturnType<typeof team>>) {
  const { items } = await t.owner.caller.audit.list({ workspaceId: t.workspaceId, limit: 1 });
  return items[0];
}

describe('workflows: every change and every run is one event, with names beside the ids', () => {
  it('create, rename, add / change / remove a node (with the credential it now uses), run, delete', async () => {
    const t = await team();
    const actor = t.member;
    let workflowId = '';
    await expectOneEvent(
      async () => {
        workflowId = (await actor.caller.workflows.create({ workspaceId: t.workspaceId, name: 'Onboarding' }))
          .id;
      },
      { workspaceId: t.workspaceId, actor, action: 'workflow.created' },
    );
    expect(await newest(t)).toMatchObject({
      action: 'workflow.created',
      actor: { id: actor.user.id, name: 'Audit Member' },
      targetType: 'workflow',
      targetId: workflowId,
      targetName: 'Onboarding',
    });

    await expectOneEvent(() => actor.caller.workflows.rename({ workflowId, name: 'Onboarding v2' }), {
      workspaceId: t.workspaceId,
      actor,
      action: 'workflow.renamed',
      targetId: workflowId,
    });
    expect(await newest(t)).toMatchObject({
      targetName: 'Onboarding v2',
      details: { from: 'Onboarding', to: 'Onboarding v2' },
    });
    // The same name again: no change, no event.
    expect(
      await eventsOf(() => actor.caller.workflows.rename({ workflowId, name: 'Onboarding v2' })),
    ).toEqual([]);

    let nodeId = '';
    await expectOneEvent(
      async () => {
        nodeId = (
          await actor.caller.workflows.addNode({
            workflowId,
            name: 'Welcome mail',
            nodeType: 'sendgrid',
            params: PARAMS.sendgrid,
            secretId: t.mail.id,
          })
        ).id;
      },
      { workspaceId: t.workspaceId, actor, action: 'workflow.node_added', targetId: workflowId },
    );
    expect((await newest(t))?.details).toEqual({
      nodeId,
      nodeName: 'Welcome mail',
      nodeType: 'sendgrid',
      secretId: t.mail.id,
      secretName: 'Mail',
    });

    // A credential of the right type from the owner: the event names the new one and the one before.
    const otherMail = await t.owner.caller.secrets.create({
      workspaceId: t.workspaceId,
      credentialType: 'sendgridApiKey',
      name: 'Other mail',
      data: freshFakeData().sendgridApiKey,
    });
    await expectOneEvent(
      () =>
        actor.caller.workflows.updateNode({
          workflowId,
          nodeId,
          name: 'Welcome email',
          params: { ...PARAMS.sendgrid, subject: 'Hello' },
          secretId: otherMail.id,
        }),
      { workspaceId: t.workspaceId, actor, action: 'workflow.node_changed', targetId: workflowId },
    );
    expect((await newest(t))?.details).toEqual({
      nodeId,
      nodeName: 'Welcome email',
      previousNodeName: 'Welcome mail',
      nodeType: 'sendgrid',
      changed: ['name', 'params', 'credential'],
      changedParams: ['subject'],
      secretId: otherMail.id,
      secretName: 'Other mail',
      previousSecretId: t.mail.id,
      previousSecretName: 'Mail',
    });
    // Saved as it is (the editor sends every field): nothing changed, nothing recorded.
    expect(
      await eventsOf(() =>
        actor.caller.workflows.updateNode({
          workflowId,
          nodeId,
          name: 'Welcome email',
          params: { ...PARAMS.sendgrid, subject: 'Hello' },
          secretId: otherMail.id,
        }),
      ),
    ).toEqual([]);
    // Clearing the credential: it now uses none.
    await expectOneEvent(() => actor.caller.workflows.updateNode({ workflowId, nodeId, secretId: null }), {
      workspaceId: t.workspaceId,
      actor,
      action: 'workflow.node_changed',
    });
    expect((await newest(t))?.details).toMatchObject({
      changed: ['credential'],
      secretId: null,
      secretName: null,
      previousSecretId: otherMail.id,
      previousSecretName: 'Other mail',
    });
    await actor.caller.workflows.updateNode({ workflowId, nodeId, secretId: t.mail.id });

    // A run: who ran it and how it went, after the uses of its credentials.
    const run = await eventsOf(() => t.admin.caller.workflows.run({ workflowId }));
    expect(run.map((e) => [e.action, e.target_id, e.actor_id])).toEqual([
      ['secret.used', t.mail.id, t.admin.user.id],
      ['workflow.run', workflowId, t.admin.user.id],
    ]);
    expect((await newest(t))?.details).toEqual({ ok: true, nodeCount: 1, failedCount: 0, failedNodes: [] });
    const used = (await t.owner.caller.audit.list({ workspaceId: t.workspaceId, actions: ['secret.used'] }))
      .items[0];
    expect(used).toMatchObject({
      targetName: 'Mail',
      details: { workflowId, workflowName: 'Onboarding v2', nodeId, nodeName: 'Welcome email' },
    });

    await expectOneEvent(() => actor.caller.workflows.removeNode({ workflowId, nodeId }), {
      workspaceId: t.workspaceId,
      actor,
      action: 'workflow.node_removed',
      targetId: workflowId,
    });
    expect((await newest(t))?.details).toEqual({
      nodeId,
      nodeName: 'Welcome email',
      nodeType: 'sendgrid',
      secretId: t.mail.id,
      secretName: 'Mail',
    });

    await expectOneEvent(() => actor.caller.workflows.delete({ workflowId: t.workflowId }), {
      workspaceId: t.workspaceId,
      actor,
      action: 'workflow.deleted',
      targetId: t.workflowId,
    });
    expect(await newest(t)).toMatchObject({
      targetName: 'Notify',
      details: {
        nodeCount: 3,
        nodes: t.nodes.map((n) => ({ nodeId: n.id, nodeName: n.name })),
      },
    });
    await expect(actor.caller.workflows.get({ workflowId: t.workflowId })).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    // The secrets its nodes used stay.
    expect(
      (await t.owner.caller.secrets.list({ workspaceId: t.workspaceId })).items.map((m) => m.id),
    ).toEqual(expect.arrayContaining([t.mail.id, t.bot.id]));
  });

  it('a failed run records which nodes failed, by id and name, and no service message', async () => {
    const t = await team();
    await t.owner.caller.workflows.updateNode({
      workflowId: t.workflowId,
      nodeId: t.nodes[1]?.id as string,
      secretId: null,
    });
    await t.owner.caller.workflows.run({ workflowId: t.workflowId });
    expect(await newest(t)).toMatchObject({
      action: 'workflow.run',
      actor: { id: t.owner.user.id },
      targetName: 'Notify',
      details: {
        ok: false,
        nodeCount: 3,
        failedCount: 2,
        failedNodes: [
          { nodeId: t.nodes[1]?.id, nodeName: 'Post' },
          { nodeId: t.nodes[2]?.id, nodeName: 'No credential' },
        ],
      },
    });
  });

  it('refused and invalid workflow changes write nothing', async () => {
    const t = await team();
    const outsider = await signedInUser(env.svc, 'Workflow Outsider');
    const refused: [string, () => Promise<unknown>][] = [
      [
        'outsider renames',
        () => outsider.caller.workflows.rename({ workflowId: t.workflowId, name: 'Mine' }),
      ],
      ['outsider deletes', () => outsider.caller.workflows.delete({ workflowId: t.workflowId })],
      [
        'a credential of another node type',
        () =>
          t.member.caller.workflows.addNode({
            workflowId: t.workflowId,
            name: 'Wrong type',
            nodeType: 'slack',
            params: PARAMS.slack,
            secretId: t.mail.id,
          }),
      ],
      [
        'an unknown node',
        () => t.member.caller.workflows.removeNode({ workflowId: t.workflowId, nodeId: 'no-such-node' }),
      ],
      [
        'invalid params',
        () =>
          t.member.caller.workflows.updateNode({
            workflowId: t.workflowId,
            nodeId: t.nodes[0]?.id as string,
            params: { to: 42 },
          }),
      ],
    ];
    for (const [name, call] of refused) expect(await eventsOf(() => rejection(call())), name).toEqual([]);
  });
});

describe('audit.list filters: event type, actor, target, date range — keyset-paginated', () => {
  it('narrows by each filter and by all of them at once, page by page', async () => {
    const t = await team();
    for (let i = 0; i < 3; i++) await t.member.caller.workflows.run({ workflowId: t.workflowId });
    await t.admin.caller.secrets.test({ workspaceId: t.workspaceId, secretId: t.mail.id });
    const list = (input: Omit<Parameters<typeof t.owner.caller.audit.list>[0], 'workspaceId'>) =>
      t.owner.caller.audit.list({ workspaceId: t.workspaceId, ...input });
    const all = async (input: Omit<Parameters<typeof t.owner.caller.audit.list>[0], 'workspaceId'>) => {
      const items = [];
      let cursor: string | undefined;
      for (let page = 0; page < 50; page++) {
        const result = await list({ ...input, limit: 2, ...(cursor ? { cursor } : {}) });
        expect(result.items.length).toBeLessThanOrEqual(2);
        items.push(...result.items);
        if (!result.nextCursor) return items;
        cursor = result.nextCursor;
      }
      throw new Error('too many pages');
    };

    const everything = (await list({ limit: 100 })).items;
    // Pages of two walk the same events, newest first, none twice.
    expect((await all({})).map((e) => e.id)).toEqual(everything.map((e) => e.id));

    const runs = await all({ actions: ['workflow.run'] });
    expect(runs).toHaveLength(3);
    expect(runs.every((e) => e.action === 'workflow.run' && e.targetId === t.workflowId)).toBe(true);
    expect((await all({ actions: ['workflow.run', 'secret.tested'] })).map((e) => e.action)).toEqual([
      'secret.tested',
      'workflow.run',
      'workflow.run',
      'workflow.run',
    ]);

    const byAdmin = await all({ actorId: t.admin.user.id });
    expect(byAdmin.map((e) => e.action)).toEqual(['secret.tested', 'member.joined']);

    // A secret's history: its own events, and the runs and nodes that name it in their details.
    const mail = await all({ targetId: t.mail.id });
    expect(mail.map((e) => e.action)).toEqual([
      'secret.tested',
      'secret.used',
      'secret.used',
      'secret.used',
      'workflow.node_changed',
      'secret.created',
    ]);
    // A workflow's: its changes, its runs, and the uses of credentials in it.
    const flow = await all({ targetId: t.workflowId });
    expect(flow.filter((e) => e.action === 'secret.used')).toHaveLength(6);
    expect(flow.at(-1)?.action).toBe('workflow.created');

    // All at once: the member's runs.
    expect(
      await all({ actions: ['workflow.run'], actorId: t.member.user.id, targetId: t.workflowId }),
    ).toEqual(runs);
    expect(await all({ actions: ['workflow.run'], actorId: t.admin.user.id })).toEqual([]);
    expect(await all({ actions: ['no.such_event'] })).toEqual([]);
    expect(await all({ targetId: 'nothing-has-this-id' })).toEqual([]);

    // Date range: `from` inclusive, `to` exclusive; a date as `to` includes that whole day.
    const [first, second] = [everything.at(-1), everything.at(-2)];
    const firstAt = first?.createdAt as string;
    expect((await all({ from: firstAt })).map((e) => e.id)).toEqual(everything.map((e) => e.id));
    expect((await all({ to: firstAt })).map((e) => e.id)).toEqual([]);
    const after = new Date(Date.parse(firstAt) + 1).toISOString();
    expect((await all({ to: after })).map((e) => e.id)).toEqual(
      everything.filter((e) => e.createdAt <= firstAt).map((e) => e.id),
    );
    expect((await all({ from: second?.createdAt, to: second?.createdAt })).map((e) => e.id)).toEqual([]);
    const today = firstAt.slice(0, 10);
    expect((await all({ from: today, to: today })).length).toBe(everything.length);
    expect(await all({ to: '2000-01-01' })).toEqual([]);
  });

  it('refuses malformed filters (BAD_REQUEST on the field) and stays for owners and admins', async () => {
    const t = await team();
    for (const [field, value] of [
      ['from', 'yesterday'],
      ['to', '2026-13-40'],
      ['actions', ['secret used']],
      ['limit', 0],
      ['limit', 101],
    ] as const) {
      const error = await rejection(
        t.owner.caller.audit.list({ workspaceId: t.workspaceId, [field]: value } as never),
      );
      expect(error.code, field).toBe('BAD_REQUEST');
    }
    expect(
      (await rejection(t.member.caller.audit.list({ workspaceId: t.workspaceId, actions: ['secret.used'] })))
        .code,
    ).toBe('FORBIDDEN');
  });
});

describe('when the audit write fails, the operation fails and changes nothing', () => {
  const cases: [string, (t: Awaited<ReturnType<typeof team>>) => Promise<unknown>][] = [
    [
      'secrets.create',
      (t) =>
        t.member.caller.secrets.create({
          workspaceId: t.workspaceId,
          credentialType: 'slackBotToken',
          name: 'Unaudited',
          data: freshFakeData().slackBotToken,
        }),
    ],
    [
      'secrets.replace',
      (t) =>
        t.member.caller.secrets.replace({
          workspaceId: t.workspaceId,
          secretId: t.mail.id,
          data: freshFakeData().sendgridApiKey,
        }),
    ],
    [
      'secrets.delete',
      (t) => t.owner.caller.secrets.delete({ workspaceId: t.workspaceId, secretId: t.mail.id }),
    ],
    [
      'secrets.test',
      (t) => t.member.caller.secrets.test({ workspaceId: t.workspaceId, secretId: t.mail.id }),
    ],
    [
      'workspaces.removeMember',
      (t) => t.owner.caller.workspaces.removeMember({ workspaceId: t.workspaceId, userId: t.member.user.id }),
    ],
    [
      'workspaces.setRole',
      (t) =>
        t.owner.caller.workspaces.setRole({
          workspaceId: t.workspaceId,
          userId: t.member.user.id,
          role: 'admin',
        }),
    ],
    ['workspaces.leave', (t) => t.admin.caller.workspaces.leave({ workspaceId: t.workspaceId })],
    [
      'workspaces.invite',
      (t) =>
        t.owner.caller.workspaces.invite({
          workspaceId: t.workspaceId,
          email: 'late@example.test',
          role: 'member',
        }),
    ],
    [
      'workflows.create',
      (t) => t.member.caller.workflows.create({ workspaceId: t.workspaceId, name: 'Unaudited' }),
    ],
    [
      'workflows.rename',
      (t) => t.member.caller.workflows.rename({ workflowId: t.workflowId, name: 'Renamed' }),
    ],
    ['workflows.delete', (t) => t.member.caller.workflows.delete({ workflowId: t.workflowId })],
    [
      'workflows.addNode',
      (t) =>
        t.member.caller.workflows.addNode({
          workflowId: t.workflowId,
          name: 'Unaudited node',
          nodeType: 'slack',
          params: PARAMS.slack,
          secretId: t.bot.id,
        }),
    ],
    [
      'workflows.updateNode',
      (t) =>
        t.member.caller.workflows.updateNode({
          workflowId: t.workflowId,
          nodeId: t.nodes[2]?.id as string,
          secretId: t.bot.id,
        }),
    ],
    [
      'workflows.removeNode',
      (t) =>
        t.member.caller.workflows.removeNode({ workflowId: t.workflowId, nodeId: t.nodes[0]?.id as string }),
    ],
  ];

  it.each(cases)('%s', async (_name, operation) => {
    const t = await team();
    const before = await snapshot(ownerDb(env.svc));
    const error = await whileAuditIsDown(env.svc, () => rejection(operation(t)));
    expect(error.code).toBe('INTERNAL_SERVER_ERROR');
    expect(await snapshot(ownerDb(env.svc))).toEqual(before);
    // With the audit back, the same operation goes through and is recorded once.
    const events = await eventsOf(() => operation(t));
    expect(events).toHaveLength(1);
  });

  it('workflows.run: a run whose uses and outcome cannot be recorded is an error, and nothing is recorded', async () => {
    const t = await team();
    const before = await snapshot(ownerDb(env.svc));
    const error = await whileAuditIsDown(env.svc, () =>
      rejection(t.owner.caller.workflows.run({ workflowId: t.workflowId })),
    );
    expect(error.code).toBe('INTERNAL_SERVER_ERROR');
    expect(await snapshot(ownerDb(env.svc))).toEqual(before);
  });
});

describe('audit export (GET /api/workspaces/:id/audit.jsonl)', () => {
  let http: HttpTestServer;
  beforeAll(async () => {
    http = await startHttpServer(env.svc);
  });
  afterAll(() => http.close());

  async function exportAs(
    client: { fetch(path: string, init?: RequestInit): Promise<RawResponse> },
    workspaceId: string,
    headers: Record<string, string> = {},
  ) {
    return client.fetch(`/api/workspaces/${encodeURIComponent(workspaceId)}/audit.jsonl`, { headers });
  }

  async function httpTeam() {
    const owner = await signUpOverHttp(http, 'Exporting Owner');
    const admin = await signUpOverHttp(http, 'Exporting Admin');
    const member = await signUpOverHttp(http, 'Exporting Member');
    const outsider = await signUpOverHttp(http, 'Outsider');
    const { id: workspaceId } = await owner.client.trpc.workspaces.create.mutate({
      name: 'Exported',
      plan: 'team',
    });
    for (const [person, role] of [
      [admin, 'admin'],
      [member, 'member'],
    ] as const) {
      const { token } = await owner.client.trpc.workspaces.invite.mutate({
        workspaceId,
        email: person.email,
        role,
      });
      await person.client.trpc.workspaces.acceptInvite.mutate({ token });
    }
    return { workspaceId, owner, admin, member, outsider };
  }

  it('gives owners every event of the workspace, oldest first, as JSON lines without secret values', async () => {
    const t = await httpTeam();
    const data = freshFakeData().slackBotToken as { token: string };
    const secret = await t.member.client.trpc.secrets.create.mutate({
      workspaceId: t.workspaceId,
      credentialType: 'slackBotToken',
      name: 'Exported bot',
      data,
    });
    await t.owner.client.trpc.secrets.delete.mutate({ workspaceId: t.workspaceId, secretId: secret.id });

    const response = await exportAs(t.owner.client, t.workspaceId);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    expect(response.headers.get('content-disposition')).toMatch(
      /^attachment; filename="latchkey-audit-[\w-]+\.jsonl"$/,
    );
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(response.text.endsWith('\n')).toBe(true);
    const lines = response.text
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as ExportedAuditEvent);
    expect(lines.map((e) => e.action)).toEqual([
      'workspace.created',
      'member.invited',
      'member.joined',
      'member.invited',
      'member.joined',
      'secret.created',
      'secret.deleted',
      'audit.exported',
    ]);
    const seqs = lines.map((e) => BigInt(e.seq));
    for (let i = 1; i < seqs.length; i++) expect((seqs[i] as bigint) > (seqs[i - 1] as bigint)).toBe(true);
    expect(lines[5]).toMatchObject({
      actor: { id: t.member.user.id, email: t.member.email, name: 'Exporting Member' },
      target: { type: 'secret', id: secret.id, name: 'Exported bot' },
      details: { credentialType: 'slackBotToken' },
    });
    expect(lines.at(-1)).toMatchObject({ action: 'audit.exported', actor: { id: t.owner.user.id } });
    expect(response.text).not.toContain(data.token);
    const stored = await ownerDb(env.svc)
      .selectFrom('audit_events')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('workspace_id', '=', t.workspaceId)
      .executeTakeFirstOrThrow();
    expect(Number(stored.n)).toBe(lines.length);
  });

  it('honours the audit.list filters, in JSON lines and in CSV, and always ends with its own event', async () => {
    const t = await httpTeam();
    const data = freshFakeData().slackBotToken as { token: string };
    const secret = await t.member.client.trpc.secrets.create.mutate({
      workspaceId: t.workspaceId,
      credentialType: 'slackBotToken',
      name: '=HYPERLINK("x"), "quoted"',
      data,
    });
    const flow = await t.member.client.trpc.workflows.create.mutate({
      workspaceId: t.workspaceId,
      name: 'Flow',
    });
    await t.owner.client.trpc.secrets.delete.mutate({ workspaceId: t.workspaceId, secretId: secret.id });
    const get = (query: string) =>
      t.owner.client.fetch(`/api/workspaces/${encodeURIComponent(t.workspaceId)}/audit.jsonl?${query}`);
    const jsonLines = (text: string) =>
      text
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line) as ExportedAuditEvent);

    const byType = await get('actions=secret.created,secret.deleted');
    expect(byType.status).toBe(200);
    const typed = jsonLines(byType.text);
    expect(typed.map((e) => e.action)).toEqual(['secret.created', 'secret.deleted', 'audit.exported']);
    expect(typed.at(-1)?.details).toEqual({
      format: 'jsonl',
      filter: { actions: ['secret.created', 'secret.deleted'] },
    });
    // Repeated parameters are the same list.
    expect(
      jsonLines((await get('actions=secret.created&actions=secret.deleted')).text).map((e) => e.action),
    ).toEqual(['secret.created', 'secret.deleted', 'audit.exported']);
    expect(jsonLines((await get(`actorId=${t.member.user.id}`)).text).map((e) => e.action)).toEqual([
      'member.joined',
      'secret.created',
      'workflow.created',
      'audit.exported',
    ]);
    expect(jsonLines((await get(`targetId=${flow.id}`)).text).map((e) => e.action)).toEqual([
      'workflow.created',
      'audit.exported',
    ]);
    expect(
      jsonLines((await get(`targetId=${secret.id}&actorId=${t.owner.user.id}&from=2000-01-01`)).text).map(
        (e) => e.action,
      ),
    ).toEqual(['secret.deleted', 'audit.exported']);
    expect(jsonLines((await get('to=2000-01-01')).text).map((e) => e.action)).toEqual(['audit.exported']);

    const csv = await get(`format=csv&targetId=${secret.id}`);
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toBe('text/csv; charset=utf-8; header=present');
    expect(csv.headers.get('content-disposition')).toMatch(
      /^attachment; filename="latchkey-audit-[\w-]+\.csv"$/,
    );
    const rows = csv.text.trimEnd().split('\r\n');
    expect(rows[0]).toBe(
      'seq,at,action,actor_id,actor_email,actor_name,target_type,target_id,target_name,details',
    );
    expect(rows.slice(1).map((r) => r.split(',')[2])).toEqual([
      'secret.created',
      'secret.deleted',
      'audit.exported',
    ]);
    // A name a spreadsheet would run as a formula is kept as text; quotes and commas are escaped.
    expect(rows[1]).toContain(`"'=HYPERLINK(""x""), ""quoted"""`);
    expect(rows[1]).toContain(`,${t.member.email},Exporting Member,secret,${secret.id},`);
    expect(rows.at(-1)).toContain(`""filter"":{""targetId"":""${secret.id}""}`);
    expect(rows.at(-1)).toContain(`""format"":""csv""`);
    for (const text of [byType.text, csv.text]) expect(text).not.toContain(data.token);
  });

  it('refuses malformed filters with 400 on the field, and records nothing', async () => {
    const t = await httpTeam();
    const before = await lastSeq(ownerDb(env.svc));
    for (const query of [
      'from=yesterday',
      'format=xml',
      'actions=secret%20used',
      'unknown=1',
      `actorId=${'x'.repeat(65)}`,
    ]) {
      const response = await t.owner.client.fetch(
        `/api/workspaces/${encodeURIComponent(t.workspaceId)}/audit.jsonl?${query}`,
      );
      expect(response.status, query).toBe(400);
      const body = response.json as { error: { data: { code: string; issues: { path: string[] }[] } } };
      expect(body.error.data.code).toBe('BAD_REQUEST');
      expect(body.error.data.issues.length, query).toBeGreaterThan(0);
    }
    expect(await lastSeq(ownerDb(env.svc))).toBe(before);
  });

  it('streams a long log completely, in order, across pages', async () => {
    const t = await httpTeam();
    const bulk = 1234;
    await sql`
      insert into audit_events (id, workspace_id, actor_id, action, target_type, target_id, target_name, details)
      select 'bulk-' || ${t.workspaceId} || '-' || g, ${t.workspaceId}, ${t.owner.user.id}, 'secret.used', 'secret', 'sec-' || g, 'Bulk', '{}'
      from generate_series(1, ${bulk}) g`.execute(ownerDb(env.svc));
    const response = await exportAs(t.owner.client, t.workspaceId);
    const lines = response.text
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as ExportedAuditEvent);
    expect(lines.filter((e) => e.action === 'secret.used')).toHaveLength(bulk);
    expect(new Set(lines.map((e) => e.id)).size).toBe(lines.length);
    expect(lines.at(-1)?.action).toBe('audit.exported');
  });

  it('is for owners only: admins and members get 403, outsiders and unknown ids 404, no session 401', async () => {
    const t = await httpTeam();
    const before = await lastSeq(ownerDb(env.svc));
    const expectRefused = (response: RawResponse, status: number, code: string) => {
      expect(response.status).toBe(status);
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect((response.json as { error: { data: { code: string } } }).error.data.code).toBe(code);
    };
    expectRefused(await exportAs(t.admin.client, t.workspaceId), 403, 'FORBIDDEN');
    expectRefused(await exportAs(t.member.client, t.workspaceId), 403, 'FORBIDDEN');
    expectRefused(await exportAs(t.outsider.client, t.workspaceId), 404, 'NOT_FOUND');
    expectRefused(await exportAs(t.owner.client, 'no-such-workspace'), 404, 'NOT_FOUND');
    expectRefused(await exportAs(t.owner.client, 'x'.repeat(65)), 404, 'NOT_FOUND');
    expectRefused(await exportAs(http, t.workspaceId), 401, 'UNAUTHORIZED');
    expectRefused(
      await exportAs(t.owner.client, t.workspaceId, { 'sec-fetch-site': 'cross-site' }),
      403,
      'FORBIDDEN',
    );
    // Refused exports are not exports: nothing recorded.
    expect(await lastSeq(ownerDb(env.svc))).toBe(before);
  });

  it('fails, and sends nothing, when the export cannot be recorded', async () => {
    const t = await httpTeam();
    const response = await whileAuditIsDown(env.svc, () => exportAs(t.owner.client, t.workspaceId));
    expect(response.status).toBe(500);
    expect((response.json as { error: { data: { code: string } } }).error.data.code).toBe(
      'INTERNAL_SERVER_ERROR',
    );
  });
});

it('the personal workspace of a new account starts its log with workspace.created', async () => {
  const person = await signedInUser(env.svc, 'Fresh');
  const workspaceId = await personalWorkspace(person.caller);
  const { items } = await person.caller.audit.list({ workspaceId });
  expect(items.map((e) => e.action)).toEqual(['workspace.created']);
});
