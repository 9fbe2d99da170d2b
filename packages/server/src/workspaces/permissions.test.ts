import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Role } from '../db/schema.js';
import {
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

interface Case {
  /** What the actor does, read after "may" / "may not". */
  action: string;
  run: (t: Team, actor: Person) => Promise<unknown>;
  allowed: Record<Role, boolean>;
  /** The action destroys something other rows rely on: when allowed, it runs on a team of its own. */
  destructive?: boolean;
}

const everyone = { owner: true, admin: true, member: true };
const managers = { owner: true, admin: true, member: false };
const ownersOnly = { owner: true, admin: false, member: false };

// DESIGN.md §6, one row per procedure and target.
const matrix: Case[] = [
  // Secrets
  {
    action: 'create a secret',
    run: (t, a) => createSecret(a, t.workspaceId, 'httpBearerToken', `New token of ${a.user.name}`),
    allowed: everyone,
  },
  {
    action: 'list secrets',
    run: (t, a) => a.caller.secrets.list({ workspaceId: t.workspaceId }),
    allowed: everyone,
  },
  {
    action: 'list the secrets selectable for a node type',
    run: (t, a) => a.caller.secrets.selectable({ workspaceId: t.workspaceId, nodeType: 'sendgrid' }),
    allowed: everyone,
  },
  {
    action: 'see where their own secret is used',
    run: (t, a) => a.caller.secrets.usage({ workspaceId: t.workspaceId, secretId: t.secret(a) }),
    allowed: everyone,
  },
  {
    action: "see where another member's secret is used",
    run: (t, a) => a.caller.secrets.usage({ workspaceId: t.workspaceId, secretId: t.secret(t.otherMember) }),
    allowed: managers,
  },
  {
    action: 'replace their own secret',
    run: (t, a) =>
      a.caller.secrets.replace({
        workspaceId: t.workspaceId,
        secretId: t.secret(a),
        data: FAKE_DATA.sendgridApiKey,
      }),
    allowed: everyone,
  },
  {
    action: "replace another member's secret",
    run: (t, a) =>
      a.caller.secrets.replace({
        workspaceId: t.workspaceId,
        secretId: t.secret(t.otherMember),
        data: FAKE_DATA.sendgridApiKey,
      }),
    allowed: managers,
  },
  {
    action: "replace an owner's secret",
    run: (t, a) =>
      a.caller.secrets.replace({
        workspaceId: t.workspaceId,
        secretId: t.secret(t.coOwner),
        data: FAKE_DATA.sendgridApiKey,
      }),
    allowed: managers,
  },
  {
    action: 'delete their own secret',
    run: (t, a) => a.caller.secrets.delete({ workspaceId: t.workspaceId, secretId: t.secret(a) }),
    allowed: everyone,
    destructive: true,
  },
  {
    action: "delete another member's secret",
    run: (t, a) => a.caller.secrets.delete({ workspaceId: t.workspaceId, secretId: t.secret(t.otherMember) }),
    allowed: managers,
    destructive: true,
  },
  {
    action: "delete an owner's secret",
    run: (t, a) => a.caller.secrets.delete({ workspaceId: t.workspaceId, secretId: t.secret(t.coOwner) }),
    allowed: managers,
    destructive: true,
  },
  // Members and roles
  {
    action: 'invite someone as a member',
    run: (t, a) =>
      a.caller.workspaces.invite({ workspaceId: t.workspaceId, email: fakeEmail('invitee'), role: 'member' }),
    allowed: managers,
  },
  {
    action: 'invite someone as an admin',
    run: (t, a) =>
      a.caller.workspaces.invite({ workspaceId: t.workspaceId, email: fakeEmail('invitee'), role: 'admin' }),
    allowed: managers,
  },
  {
    action: 'invite someone as an owner',
    run: (t, a) =>
      a.caller.workspaces.invite({ workspaceId: t.workspaceId, email: fakeEmail('invitee'), role: 'owner' }),
    allowed: ownersOnly,
  },
  {
    action: 'list pending invites',
    run: (t, a) => a.caller.workspaces.invites({ workspaceId: t.workspaceId }),
    allowed: managers,
  },
  {
    action: 'revoke an invite to join as a member',
    run: (t, a) =>
      a.caller.workspaces.revokeInvite({ workspaceId: t.workspaceId, inviteId: t.invite('member') }),
    allowed: managers,
    destructive: true,
  },
  {
    action: 'revoke an invite to join as an owner',
    run: (t, a) =>
      a.caller.workspaces.revokeInvite({ workspaceId: t.workspaceId, inviteId: t.invite('owner') }),
    allowed: ownersOnly,
    destructive: true,
  },
  {
    action: 'make a member an admin',
    run: (t, a) =>
      a.caller.workspaces.setRole({
        workspaceId: t.workspaceId,
        userId: t.otherMember.user.id,
        role: 'admin',
      }),
    allowed: managers,
    destructive: true,
  },
  {
    action: 'make an admin a member',
    run: (t, a) =>
      a.caller.workspaces.setRole({
        workspaceId: t.workspaceId,
        userId: t.otherAdmin.user.id,
        role: 'member',
      }),
    allowed: managers,
    destructive: true,
  },
  {
    action: "change an owner's role",
    run: (t, a) =>
      a.caller.workspaces.setRole({ workspaceId: t.workspaceId, userId: t.coOwner.user.id, role: 'admin' }),
    allowed: ownersOnly,
    destructive: true,
  },
  {
    action: 'make a member an owner',
    run: (t, a) =>
      a.caller.workspaces.setRole({
        workspaceId: t.workspaceId,
        userId: t.otherMember.user.id,
        role: 'owner',
      }),
    allowed: ownersOnly,
    destructive: true,
  },
  {
    action: 'make an admin an owner',
    run: (t, a) =>
      a.caller.workspaces.setRole({
        workspaceId: t.workspaceId,
        userId: t.otherAdmin.user.id,
        role: 'owner',
      }),
    allowed: ownersOnly,
    destructive: true,
  },
  {
    action: 'preview what removing a member deletes',
    run: (t, a) =>
      a.caller.workspaces.removalPreview({ workspaceId: t.workspaceId, userId: t.otherMember.user.id }),
    allowed: managers,
  },
  {
    action: 'remove a member',
    run: (t, a) =>
      a.caller.workspaces.removeMember({ workspaceId: t.workspaceId, userId: t.otherMember.user.id }),
    allowed: managers,
    destructive: true,
  },
  {
    action: 'remove an admin',
    run: (t, a) =>
      a.caller.workspaces.removeMember({ workspaceId: t.workspaceId, userId: t.otherAdmin.user.id }),
    allowed: managers,
    destructive: true,
  },
  {
    action: 'remove an owner',
    run: (t, a) =>
      a.caller.workspaces.removeMember({ workspaceId: t.workspaceId, userId: t.coOwner.user.id }),
    allowed: ownersOnly,
    destructive: true,
  },
  {
    action: 'see the workspace and its members',
    run: async (t, a) => {
      await a.caller.workspaces.get({ workspaceId: t.workspaceId });
      return a.caller.workspaces.members({ workspaceId: t.workspaceId });
    },
    allowed: everyone,
  },
  {
    action: 'leave the workspace',
    run: (t, a) => a.caller.workspaces.leave({ workspaceId: t.workspaceId }),
    allowed: everyone,
    destructive: true,
  },
  // Audit
  {
    action: 'read the audit log',
    run: (t, a) => a.caller.audit.list({ workspaceId: t.workspaceId }),
    allowed: managers,
  },
  // Workflows: every member builds workflows
  {
    action: 'create and list workflows',
    run: async (t, a) => {
      await a.caller.workflows.create({ workspaceId: t.workspaceId, name: 'Their workflow' });
      return a.caller.workflows.list({ workspaceId: t.workspaceId });
    },
    allowed: everyone,
  },
  {
    action: 'open a workflow',
    run: (t, a) => a.caller.workflows.get({ workflowId: t.workflowId }),
    allowed: everyone,
  },
  {
    action: 'add a node to a workflow',
    run: (t, a) =>
      a.caller.workflows.addNode({ workflowId: t.workflowId, name: 'Notify', nodeType: 'slack', params: {} }),
    allowed: everyone,
  },
  {
    action: 'rename a node and change its params',
    run: (t, a) =>
      a.caller.workflows.updateNode({
        workflowId: t.workflowId,
        nodeId: t.nodeId,
        name: 'Send a warm welcome',
        params: { subject: 'Welcome aboard' },
      }),
    allowed: everyone,
  },
  {
    action: "select an owner's secret for a node",
    run: (t, a) =>
      a.caller.workflows.updateNode({
        workflowId: t.workflowId,
        nodeId: t.nodeId,
        secretId: t.secret(t.coOwner),
      }),
    allowed: everyone,
  },
  {
    action: "clear a node's secret",
    run: (t, a) =>
      a.caller.workflows.updateNode({ workflowId: t.workflowId, nodeId: t.nodeId, secretId: null }),
    allowed: everyone,
  },
  {
    action: 'remove a node',
    run: (t, a) => a.caller.workflows.removeNode({ workflowId: t.workflowId, nodeId: t.nodeId }),
    allowed: everyone,
    destructive: true,
  },
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
      await expect(c.run(t, actor)).resolves.toBeDefined();
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
