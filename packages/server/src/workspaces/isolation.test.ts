import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createSecret,
  fakeEmail,
  type Person,
  rejection,
  workflowWithNodes,
  workspaceState,
} from '../testing/fixtures.js';
import { createTestApp, FAKE_DATA, signedInUser, type TestApp, teamWorkspace } from '../testing/harness.js';

let app: TestApp;

/** One workspace's people and objects, as ids another workspace's users might try. */
async function populatedWorkspace(label: string) {
  const team = await teamWorkspace(app.svc);
  const { workspaceId, owner, member } = team;
  const mail = await createSecret(member, workspaceId, 'sendgridApiKey', `${label} mail key`);
  const token = await createSecret(owner, workspaceId, 'httpBearerToken', `${label} API token`);
  const { workflow, nodes } = await workflowWithNodes(owner, workspaceId, `${label} onboarding`, [
    { name: `${label} welcome email`, nodeType: 'sendgrid', secretId: mail.id },
    { name: `${label} call API`, nodeType: 'httpRequest', secretId: token.id },
  ]);
  const [mailNode, apiNode] = nodes as [{ id: string }, { id: string }];
  const invite = await owner.caller.workspaces.invite({
    workspaceId,
    email: fakeEmail('pending'),
    role: 'member',
  });
  return {
    ...team,
    mail,
    token,
    workflowId: workflow.id,
    mailNodeId: mailNode.id,
    apiNodeId: apiNode.id,
    inviteToken: invite.token,
  };
}

type Workspace = Awaited<ReturnType<typeof populatedWorkspace>>;
let a: Workspace;
let b: Workspace;

beforeAll(async () => {
  app = await createTestApp();
  a = await populatedWorkspace('A');
  b = await populatedWorkspace('B');
});
afterAll(() => app.close());

interface Case {
  name: string;
  run: (caller: Person['caller']) => Promise<unknown>;
}

/** Every procedure that takes an id, called with workspace B's ids only. */
const foreignIdCases: Case[] = [
  { name: 'workspaces.get', run: (c) => c.workspaces.get({ workspaceId: b.workspaceId }) },
  { name: 'workspaces.members', run: (c) => c.workspaces.members({ workspaceId: b.workspaceId }) },
  {
    name: 'workspaces.invite',
    run: (c) =>
      c.workspaces.invite({ workspaceId: b.workspaceId, email: fakeEmail('intruder'), role: 'owner' }),
  },
  {
    name: 'workspaces.setRole',
    run: (c) => c.workspaces.setRole({ workspaceId: b.workspaceId, userId: b.member.user.id, role: 'owner' }),
  },
  {
    name: 'workspaces.removalPreview',
    run: (c) => c.workspaces.removalPreview({ workspaceId: b.workspaceId, userId: b.member.user.id }),
  },
  {
    name: 'workspaces.removeMember',
    run: (c) => c.workspaces.removeMember({ workspaceId: b.workspaceId, userId: b.member.user.id }),
  },
  { name: 'workspaces.leave', run: (c) => c.workspaces.leave({ workspaceId: b.workspaceId }) },
  {
    name: "workspaces.acceptInvite (someone else's invite)",
    run: (c) => c.workspaces.acceptInvite({ token: b.inviteToken }),
  },
  {
    name: 'secrets.create',
    run: (c) =>
      c.secrets.create({
        workspaceId: b.workspaceId,
        credentialType: 'sendgridApiKey',
        name: 'Planted',
        data: FAKE_DATA.sendgridApiKey,
      }),
  },
  { name: 'secrets.list', run: (c) => c.secrets.list({ workspaceId: b.workspaceId }) },
  {
    name: 'secrets.list (filtered by node type and creator)',
    run: (c) =>
      c.secrets.list({ workspaceId: b.workspaceId, nodeType: 'sendgrid', createdBy: b.member.user.id }),
  },
  {
    name: 'secrets.selectable',
    run: (c) => c.secrets.selectable({ workspaceId: b.workspaceId, nodeType: 'sendgrid' }),
  },
  { name: 'secrets.usage', run: (c) => c.secrets.usage({ workspaceId: b.workspaceId, secretId: b.mail.id }) },
  {
    name: 'secrets.replace',
    run: (c) =>
      c.secrets.replace({ workspaceId: b.workspaceId, secretId: b.mail.id, data: FAKE_DATA.sendgridApiKey }),
  },
  {
    name: 'secrets.delete',
    run: (c) => c.secrets.delete({ workspaceId: b.workspaceId, secretId: b.mail.id }),
  },
  { name: 'audit.list', run: (c) => c.audit.list({ workspaceId: b.workspaceId }) },
  {
    name: 'workflows.create',
    run: (c) => c.workflows.create({ workspaceId: b.workspaceId, name: 'Planted' }),
  },
  { name: 'workflows.list', run: (c) => c.workflows.list({ workspaceId: b.workspaceId }) },
  { name: 'workflows.get', run: (c) => c.workflows.get({ workflowId: b.workflowId }) },
  {
    name: 'workflows.addNode',
    run: (c) =>
      c.workflows.addNode({ workflowId: b.workflowId, name: 'Planted', nodeType: 'sendgrid', params: {} }),
  },
  {
    name: 'workflows.updateNode (rename)',
    run: (c) => c.workflows.updateNode({ workflowId: b.workflowId, nodeId: b.mailNodeId, name: 'Hijacked' }),
  },
  {
    name: 'workflows.updateNode (clear the secret)',
    run: (c) => c.workflows.updateNode({ workflowId: b.workflowId, nodeId: b.mailNodeId, secretId: null }),
  },
  {
    name: 'workflows.removeNode',
    run: (c) => c.workflows.removeNode({ workflowId: b.workflowId, nodeId: b.mailNodeId }),
  },
];

