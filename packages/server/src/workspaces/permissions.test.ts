import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../db/schema.js';
import {
  auditEvents,
  createSecret,
  fakeEmail,
  holdLocks,
  joinAs,
  type Person,
  personalWorkspaceOf,
  rejection,
  waitForLockWaiters,
  workflowWithNodes,
  workspaceState,
} from '../testing/fixtures.js';
import {
  createTestApp,
  FAKE_DATA,
  ownerDb,
  signedInUser,
  type TestApp,
  teamWorkspace,
  testBackend,
} from '../testing/harness.js';

let app: TestApp;
beforeAll(async () => {
  app = await createTestApp();
});
afterAll(() => app.close());

/**
 * A team workspace with, besides the owner, admin and member who act in the matrix, a second owner, a second
 * admin and a second member to act upon. Everyone who creates secrets has one SendGrid secret; a workflow
 * uses the second member's secret.
 */
async function matrixTeam() {
  const team = await teamWorkspace(app.svc);
  const { workspaceId, owner } = team;
  const coOwner = await joinAs(app.svc, owner, workspaceId, 'owner', 'Cora Co-owner');
  const otherAdmin = await joinAs(app.svc, owner, workspaceId, 'admin', 'Alan Other-admin');
  const otherMember = await joinAs(app.svc, owner, workspaceId, 'member', 'Max Other-member');
  const secretOf = new Map<Person, string>();
  for (const person of [owner, team.admin, team.member, coOwner, otherMember]) {
    const secret = await createSecret(person, workspaceId, 'sendgridApiKey', `${person.user.name} key`);
    secretOf.set(person, secret.id);
  }
  const { workflow, nodes } = await workflowWithNodes(owner, workspaceId, 'Onboarding', [
    { name: 'Send welcome email', nodeType: 'sendgrid', secretId: secretOf.get(otherMember) as string },
  ]);
  const actors: Record<Role, Person> = { owner, admin: team.admin, member: team.member };
  // Pending invites made by the owner, one per role, to revoke.
  const pendingInvite: Partial<Record<Role, string>> = {};
  for (const role of ['member', 'owner'] as const) {
    const email = fakeEmail(`pending-${role}`);
    await owner.caller.workspaces.invite({ workspaceId, email, role });
    const listed = await owner.caller.workspaces.invites({ workspaceId });
    pendingInvite[role] = listed.find((invite) => invite.email === email)?.id;
  }
  return {
    workspaceId,
    owner,
    coOwner,
    otherAdmin,
    otherMember,
    actors,
    workflowId: workflow.id,
    nodeId: (nodes[0] as { id: string }).id,
    secret: (person: Person) => secretOf.get(person) as string,
    invite: (role: 'member' | 'owner') => pendingInvite[role] as string,
  };
}

type Team = Awaited<ReturnType<typeof matrixTeam>>;

interface Case<R = unknown> {
  /** What the actor does, read after "may" / "may not". */
  action: string;
  run: (t: Team, actor: Person) => Promise<R>;
  allowed: Record<Role, boolean>;
  /** When allowed: what the call returned or changed, read back (mostly by the owner). */
  check: (t: Team, actor: Person, result: R) => Promise<void> | void;
  /** The action destroys something other rows rely on: when allowed, it runs on a team of its own. */
  destructive?: boolean;
}

/** A case with its `check` typed by what its `run` returns. */
const row = <R>(c: Case<R>) => c as Case;

const everyone = { owner: true, admin: true, member: true };
const managers = { owner: true, admin: true, member: false };
const ownersOnly = { owner: true, admin: false, member: false };

const allSecrets = async (t: Team) =>
  (await t.owner.caller.secrets.list({ workspaceId: t.workspaceId, limit: 100 })).items;
const ids = (items: readonly { id: string }[]) => items.map((item) => item.id).sort();
const pendingInvites = (t: Team) => t.owner.caller.workspaces.invites({ workspaceId: t.workspaceId });
const membersAsSeenBy = (reader: Person, t: Team) =>
  reader.caller.workspaces.members({ workspaceId: t.workspaceId });
const roleOf = async (t: Team, person: Person) =>
  (await membersAsSeenBy(t.owner, t)).find((m) => m.userId === person.user.id)?.role;
const theNode = (t: Team) =>
  t.owner.caller.workflows
    .get({ workflowId: t.workflowId })
    .then((workflow) => workflow.nodes.find((node) => node.id === t.nodeId));
