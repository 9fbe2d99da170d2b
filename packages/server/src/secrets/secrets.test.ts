import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, FAKE_DATA, signedInUser, type TestApp, teamWorkspace } from '../testing/harness.js';

let app: TestApp;
beforeAll(async () => {
  app = await createTestApp();
});
afterAll(() => app.close());

describe('secrets', () => {
  it('creates a secret of every credential type and never returns its value', async () => {
    const { caller, user } = await signedInUser(app.svc);
    const me = await caller.auth.me();
    const workspaceId = me?.workspaces[0]?.id as string;
    for (const [credentialType, data] of Object.entries(FAKE_DATA)) {
      const meta = await caller.secrets.create({
        workspaceId,
        credentialType,
        name: `My ${credentialType}`,
        data,
      });
      expect(meta.credentialType).toBe(credentialType);
      expect(meta.createdBy.id).toBe(user.id);
      const body = JSON.stringify(meta);
      for (const [field, value] of Object.entries(data)) {
        const secret = app.svc.registry
          .describe()
          .flatMap((i) => i.credentialTypes)
          .find((c) => c.type === credentialType)
          ?.secretFields.includes(field);
        if (secret) expect(body).not.toContain(value);
      }
    }
    const list = await caller.secrets.list({ workspaceId });
    expect(list.items).toHaveLength(Object.keys(FAKE_DATA).length);
  });

  it('refuses a duplicate name for the same credential type with CONFLICT', async () => {
    const { caller } = await signedInUser(app.svc);
    const workspaceId = (await caller.auth.me())?.workspaces[0]?.id as string;
    const input = {
      workspaceId,
      credentialType: 'sendgridApiKey',
      name: 'Marketing',
      data: FAKE_DATA.sendgridApiKey,
    };
    await caller.secrets.create(input);
    await expect(caller.secrets.create(input)).rejects.toMatchObject({ code: 'CONFLICT' });
  });

  it('paginates with a keyset cursor without repeating or skipping', async () => {
    const { caller } = await signedInUser(app.svc);
    const workspaceId = (await caller.auth.me())?.workspaces[0]?.id as string;
    for (let i = 0; i < 7; i++) {
      await caller.secrets.create({
        workspaceId,
        credentialType: 'httpBearerToken',
        name: `Token ${i}`,
        data: FAKE_DATA.httpBearerToken,
      });
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await caller.secrets.list({ workspaceId, limit: 3, ...(cursor ? { cursor } : {}) });
      seen.push(...page.items.map((s) => s.name));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(seen).toHaveLength(7);
    expect(new Set(seen).size).toBe(7);
  });

  it('deletes the secrets of a member who is removed, and flags the nodes that used them', async () => {
    const { workspaceId, owner, member } = await teamWorkspace(app.svc);
    const secret = await member.caller.secrets.create({
      workspaceId,
      credentialType: 'sendgridApiKey',
      name: 'Mia key',
      data: FAKE_DATA.sendgridApiKey,
    });
    const workflow = await owner.caller.workflows.create({ workspaceId, name: 'Welcome' });
    const node = await owner.caller.workflows.addNode({
      workflowId: workflow.id,
      name: 'Send welcome email',
      nodeType: 'sendgrid',
      params: {},
    });
    await owner.caller.workflows.updateNode({
      workflowId: workflow.id,
      nodeId: node.id,
      secretId: secret.id,
    });

    const result = await owner.caller.workspaces.removeMember({ workspaceId, userId: member.user.id });
    expect(result.deletedSecrets).toBe(1);
    expect(result.affectedNodes).toEqual([
      { workflowId: workflow.id, workflowName: 'Welcome', nodeId: node.id, nodeName: 'Send welcome email' },
    ]);
    const after = await owner.caller.workflows.get({ workflowId: workflow.id });
    expect(after.nodes[0]).toMatchObject({
      status: 'needs-credential',
      secretId: null,
      lostSecretName: 'Mia key',
    });
    expect((await owner.caller.secrets.list({ workspaceId })).items.map((s) => s.id)).not.toContain(
      secret.id,
    );
    await expect(member.caller.secrets.list({ workspaceId })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});