/** A's own workspace, workflow or node combined with one of B's ids. */
const mixedIdCases: Case[] = [
  {
    name: "workspaces.setRole on A for B's member",
    run: (c) => c.workspaces.setRole({ workspaceId: a.workspaceId, userId: b.member.user.id, role: 'admin' }),
  },
  {
    name: "workspaces.removalPreview on A for B's member",
    run: (c) => c.workspaces.removalPreview({ workspaceId: a.workspaceId, userId: b.member.user.id }),
  },
  {
    name: "workspaces.removeMember on A for B's member",
    run: (c) => c.workspaces.removeMember({ workspaceId: a.workspaceId, userId: b.member.user.id }),
  },
  {
    name: "secrets.usage on A for B's secret",
    run: (c) => c.secrets.usage({ workspaceId: a.workspaceId, secretId: b.mail.id }),
  },
  {
    name: "secrets.replace on A for B's secret",
    run: (c) =>
      c.secrets.replace({ workspaceId: a.workspaceId, secretId: b.mail.id, data: FAKE_DATA.sendgridApiKey }),
  },
  {
    name: "secrets.delete on A for B's secret",
    run: (c) => c.secrets.delete({ workspaceId: a.workspaceId, secretId: b.mail.id }),
  },
  {
    name: "workflows.updateNode on A's workflow for B's node",
    run: (c) => c.workflows.updateNode({ workflowId: a.workflowId, nodeId: b.mailNodeId, name: 'Hijacked' }),
  },
  {
    name: "workflows.removeNode on A's workflow for B's node",
    run: (c) => c.workflows.removeNode({ workflowId: a.workflowId, nodeId: b.mailNodeId }),
  },
  {
    name: "workflows.updateNode selecting B's secret for A's node",
    run: (c) =>
      c.workflows.updateNode({ workflowId: a.workflowId, nodeId: a.mailNodeId, secretId: b.mail.id }),
  },
  {
    name: "workflows.updateNode selecting B's HTTP secret for A's HTTP node",
    run: (c) =>
      c.workflows.updateNode({ workflowId: a.workflowId, nodeId: a.apiNodeId, secretId: b.token.id }),
  },
];

/** Runs a call that must answer NOT_FOUND and checks that neither workspace changed. */
async function expectNotFoundAndNoChange(caller: Person['caller'], run: Case['run']) {
  const beforeB = await workspaceState(app.svc, b.owner, b.workspaceId);
  const beforeA = await workspaceState(app.svc, a.owner, a.workspaceId);
  const error = await rejection(run(caller));
  expect(error.code).toBe('NOT_FOUND');
  expect(await workspaceState(app.svc, b.owner, b.workspaceId)).toEqual(beforeB);
  expect(await workspaceState(app.svc, a.owner, a.workspaceId)).toEqual(beforeA);
}