/** The one node of the team's workflow, as secrets.usage and the removal results list it. */
const onboardingNode = (t: Team) => ({
  workflowId: t.workflowId,
  workflowName: 'Onboarding',
  nodeId: t.nodeId,
  nodeName: 'Send welcome email',
});
async function expectAudited(t: Team, action: string, actor: Person, targetId: string) {
  expect(await auditEvents(t.owner, t.workspaceId, action)).toContainEqual(
    expect.objectContaining({ actor: expect.objectContaining({ id: actor.user.id }), targetId }),
  );
}
/** An invitee's address per actor and role, so the check finds the invite the call made. */
const invitees = new Map<string, string>();
const inviteeOf = (actor: Person, role: Role) => {
  const key = `${actor.user.id}/${role}`;
  if (!invitees.has(key)) invitees.set(key, fakeEmail(`invitee-${role}`));
  return invitees.get(key) as string;
};
const invites = (role: Role): Case => {
  const a = role === 'owner' ? 'an owner' : `an ${role}`;
  return row({
    action: `invite someone as ${role === 'member' ? 'a member' : a}`,
    run: (t, actor) =>
      actor.caller.workspaces.invite({ workspaceId: t.workspaceId, email: inviteeOf(actor, role), role }),
    allowed: role === 'owner' ? ownersOnly : managers,
    check: async (t, actor, result) => {
      expect(result.token).toEqual(expect.any(String));
      expect(await pendingInvites(t)).toContainEqual(
        expect.objectContaining({
          email: inviteeOf(actor, role),
          role,
          invitedBy: expect.objectContaining({ id: actor.user.id }),
        }),
      );
    },
  });
};

