import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEvents, rejection, whileAuditIsDown, workspaceState } from '../testing/fixtures.js';
import { createTestApp, FAKE_DATA, type TestApp, teamWorkspace } from '../testing/harness.js';

// Issue 16, section 3: secrets can be renamed — same id and value, audited, a clash is a field error on Name.

let app: TestApp;
beforeAll(async () => {
  app = await createTestApp();
});
afterAll(() => app.close());

async function teamWithSecret(by: 'owner' | 'member' = 'member') {
  const team = await teamWorkspace(app.svc);
  const secret = await team[by].caller.secrets.create({
    workspaceId: team.workspaceId,
    credentialType: 'sendgridApiKey',
    name: 'Marketing',
    data: FAKE_DATA.sendgridApiKey,
  });
  return { ...team, secret };
}

describe('secrets.rename', () => {
  it('renames in place: same id, nodes keep it, the value is not touched, one secret.renamed event', async () => {
    const { workspaceId, owner, member, secret } = await teamWithSecret();
    const workflow = await owner.caller.workflows.create({ workspaceId, name: 'Welcome' });
    const node = await owner.caller.workflows.addNode({
      workflowId: workflow.id,
      name: 'Send',
      nodeType: 'sendgrid',
      params: {},
    });
    await owner.caller.workflows.updateNode({
      workflowId: workflow.id,
      nodeId: node.id,
      secretId: secret.id,
    });

    const renamed = await member.caller.secrets.rename({
      workspaceId,
      secretId: secret.id,
      name: ' Newsletters ',
    });
    expect(renamed).toMatchObject({ id: secret.id, name: 'Newsletters', updatedAt: secret.updatedAt });
    const listed = (await owner.caller.secrets.list({ workspaceId })).items.find((s) => s.id === secret.id);
    expect(listed?.name).toBe('Newsletters');
    expect((await owner.caller.workflows.get({ workflowId: workflow.id })).nodes[0]).toMatchObject({
      secretId: secret.id,
      status: 'ok',
    });
    const events = await auditEvents(owner, workspaceId, 'secret.renamed');
    expect(events).toEqual([
      expect.objectContaining({
        actor: expect.objectContaining({ id: member.user.id }),
        targetId: secret.id,
        targetName: 'Newsletters',
        details: { credentialType: 'sendgridApiKey', from: 'Marketing', to: 'Newsletters' },
      }),
    ]);
    // The same name again changes nothing and records nothing.
    await member.caller.secrets.rename({ workspaceId, secretId: secret.id, name: 'Newsletters' });
    expect(await auditEvents(owner, workspaceId, 'secret.renamed')).toHaveLength(1);
  });

  it('a name its type already uses is a field error on name, and changes nothing', async () => {
    const { workspaceId, owner, secret } = await teamWithSecret();
    await owner.caller.secrets.create({
      workspaceId,
      credentialType: 'sendgridApiKey',
      name: 'Transactional',
      data: FAKE_DATA.sendgridApiKey,
    });
    const before = await workspaceState(app.svc, owner, workspaceId);
    const error = await rejection(
      owner.caller.secrets.rename({ workspaceId, secretId: secret.id, name: 'Transactional' }),
    );
    expect(error.code).toBe('BAD_REQUEST');
    expect((error.cause as { issues?: unknown }).issues).toEqual([
      {
        path: ['name'],
        message: "Another secret of this type is already named 'Transactional'. Choose another name.",
      },
    ]);
    expect(await workspaceState(app.svc, owner, workspaceId)).toEqual(before);
    // Another type may use the name.
    await owner.caller.secrets.create({
      workspaceId,
      credentialType: 'httpBearerToken',
      name: 'Other type',
      data: FAKE_DATA.httpBearerToken,
    });
    expect(
      (await owner.caller.secrets.rename({ workspaceId, secretId: secret.id, name: 'Other type' })).name,
    ).toBe('Other type');
  });

  it('follows the manage rule: another member is FORBIDDEN, an admin may; a stranger gets NOT_FOUND', async () => {
    const { workspaceId, owner, admin, member, secret } = await teamWithSecret('owner');
    const before = await workspaceState(app.svc, owner, workspaceId);
    expect(
      (await rejection(member.caller.secrets.rename({ workspaceId, secretId: secret.id, name: 'Mine' })))
        .code,
    ).toBe('FORBIDDEN');
    const other = await teamWorkspace(app.svc);
    expect(
      (await rejection(other.owner.caller.secrets.rename({ workspaceId, secretId: secret.id, name: 'Mine' })))
        .code,
    ).toBe('NOT_FOUND');
    expect(await workspaceState(app.svc, owner, workspaceId)).toEqual(before);
    expect((await admin.caller.secrets.rename({ workspaceId, secretId: secret.id, name: 'Ops' })).name).toBe(
      'Ops',
    );
  });

  it('refuses a blank or control-character name with a field error on name', async () => {
    const { workspaceId, member, secret } = await teamWithSecret();
    for (const name of ['   ', 'bad\u0007name']) {
      const error = await rejection(member.caller.secrets.rename({ workspaceId, secretId: secret.id, name }));
      expect(error.code).toBe('BAD_REQUEST');
      expect(JSON.stringify((error.cause as { issues?: unknown }).issues)).toContain('"name"');
    }
  });

  it('is all or nothing: when the audit write fails, the name stays', async () => {
    const { workspaceId, owner, secret } = await teamWithSecret();
    await whileAuditIsDown(app.svc, async () => {
      await expect(
        owner.caller.secrets.rename({ workspaceId, secretId: secret.id, name: 'Lost' }),
      ).rejects.toThrow();
    });
    const listed = (await owner.caller.secrets.list({ workspaceId })).items.find((s) => s.id === secret.id);
    expect(listed?.name).toBe('Marketing');
  });
});