describe("another workspace's objects", () => {
  it.each(foreignIdCases)(
    "A's owner calling $name with B's ids gets NOT_FOUND and B is unchanged",
    async ({ run }) => {
      await expectNotFoundAndNoChange(a.owner.caller, run);
    },
  );

  it.each(mixedIdCases)("A's owner calling $name gets NOT_FOUND and nothing changes", async ({ run }) => {
    await expectNotFoundAndNoChange(a.owner.caller, run);
  });

  it("selecting B's secret for A's node leaves A's node on its own secret", async () => {
    await rejection(
      a.owner.caller.workflows.updateNode({
        workflowId: a.workflowId,
        nodeId: a.mailNodeId,
        secretId: b.mail.id,
      }),
    );
    const workflow = await a.owner.caller.workflows.get({ workflowId: a.workflowId });
    expect(workflow.nodes.find((n) => n.id === a.mailNodeId)).toMatchObject({
      secretId: a.mail.id,
      status: 'ok',
    });
  });

  it("B's secrets never show up in A's lists, whatever the filter", async () => {
    const bIds = [b.mail.id, b.token.id];
    const lists = [
      await a.owner.caller.secrets.list({ workspaceId: a.workspaceId }),
      await a.owner.caller.secrets.list({ workspaceId: a.workspaceId, createdBy: b.member.user.id }),
      await a.owner.caller.secrets.list({ workspaceId: a.workspaceId, search: 'B ' }),
    ];
    for (const list of lists) {
      for (const item of list.items) expect(bIds).not.toContain(item.id);
    }
    expect(lists[1]?.items).toEqual([]);
    const selectable = await a.owner.caller.secrets.selectable({
      workspaceId: a.workspaceId,
      nodeType: 'sendgrid',
    });
    expect(selectable.map((s) => s.id)).toEqual([a.mail.id]);
    const workflows = await a.owner.caller.workflows.list({ workspaceId: a.workspaceId });
    expect(workflows.map((w) => w.id)).toEqual([a.workflowId]);
  });
});

describe('people outside a workspace', () => {
  let outsider: Person;
  beforeAll(async () => {
    outsider = await signedInUser(app.svc, 'Otto Outsider');
  });

  it.each(foreignIdCases)(
    'a signed-in non-member calling $name gets NOT_FOUND, not FORBIDDEN',
    async ({ run }) => {
      await expectNotFoundAndNoChange(outsider.caller, run);
    },
  );

  it('a removed member loses access at once and is answered NOT_FOUND', async () => {
    const { workspaceId, owner, member } = await teamWorkspace(app.svc);
    const { workflow } = await workflowWithNodes(owner, workspaceId, 'Shared', [
      { name: 'Notify', nodeType: 'slack' },
    ]);
    const secret = await createSecret(owner, workspaceId, 'slackBotToken', 'Team bot');
    await owner.caller.workspaces.removeMember({ workspaceId, userId: member.user.id });
    const calls = [
      () => member.caller.workspaces.get({ workspaceId }),
      () => member.caller.secrets.list({ workspaceId }),
      () => member.caller.secrets.selectable({ workspaceId, nodeType: 'slack' }),
      () => member.caller.secrets.usage({ workspaceId, secretId: secret.id }),
      () => member.caller.workflows.list({ workspaceId }),
      () => member.caller.workflows.get({ workflowId: workflow.id }),
      () => member.caller.workspaces.leave({ workspaceId }),
    ];
    for (const call of calls) expect((await rejection(call())).code).toBe('NOT_FOUND');
    expect((await member.caller.auth.me())?.workspaces.map((w) => w.id)).not.toContain(workspaceId);
  });

  it('ids that exist nowhere are answered exactly like ids of another workspace', async () => {
    const missing = 'does-not-exist';
    const foreign = await rejection(
      a.owner.caller.secrets.usage({ workspaceId: b.workspaceId, secretId: b.mail.id }),
    );
    const absent = await rejection(a.owner.caller.secrets.usage({ workspaceId: missing, secretId: missing }));
    expect([foreign.code, foreign.message]).toEqual([absent.code, absent.message]);
    const foreignFlow = await rejection(a.owner.caller.workflows.get({ workflowId: b.workflowId }));
    const absentFlow = await rejection(a.owner.caller.workflows.get({ workflowId: missing }));
    expect([foreignFlow.code, foreignFlow.message]).toEqual([absentFlow.code, absentFlow.message]);
    const foreignSecret = await rejection(
      a.owner.caller.secrets.delete({ workspaceId: a.workspaceId, secretId: b.mail.id }),
    );
    const absentSecret = await rejection(
      a.owner.caller.secrets.delete({ workspaceId: a.workspaceId, secretId: missing }),
    );
    expect([foreignSecret.code, foreignSecret.message]).toEqual([absentSecret.code, absentSecret.message]);
  });
});