// DESIGN.md §6, one row per procedure and target.
const matrix: Case[] = [
  // Secrets
  row({
    action: 'create a secret',
    run: (t, a) => createSecret(a, t.workspaceId, 'httpBearerToken', `New token of ${a.user.name}`),
    allowed: everyone,
    check: async (t, a, created) => {
      expect((await allSecrets(t)).find((s) => s.id === created.id)).toMatchObject({
        name: `New token of ${a.user.name}`,
        credentialType: 'httpBearerToken',
        createdBy: { id: a.user.id },
      });
    },
  }),
  row({
    action: 'list secrets',
    run: (t, a) => a.caller.secrets.list({ workspaceId: t.workspaceId }),
    allowed: everyone,
    // Managers see every secret; a member only their own.
    check: async (t, a, { items }) => {
      const everySecret = await allSecrets(t);
      const manager = a !== t.actors.member;
      expect(ids(items)).toEqual(ids(everySecret.filter((s) => manager || s.createdBy?.id === a.user.id)));
      expect(ids(items)).toContain(t.secret(a));
    },
  }),
  row({
    action: 'list the secrets selectable for a node type',
    run: (t, a) => a.caller.secrets.selectable({ workspaceId: t.workspaceId, nodeType: 'sendgrid' }),
    allowed: everyone,
    check: async (t, _a, selectable) => {
      expect(ids(selectable)).toEqual(
        ids((await allSecrets(t)).filter((s) => s.credentialType === 'sendgridApiKey')),
      );
      expect(selectable).toHaveLength(5);
    },
  }),
  row({
    action: 'see where their own secret is used',
    run: (t, a) => a.caller.secrets.usage({ workspaceId: t.workspaceId, secretId: t.secret(a) }),
    allowed: everyone,
    check: (_t, _a, usage) => expect(usage).toEqual([]),
  }),
  row({
    action: "see where another member's secret is used",
    run: (t, a) => a.caller.secrets.usage({ workspaceId: t.workspaceId, secretId: t.secret(t.otherMember) }),
    allowed: managers,
    check: (t, _a, usage) => expect(usage).toEqual([onboardingNode(t)]),
  }),
  ...(
    [
      ['their own secret', (t: Team, a: Person) => t.secret(a)],
      ["another member's secret", (t: Team) => t.secret(t.otherMember)],
      ["an owner's secret", (t: Team) => t.secret(t.coOwner)],
    ] as const
  ).map(([whose, secretOf], i) =>
    row({
      action: `replace ${whose}`,
      run: (t, a) =>
        a.caller.secrets.replace({
          workspaceId: t.workspaceId,
          secretId: secretOf(t, a),
          data: FAKE_DATA.sendgridApiKey,
        }),
      allowed: i === 0 ? everyone : managers,
      // Replaced in place: the same id, still listed, and the replacement is on record with its actor.
      check: async (t, a) => {
        expect(ids(await allSecrets(t))).toContain(secretOf(t, a));
        await expectAudited(t, 'secret.replaced', a, secretOf(t, a));
      },
    }),
  ),
  ...(
    [
      ['their own secret', (t: Team, a: Person) => t.secret(a), false],
      ["another member's secret", (t: Team) => t.secret(t.otherMember), true],
      ["an owner's secret", (t: Team) => t.secret(t.coOwner), false],
    ] as const
  ).map(([whose, secretOf, usedByTheWorkflow], i) =>
    row({
      action: `delete ${whose}`,
      run: (t, a) => a.caller.secrets.delete({ workspaceId: t.workspaceId, secretId: secretOf(t, a) }),
      allowed: i === 0 ? everyone : managers,
      destructive: true,
      check: async (t, a, result) => {
        expect(result.affectedNodes).toEqual(usedByTheWorkflow ? [onboardingNode(t)] : []);
        expect(ids(await allSecrets(t))).not.toContain(secretOf(t, a));
        await expectAudited(t, 'secret.deleted', a, secretOf(t, a));
      },
    }),
  ),
  // Members and roles
  invites('member'),
  invites('admin'),
  invites('owner'),
  row({
    action: 'list pending invites',
    run: (t, a) => a.caller.workspaces.invites({ workspaceId: t.workspaceId }),
    allowed: managers,
    check: (t, _a, listed) => {
      expect(ids(listed)).toEqual(expect.arrayContaining([t.invite('member'), t.invite('owner')]));
    },
  }),
  ...(['member', 'owner'] as const).map((role) =>
    row({
      action: `revoke an invite to join as ${role === 'owner' ? 'an owner' : 'a member'}`,
      run: (t, a) =>
        a.caller.workspaces.revokeInvite({ workspaceId: t.workspaceId, inviteId: t.invite(role) }),
      allowed: role === 'owner' ? ownersOnly : managers,
      destructive: true,
      check: async (t, _a, result) => {
        expect(result).toEqual({ id: t.invite(role) });
        expect(ids(await pendingInvites(t))).not.toContain(t.invite(role));
      },
    }),
  ),
  ...(
    [
      ['make a member an admin', (t: Team) => t.otherMember, 'admin', managers],
      ['make an admin a member', (t: Team) => t.otherAdmin, 'member', managers],
      ["change an owner's role", (t: Team) => t.coOwner, 'admin', ownersOnly],
      ['make a member an owner', (t: Team) => t.otherMember, 'owner', ownersOnly],
      ['make an admin an owner', (t: Team) => t.otherAdmin, 'owner', ownersOnly],
    ] as const
  ).map(([action, target, role, allowed]) =>
    row({
      action,
      run: (t, a) =>
        a.caller.workspaces.setRole({ workspaceId: t.workspaceId, userId: target(t).user.id, role }),
      allowed,
      destructive: true,
      check: async (t, _a, result) => {
        expect(result).toEqual({ userId: target(t).user.id, role });
        expect(await roleOf(t, target(t))).toBe(role);
      },
    }),
  ),
  row({
    action: 'preview what removing a member deletes',
    run: (t, a) =>
      a.caller.workspaces.removalPreview({ workspaceId: t.workspaceId, userId: t.otherMember.user.id }),
    allowed: managers,
    // Their one secret, and the node that uses it.
    check: (t, _a, preview) => expect(preview).toEqual({ secrets: 1, nodes: [onboardingNode(t)] }),
  }),
  ...(
    [
      ['remove a member', (t: Team) => t.otherMember, managers, 1, true],
      ['remove an admin', (t: Team) => t.otherAdmin, managers, 0, false],
      ['remove an owner', (t: Team) => t.coOwner, ownersOnly, 1, false],
    ] as const
  ).map(([action, target, allowed, deletedSecrets, usedByTheWorkflow]) =>
    row({
      action,
      run: (t, a) =>
        a.caller.workspaces.removeMember({ workspaceId: t.workspaceId, userId: target(t).user.id }),
      allowed,
      destructive: true,
      check: async (t, _a, result) => {
        expect(result).toEqual({
          deletedSecrets,
          affectedNodes: usedByTheWorkflow ? [onboardingNode(t)] : [],
        });
        expect((await membersAsSeenBy(t.owner, t)).map((m) => m.userId)).not.toContain(target(t).user.id);
      },
    }),
  ),
  row({
    action: 'see the workspace and its members',
    run: async (t, a) => ({
      workspace: await a.caller.workspaces.get({ workspaceId: t.workspaceId }),
      members: await a.caller.workspaces.members({ workspaceId: t.workspaceId }),
    }),
    allowed: everyone,
    check: (t, _a, { workspace, members }) => {
      expect(workspace.id).toBe(t.workspaceId);
      const roles = [
        [t.owner, 'owner'],
        [t.coOwner, 'owner'],
        [t.actors.admin, 'admin'],
        [t.otherAdmin, 'admin'],
        [t.actors.member, 'member'],
        [t.otherMember, 'member'],
      ] as const;
      expect(members.map((m) => [m.userId, m.role]).sort()).toEqual(
        roles.map(([person, role]) => [person.user.id, role]).sort(),
      );
    },
  }),
  row({
    action: 'leave the workspace',
    run: (t, a) => a.caller.workspaces.leave({ workspaceId: t.workspaceId }),
    allowed: everyone,
    destructive: true,
    // Read by the second owner: the first may be the one who left.
    check: async (t, a) => {
      const members = (await membersAsSeenBy(t.coOwner, t)).map((m) => m.userId);
      expect(members).not.toContain(a.user.id);
      expect(members).toHaveLength(5);
      // Their secrets go with them.
      const { items } = await t.coOwner.caller.secrets.list({ workspaceId: t.workspaceId, limit: 100 });
      expect(ids(items)).not.toContain(t.secret(a));
    },
  }),
  // Audit
  row({
    action: 'read the audit log',
    run: (t, a) => a.caller.audit.list({ workspaceId: t.workspaceId }),
    allowed: managers,
    check: (t, _a, { items }) => {
      expect(items).toContainEqual(
        expect.objectContaining({
          action: 'secret.created',
          targetId: t.secret(t.otherMember),
          actor: expect.objectContaining({ id: t.otherMember.user.id }),
        }),
      );
    },
  }),
  // Workflows: every member builds workflows
  row({
    action: 'create and list workflows',
    run: async (t, a) => ({
      created: await a.caller.workflows.create({ workspaceId: t.workspaceId, name: 'Their workflow' }),
      listed: await a.caller.workflows.list({ workspaceId: t.workspaceId }),
    }),
    allowed: everyone,
    check: (t, _a, { created, listed }) => {
      expect(created.name).toBe('Their workflow');
      expect(listed.map((w) => w.id)).toEqual(expect.arrayContaining([t.workflowId, created.id]));
    },
  }),
  row({
    action: 'open a workflow',
    run: (t, a) => a.caller.workflows.get({ workflowId: t.workflowId }),
    allowed: everyone,
    check: (t, _a, workflow) => {
      expect(workflow).toMatchObject({ id: t.workflowId, workspaceId: t.workspaceId, name: 'Onboarding' });
      expect(workflow.nodes.map((n) => n.id)).toContain(t.nodeId);
    },
  }),
  row({
    action: 'add a node to a workflow',
    run: (t, a) =>
      a.caller.workflows.addNode({ workflowId: t.workflowId, name: 'Notify', nodeType: 'slack', params: {} }),
    allowed: everyone,
    check: async (t, _a, node) => {
      const { nodes } = await t.owner.caller.workflows.get({ workflowId: t.workflowId });
      expect(nodes.find((n) => n.id === node.id)).toMatchObject({
        name: 'Notify',
        nodeType: 'slack',
        secretId: null,
      });
    },
  }),
  row({
    action: 'rename a node and change its params',
    run: (t, a) =>
      a.caller.workflows.updateNode({
        workflowId: t.workflowId,
        nodeId: t.nodeId,
        name: 'Send a warm welcome',
        params: { subject: 'Welcome aboard' },
      }),
    allowed: everyone,
    check: async (t) => {
      expect(await theNode(t)).toMatchObject({
        name: 'Send a warm welcome',
        params: { subject: 'Welcome aboard' },
      });
    },
  }),
  row({
    action: "select an owner's secret for a node",
    run: (t, a) =>
      a.caller.workflows.updateNode({
        workflowId: t.workflowId,
        nodeId: t.nodeId,
        secretId: t.secret(t.coOwner),
      }),
    allowed: everyone,
    check: async (t) => {
      expect(await theNode(t)).toMatchObject({ secretId: t.secret(t.coOwner) });
    },
  }),
  row({
    action: "clear a node's secret",
    run: (t, a) =>
      a.caller.workflows.updateNode({ workflowId: t.workflowId, nodeId: t.nodeId, secretId: null }),
    allowed: everyone,
    check: async (t) => {
      expect(await theNode(t)).toMatchObject({ secretId: null, status: 'needs-credential' });
    },
  }),
  row({
    action: 'remove a node',
    run: (t, a) => a.caller.workflows.removeNode({ workflowId: t.workflowId, nodeId: t.nodeId }),
    allowed: everyone,
    destructive: true,
    check: async (t) => {
      expect(await theNode(t)).toBeUndefined();
    },
  }),
];

const article = (role: Role) => (role === 'owner' || role === 'admin' ? `an ${role}` : `a ${role}`);

const rows = matrix.flatMap((c) =>
  (['owner', 'admin', 'member'] as const).map((role) => ({
    name: `${article(role)} ${c.allowed[role] ? 'may' : 'may not'} ${c.action}`,
    role,
    c,
  })),
);

describe('the role table (DESIGN.md §6)', () => {
  // Refused calls and harmless ones share one team (a refused call is checked to change nothing).
  let shared: Promise<Team> | undefined;

  it.each(rows)('$name', async ({ role, c }) => {
    shared ??= matrixTeam();
    const t = c.destructive && c.allowed[role] ? await matrixTeam() : await shared;
    const actor = t.actors[role];
    if (c.allowed[role]) {
      await c.check(t, actor, await c.run(t, actor));
    } else {
      const before = await workspaceState(app.svc, t.owner, t.workspaceId);
      const error = await rejection(c.run(t, actor));
      expect(error.code).toBe('FORBIDDEN');
      expect(await workspaceState(app.svc, t.owner, t.workspaceId)).toEqual(before);
    }
  });
});

describe('seeing and selecting secrets', () => {
  let t: Team;
  beforeAll(async () => {
    t = await matrixTeam();
  });

  it('owners and admins see every secret of the workspace with its creator', async () => {
    const expected = [t.owner, t.actors.admin, t.actors.member, t.coOwner, t.otherMember]
      .map((p) => t.secret(p))
      .sort();
    for (const manager of [t.owner, t.actors.admin, t.coOwner, t.otherAdmin]) {
      const { items } = await manager.caller.secrets.list({ workspaceId: t.workspaceId });
      expect(items.map((s) => s.id).sort()).toEqual(expected);
      const mine = items.find((s) => s.id === t.secret(t.otherMember));
      expect(mine?.createdBy).toEqual({
        id: t.otherMember.user.id,
        name: 'Max Other-member',
        email: t.otherMember.email,
      });
    }
  });

  it('members see only the secrets they created, even when filtering by another creator', async () => {
    const member = t.actors.member;
    const { items } = await member.caller.secrets.list({ workspaceId: t.workspaceId });
    expect(items.map((s) => s.id)).toEqual([t.secret(member)]);
    const filtered = await member.caller.secrets.list({
      workspaceId: t.workspaceId,
      createdBy: t.owner.user.id,
    });
    expect(filtered.items).toEqual([]);
    const searched = await member.caller.secrets.list({
      workspaceId: t.workspaceId,
      search: 'key',
      nodeType: 'sendgrid',
    });
    expect(searched.items.map((s) => s.id)).toEqual([t.secret(member)]);
  });

  it("a member can select any workspace secret of the node's type, including another member's", async () => {
    const member = t.actors.member;
    const selectable = await member.caller.secrets.selectable({
      workspaceId: t.workspaceId,
      nodeType: 'sendgrid',
    });
    expect(selectable.map((s) => s.id).sort()).toEqual(
      [t.owner, t.actors.admin, member, t.coOwner, t.otherMember].map((p) => t.secret(p)).sort(),
    );
    expect(selectable.every((s) => s.credentialType === 'sendgridApiKey')).toBe(true);

    const { workflow, nodes } = await workflowWithNodes(member, t.workspaceId, 'Member flow', [
      { name: 'Mail customers', nodeType: 'sendgrid' },
    ]);
    const nodeId = (nodes[0] as { id: string }).id;
    const node = await member.caller.workflows.updateNode({
      workflowId: workflow.id,
      nodeId,
      secretId: t.secret(t.otherMember),
    });
    expect(node).toMatchObject({ secretId: t.secret(t.otherMember), status: 'ok' });
    const reread = await member.caller.workflows.get({ workflowId: workflow.id });
    expect(reread.nodes[0]?.secretId).toBe(t.secret(t.otherMember));
  });

  it('a member who may select a secret still may not replace, delete or inspect it', async () => {
    const member = t.actors.member;
    const secretId = t.secret(t.otherMember);
    const calls = [
      () =>
        member.caller.secrets.replace({
          workspaceId: t.workspaceId,
          secretId,
          data: FAKE_DATA.sendgridApiKey,
        }),
      () => member.caller.secrets.delete({ workspaceId: t.workspaceId, secretId }),
      () => member.caller.secrets.usage({ workspaceId: t.workspaceId, secretId }),
    ];
    for (const call of calls) {
      expect((await rejection(call())).code).toBe('FORBIDDEN');
    }
    const { items } = await t.owner.caller.secrets.list({ workspaceId: t.workspaceId });
    expect(items.map((s) => s.id)).toContain(secretId);
  });
});

describe('the last owner', () => {
  const ownerRole = async (reader: Person, workspaceId: string, userId: string) =>
    (await reader.caller.workspaces.members({ workspaceId })).find((m) => m.userId === userId)?.role;

  it('cannot leave, be removed or be demoted', async () => {
    const { workspaceId, owner, admin } = await teamWorkspace(app.svc);
    expect((await rejection(owner.caller.workspaces.leave({ workspaceId }))).code).toBe('FORBIDDEN');
    expect(
      (await rejection(owner.caller.workspaces.removeMember({ workspaceId, userId: owner.user.id }))).code,
    ).toBe('FORBIDDEN');
    expect(
      (await rejection(admin.caller.workspaces.removeMember({ workspaceId, userId: owner.user.id }))).code,
    ).toBe('FORBIDDEN');
    for (const role of ['admin', 'member'] as const) {
      const error = await rejection(
        owner.caller.workspaces.setRole({ workspaceId, userId: owner.user.id, role }),
      );
      expect(error.code).toBe('FORBIDDEN');
    }
    expect(await ownerRole(owner, workspaceId, owner.user.id)).toBe('owner');
  });

  it('cannot leave a personal workspace', async () => {
    const person = await signedInUser(app.svc, 'Solo Person');
    const workspaceId = await personalWorkspaceOf(person);
    expect((await rejection(person.caller.workspaces.leave({ workspaceId }))).code).toBe('FORBIDDEN');
    expect((await person.caller.workspaces.list()).map((w) => w.id)).toContain(workspaceId);
  });

  it('can step down once a second owner exists', async () => {
    const { workspaceId, owner, admin } = await teamWorkspace(app.svc);
    await owner.caller.workspaces.setRole({ workspaceId, userId: admin.user.id, role: 'owner' });
    await owner.caller.workspaces.setRole({ workspaceId, userId: owner.user.id, role: 'member' });
    expect(await ownerRole(admin, workspaceId, owner.user.id)).toBe('member');
    // Now the former admin is the last owner, and is protected in turn.
    expect(
      (
        await rejection(
          admin.caller.workspaces.setRole({ workspaceId, userId: admin.user.id, role: 'admin' }),
        )
      ).code,
    ).toBe('FORBIDDEN');
  });

  it('can leave once a second owner exists', async () => {
    const { workspaceId, owner, admin } = await teamWorkspace(app.svc);
    await owner.caller.workspaces.setRole({ workspaceId, userId: admin.user.id, role: 'owner' });
    await owner.caller.workspaces.leave({ workspaceId });
    expect((await admin.caller.workspaces.members({ workspaceId })).map((m) => m.userId)).not.toContain(
      owner.user.id,
    );
    expect((await rejection(admin.caller.workspaces.leave({ workspaceId }))).code).toBe('FORBIDDEN');
  });

  it('can be removed by a second owner', async () => {
    const { workspaceId, owner, admin } = await teamWorkspace(app.svc);
    await owner.caller.workspaces.setRole({ workspaceId, userId: admin.user.id, role: 'owner' });
    await admin.caller.workspaces.removeMember({ workspaceId, userId: owner.user.id });
    expect((await admin.caller.workspaces.members({ workspaceId })).map((m) => m.userId)).not.toContain(
      owner.user.id,
    );
  });

  /**
   * Two owners of a team act against each other at the same instant. On PostgreSQL both requests are lined
   * up behind a transaction holding the owners' user rows and let go together; PGlite runs one transaction
   * at a time, so there they simply follow each other.
   */
  async function ownersRace(kind: 'leave' | 'demote') {
    const { workspaceId, owner, admin } = await teamWorkspace(app.svc);
    await owner.caller.workspaces.setRole({ workspaceId, userId: admin.user.id, role: 'owner' });
    const calls = () =>
      kind === 'leave'
        ? [owner.caller.workspaces.leave({ workspaceId }), admin.caller.workspaces.leave({ workspaceId })]
        : [
            owner.caller.workspaces.setRole({ workspaceId, userId: admin.user.id, role: 'member' }),
            admin.caller.workspaces.setRole({ workspaceId, userId: owner.user.id, role: 'member' }),
          ];
    let results: PromiseSettledResult<unknown>[];
    if (testBackend() === 'postgres') {
      // Both requests queue on the workspace's membership lock (held here), then run one after the other.
      const gate = await holdLocks(app.svc, (trx) =>
        trx.selectFrom('workspaces').select('id').where('id', '=', workspaceId).forUpdate().execute(),
      );
      const settled = Promise.allSettled(calls());
      try {
        await waitForLockWaiters(app.svc, 2);
      } finally {
        await gate.release();
      }
      results = await settled;
    } else {
      results = await Promise.allSettled(calls());
    }
    const owners = await ownerDb(app.svc)
      .selectFrom('memberships')
      .select('user_id')
      .where('workspace_id', '=', workspaceId)
      .where('role', '=', 'owner')
      .execute();
    const refusals = results
      .filter((r): r is PromiseRejectedResult => r.status === 'rejected')
      .map((r) => r.reason);
    return {
      succeeded: results.filter((r) => r.status === 'fulfilled').length,
      refusals,
      owners: owners.length,
    };
  }

  it.each(['leave', 'demote'] as const)(
    'two owners who %s at the same moment leave exactly one owner',
    async (kind) => {
      const race = await ownersRace(kind);
      expect(race.succeeded).toBe(1);
      expect(race.refusals).toHaveLength(1);
      expect(race.owners).toBe(1);
    },
  );

  // Membership changes take the workspace lock first, so two owners acting against each other queue instead of
  // deadlocking, and the second is told why it cannot proceed.
  it.each(['leave', 'demote'] as const)(
    'the owner who loses a race to %s is told FORBIDDEN, not a server error',
    async (kind) => {
      const race = await ownersRace(kind);
      expect(race.refusals.map((e: { code?: string }) => e.code)).toEqual(['FORBIDDEN']);
    },
  );

  it('an admin cannot make themselves an owner', async () => {
    const { workspaceId, owner, admin } = await teamWorkspace(app.svc);
    const error = await rejection(
      admin.caller.workspaces.setRole({ workspaceId, userId: admin.user.id, role: 'owner' }),
    );
    expect(error.code).toBe('FORBIDDEN');
    expect(await ownerRole(owner, workspaceId, admin.user.id)).toBe('admin');
  });

  it('nobody removes themselves with removeMember: leaving is its own action', async () => {
    const { workspaceId, owner, admin } = await teamWorkspace(app.svc);
    const error = await rejection(
      admin.caller.workspaces.removeMember({ workspaceId, userId: admin.user.id }),
    );
    expect(error.code).toBe('FORBIDDEN');
    expect(await ownerRole(owner, workspaceId, admin.user.id)).toBe('admin');
  });
});

describe('personal workspaces', () => {
  it.each(['member', 'admin', 'owner'] as const)('refuse an invite with the %s role', async (role) => {
    const person = await signedInUser(app.svc, 'Solo Person');
    const workspaceId = await personalWorkspaceOf(person);
    const error = await rejection(
      person.caller.workspaces.invite({ workspaceId, email: fakeEmail('friend'), role }),
    );
    expect(error.code).toBe('FORBIDDEN');
    const invites = await ownerDb(app.svc)
      .selectFrom('invites')
      .select('id')
      .where('workspace_id', '=', workspaceId)
      .execute();
    expect(invites).toEqual([]);
  });
});
