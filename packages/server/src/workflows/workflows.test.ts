import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plugins } from '../plugins.js';
import {
  createSecret,
  issuesOf,
  NODE_TYPE_OF,
  type Person,
  rejection,
  workflowWithNodes,
} from '../testing/fixtures.js';
import { createTestApp, FAKE_DATA, type TestApp, teamWorkspace } from '../testing/harness.js';

let app: TestApp;
let owner: Person;
let member: Person;
let workspaceId: string;
/** One secret of every credential type, by credential type. */
const secretOfType: Record<string, string> = {};

beforeAll(async () => {
  app = await createTestApp();
  const team = await teamWorkspace(app.svc);
  ({ owner, member, workspaceId } = team);
  for (const credentialType of Object.keys(FAKE_DATA)) {
    secretOfType[credentialType] = (
      await createSecret(owner, workspaceId, credentialType, `Shared ${credentialType}`)
    ).id;
  }
});
afterAll(() => app.close());

const HTTP_TYPES = ['httpBasicAuth', 'httpBearerToken', 'httpHeaderAuth', 'httpQueryAuth'];
/** Every node type the server offers (from the plugins, so a new plugin's node is covered). */
const NODE_TYPES = plugins.map((plugin) => plugin.nodeType);

async function emptyWorkflow(name = 'Flow') {
  return owner.caller.workflows.create({ workspaceId, name });
}

describe('adding nodes', () => {
  it('adds nodes in order, each without a credential until one is selected', async () => {
    const workflow = await emptyWorkflow('Ordered');
    await owner.caller.workflows.addNode({
      workflowId: workflow.id,
      name: 'First',
      nodeType: 'httpRequest',
      params: {},
    });
    await owner.caller.workflows.addNode({
      workflowId: workflow.id,
      name: 'Second',
      nodeType: 'sendgrid',
      params: { subject: 'Welcome', to: 'someone@example.test' },
    });
    const got = await owner.caller.workflows.get({ workflowId: workflow.id });
    expect(got).toMatchObject({ id: workflow.id, workspaceId, name: 'Ordered' });
    expect(got.nodes.map((n) => n.name)).toEqual(['First', 'Second']);
    expect(got.nodes[1]).toMatchObject({
      nodeType: 'sendgrid',
      params: { subject: 'Welcome', to: 'someone@example.test' },
      secretId: null,
      status: 'needs-credential',
    });
    expect(got.nodes[1]).not.toHaveProperty('lostSecretName');
  });

  it('refuses an unknown node type with BAD_REQUEST on the nodeType field', async () => {
    const workflow = await emptyWorkflow();
    const error = await rejection(
      owner.caller.workflows.addNode({
        workflowId: workflow.id,
        name: 'Mystery',
        nodeType: 'carrierPigeon',
        params: {},
      }),
    );
    expect(error.code).toBe('BAD_REQUEST');
    expect(issuesOf(error).map((i) => i.path)).toEqual([['nodeType']]);
    expect((await owner.caller.workflows.get({ workflowId: workflow.id })).nodes).toEqual([]);
  });

  it.each([
    { what: 'a method outside the list', params: { method: 'FETCH' }, field: 'method' },
    { what: 'a number as URL', params: { url: 42 }, field: 'url' },
    {
      what: 'a URL that is not http(s)',
      params: { url: 'ftp://files.example.test/fake-path' },
      field: 'url',
    },
    { what: 'an object as body', params: { body: { nested: true } }, field: 'body' },
  ])(
    'refuses params of the wrong type ($what) with BAD_REQUEST on params.$field',
    async ({ params, field }) => {
      const workflow = await emptyWorkflow();
      const error = await rejection(
        owner.caller.workflows.addNode({
          workflowId: workflow.id,
          name: 'Call API',
          nodeType: 'httpRequest',
          params,
        }),
      );
      expect(error.code).toBe('BAD_REQUEST');
      const issues = issuesOf(error);
      expect(issues.length).toBeGreaterThan(0);
      expect(issues.map((i) => i.path)).toContainEqual(['params', field]);
      for (const issue of issues) expect(issue.path[0]).toBe('params');
      // Field messages never quote what was submitted.
      const submitted = JSON.stringify(Object.values(params)[0]);
      expect(JSON.stringify(issues)).not.toContain(submitted.replace(/^"|"$/g, ''));
      expect((await owner.caller.workflows.get({ workflowId: workflow.id })).nodes).toEqual([]);
    },
  );

  it('refuses params that are not an object with BAD_REQUEST on params', async () => {
    const workflow = await emptyWorkflow();
    const error = await rejection(
      owner.caller.workflows.addNode({
        workflowId: workflow.id,
        name: 'Call API',
        nodeType: 'httpRequest',
        params: 'method=GET' as unknown as Record<string, unknown>,
      }),
    );
    expect(error.code).toBe('BAD_REQUEST');
    expect(issuesOf(error).map((i) => i.path[0])).toEqual(['params']);
  });

  it('refuses unknown params fields', async () => {
    const workflow = await emptyWorkflow();
    const error = await rejection(
      owner.caller.workflows.addNode({
        workflowId: workflow.id,
        name: 'Mail',
        nodeType: 'sendgrid',
        params: { cc: 'x@example.test' },
      }),
    );
    expect(error.code).toBe('BAD_REQUEST');
    expect(issuesOf(error)[0]?.path[0]).toBe('params');
  });
});

describe('updating nodes', () => {
  it('refuses params of the wrong type and leaves the node unchanged', async () => {
    const { workflow, nodes } = await workflowWithNodes(owner, workspaceId, 'Update params', [
      { name: 'Call API', nodeType: 'httpRequest' },
    ]);
    const nodeId = (nodes[0] as { id: string }).id;
    await owner.caller.workflows.updateNode({
      workflowId: workflow.id,
      nodeId,
      params: { method: 'POST', url: 'https://api.example.test/v1' },
    });
    const before = await owner.caller.workflows.get({ workflowId: workflow.id });
    const error = await rejection(
      owner.caller.workflows.updateNode({
        workflowId: workflow.id,
        nodeId,
        name: 'Renamed',
        params: { method: 'YEET' },
      }),
    );
    expect(error.code).toBe('BAD_REQUEST');
    expect(issuesOf(error).map((i) => i.path)).toEqual([['params', 'method']]);
    expect(await owner.caller.workflows.get({ workflowId: workflow.id })).toEqual(before);
  });

  it('refuses a secret id that does not exist with NOT_FOUND', async () => {
    const { workflow, nodes } = await workflowWithNodes(owner, workspaceId, 'Missing secret', [
      { name: 'Mail', nodeType: 'sendgrid', secretId: secretOfType.sendgridApiKey as string },
    ]);
    const nodeId = (nodes[0] as { id: string }).id;
    const error = await rejection(
      owner.caller.workflows.updateNode({ workflowId: workflow.id, nodeId, secretId: 'no-such-secret' }),
    );
    expect(error.code).toBe('NOT_FOUND');
    expect((await owner.caller.workflows.get({ workflowId: workflow.id })).nodes[0]?.secretId).toBe(
      secretOfType.sendgridApiKey,
    );
  });

  it('removes a node; removing it again is NOT_FOUND', async () => {
    const { workflow, nodes } = await workflowWithNodes(owner, workspaceId, 'Removal', [
      { name: 'Keep', nodeType: 'slack' },
      { name: 'Drop', nodeType: 'slack' },
    ]);
    const dropId = (nodes[1] as { id: string }).id;
    expect(await owner.caller.workflows.removeNode({ workflowId: workflow.id, nodeId: dropId })).toEqual({
      id: dropId,
    });
    expect((await owner.caller.workflows.get({ workflowId: workflow.id })).nodes.map((n) => n.name)).toEqual([
      'Keep',
    ]);
    expect(
      (await rejection(owner.caller.workflows.removeNode({ workflowId: workflow.id, nodeId: dropId }))).code,
    ).toBe('NOT_FOUND');
  });
});

describe('selecting a secret for a node (rule 1)', () => {
  const pairs = Object.keys(FAKE_DATA).flatMap((credentialType) =>
    NODE_TYPES.map((nodeType) => ({
      credentialType,
      nodeType,
      fits: NODE_TYPE_OF[credentialType] === nodeType,
    })),
  );

  it.each(pairs.filter((p) => p.fits))(
    'a $nodeType node accepts a $credentialType secret',
    async ({ credentialType, nodeType }) => {
      const { workflow, nodes } = await workflowWithNodes(owner, workspaceId, 'Fits', [
        { name: 'Step', nodeType },
      ]);
      const nodeId = (nodes[0] as { id: string }).id;
      const secretId = secretOfType[credentialType] as string;
      const node = await member.caller.workflows.updateNode({ workflowId: workflow.id, nodeId, secretId });
      expect(node).toMatchObject({ secretId, status: 'ok' });
    },
  );

  it.each(pairs.filter((p) => !p.fits))(
    'a $nodeType node refuses a $credentialType secret with BAD_REQUEST naming the node, and stays unchanged',
    async ({ credentialType, nodeType }) => {
      const { workflow, nodes } = await workflowWithNodes(owner, workspaceId, 'Misfit', [
        { name: 'Important step', nodeType },
      ]);
      const nodeId = (nodes[0] as { id: string }).id;
      const before = await owner.caller.workflows.get({ workflowId: workflow.id });
      const error = await rejection(
        member.caller.workflows.updateNode({
          workflowId: workflow.id,
          nodeId,
          secretId: secretOfType[credentialType] as string,
        }),
      );
      expect(error.code).toBe('BAD_REQUEST');
      expect(error.message).toContain("'Important step'");
      expect(await owner.caller.workflows.get({ workflowId: workflow.id })).toEqual(before);
    },
  );

  it('a SendGrid secret for an HTTP Request node is refused with a message naming the node, and a rename in the same call is not applied', async () => {
    const { workflow, nodes } = await workflowWithNodes(owner, workspaceId, 'Cross type', [
      { name: 'Call API', nodeType: 'httpRequest', secretId: secretOfType.httpBearerToken as string },
    ]);
    const nodeId = (nodes[0] as { id: string }).id;
    const error = await rejection(
      owner.caller.workflows.updateNode({
        workflowId: workflow.id,
        nodeId,
        secretId: secretOfType.sendgridApiKey as string,
      }),
    );
    expect(error.code).toBe('BAD_REQUEST');
    expect(error.message).toBe("Node 'Call API' accepts only HTTP Request credentials");
    await rejection(
      owner.caller.workflows.updateNode({
        workflowId: workflow.id,
        nodeId,
        name: 'Renamed',
        secretId: secretOfType.sendgridApiKey as string,
      }),
    );
    const node = (await owner.caller.workflows.get({ workflowId: workflow.id })).nodes[0];
    expect(node).toMatchObject({ name: 'Call API', secretId: secretOfType.httpBearerToken, status: 'ok' });
  });
});

describe('selectable secrets', () => {
  it('for sendgrid lists only SendGrid secrets', async () => {
    const list = await member.caller.secrets.selectable({ workspaceId, nodeType: 'sendgrid' });
    expect(list).toEqual([
      // SendGrid credentials do not restrict their hosts (they go to SendGrid's base URL only): no list.
      {
        id: secretOfType.sendgridApiKey,
        name: 'Shared sendgridApiKey',
        credentialType: 'sendgridApiKey',
        allowedHosts: null,
        kind: 'static',
        // Who added it, by name, for the picker (a teammate's credential is offered to the member too).
        createdBy: 'Olivia Owner',
      },
    ]);
  });

  it('for httpRequest lists exactly the four HTTP credential types', async () => {
    const list = await member.caller.secrets.selectable({ workspaceId, nodeType: 'httpRequest' });
    expect(list.map((s) => s.credentialType).sort()).toEqual(HTTP_TYPES);
    expect(list.map((s) => s.id).sort()).toEqual(HTTP_TYPES.map((t) => secretOfType[t]).sort());
  });

  it.each(NODE_TYPES)('for %s lists only its own credential types', async (nodeType) => {
    const list = await member.caller.secrets.selectable({ workspaceId, nodeType });
    const expected = Object.keys(FAKE_DATA).filter((t) => NODE_TYPE_OF[t] === nodeType);
    expect(list.map((s) => s.credentialType).sort()).toEqual(expected.sort());
  });

  it('refuses an unknown node type with BAD_REQUEST on nodeType', async () => {
    const error = await rejection(
      member.caller.secrets.selectable({ workspaceId, nodeType: 'carrierPigeon' }),
    );
    expect(error.code).toBe('BAD_REQUEST');
    expect(issuesOf(error).map((i) => i.path)).toEqual([['nodeType']]);
  });
});

describe('a node losing its secret', () => {
  async function flowUsing(name: string) {
    const secret = await createSecret(member, workspaceId, 'sendgridApiKey', `${name} key`);
    const { workflow, nodes } = await workflowWithNodes(owner, workspaceId, name, [
      { name: 'Send welcome email', nodeType: 'sendgrid', secretId: secret.id },
      { name: 'Send reminder', nodeType: 'sendgrid', secretId: secret.id },
      { name: 'Call API', nodeType: 'httpRequest', secretId: secretOfType.httpBearerToken as string },
    ]);
    const [welcome, reminder, api] = nodes as [{ id: string }, { id: string }, { id: string }];
    return { secret, workflow, welcome: welcome.id, reminder: reminder.id, api: api.id };
  }

  it('clearing a secret with secretId null leaves the node needing a credential', async () => {
    const f = await flowUsing('Clearing');
    const node = await owner.caller.workflows.updateNode({
      workflowId: f.workflow.id,
      nodeId: f.welcome,
      secretId: null,
    });
    expect(node).toMatchObject({ secretId: null, status: 'needs-credential' });
    expect(node).not.toHaveProperty('lostSecretName');
    const got = await owner.caller.workflows.get({ workflowId: f.workflow.id });
    expect(got.nodes.find((n) => n.id === f.welcome)).toMatchObject({
      secretId: null,
      status: 'needs-credential',
    });
    // The secret itself is untouched.
    expect((await owner.caller.secrets.list({ workspaceId })).items.map((s) => s.id)).toContain(f.secret.id);
  });

  it('secrets.delete reports the affected nodes and flags exactly them with the lost secret name', async () => {
    const f = await flowUsing('Deleting');
    const usage = await owner.caller.secrets.usage({ workspaceId, secretId: f.secret.id });
    const { affectedNodes } = await member.caller.secrets.delete({ workspaceId, secretId: f.secret.id });
    const expected = [
      {
        workflowId: f.workflow.id,
        workflowName: 'Deleting',
        nodeId: f.welcome,
        nodeName: 'Send welcome email',
      },
      { workflowId: f.workflow.id, workflowName: 'Deleting', nodeId: f.reminder, nodeName: 'Send reminder' },
    ];
    const sorted = <T extends { nodeId: string }>(xs: T[]) =>
      [...xs].sort((x, y) => x.nodeId.localeCompare(y.nodeId));
    expect(sorted(affectedNodes)).toEqual(sorted(expected));
    expect(sorted(usage)).toEqual(sorted(expected));

    const got = await owner.caller.workflows.get({ workflowId: f.workflow.id });
    for (const id of [f.welcome, f.reminder]) {
      expect(got.nodes.find((n) => n.id === id)).toMatchObject({
        secretId: null,
        status: 'needs-credential',
        lostSecretName: 'Deleting key',
      });
    }
    expect(got.nodes.find((n) => n.id === f.api)).toMatchObject({
      secretId: secretOfType.httpBearerToken,
      status: 'ok',
    });
    expect((await rejection(owner.caller.secrets.usage({ workspaceId, secretId: f.secret.id }))).code).toBe(
      'NOT_FOUND',
    );
  });

  it('selecting a new secret clears the flag', async () => {
    const f = await flowUsing('Reselecting');
    await owner.caller.secrets.delete({ workspaceId, secretId: f.secret.id });
    const replacement = await createSecret(member, workspaceId, 'sendgridApiKey', 'Reselecting new key');
    const node = await member.caller.workflows.updateNode({
      workflowId: f.workflow.id,
      nodeId: f.welcome,
      secretId: replacement.id,
    });
    expect(node).toMatchObject({ secretId: replacement.id, status: 'ok' });
    expect(node).not.toHaveProperty('lostSecretName');
    const got = await owner.caller.workflows.get({ workflowId: f.workflow.id });
    expect(got.nodes.find((n) => n.id === f.welcome)).not.toHaveProperty('lostSecretName');
    // The other node that lost the secret still says which one.
    expect(got.nodes.find((n) => n.id === f.reminder)).toMatchObject({
      status: 'needs-credential',
      lostSecretName: 'Reselecting key',
    });
  });

  it('a deleted secret cannot be selected again', async () => {
    const f = await flowUsing('Gone');
    await owner.caller.secrets.delete({ workspaceId, secretId: f.secret.id });
    const error = await rejection(
      owner.caller.workflows.updateNode({
        workflowId: f.workflow.id,
        nodeId: f.welcome,
        secretId: f.secret.id,
      }),
    );
    expect(error.code).toBe('NOT_FOUND');
    expect((await owner.caller.workflows.get({ workflowId: f.workflow.id })).nodes[0]).toMatchObject({
      lostSecretName: 'Gone key',
    });
  });

  it('replacing a secret in place keeps every node on it (rule 6)', async () => {
    const f = await flowUsing('Rotating');
    const replaced = await member.caller.secrets.replace({
      workspaceId,
      secretId: f.secret.id,
      data: FAKE_DATA.sendgridApiKey,
    });
    expect(replaced.id).toBe(f.secret.id);
    const got = await owner.caller.workflows.get({ workflowId: f.workflow.id });
    for (const id of [f.welcome, f.reminder]) {
      expect(got.nodes.find((n) => n.id === id)).toMatchObject({ secretId: f.secret.id, status: 'ok' });
    }
  });

  it('workflows.list reports needsAttention while a node lacks its credential', async () => {
    const f = await flowUsing('Attention');
    const entry = async () =>
      (await owner.caller.workflows.list({ workspaceId })).find((w) => w.id === f.workflow.id);
    expect(await entry()).toMatchObject({ name: 'Attention', nodeCount: 3, needsAttention: false });
    await owner.caller.secrets.delete({ workspaceId, secretId: f.secret.id });
    expect(await entry()).toMatchObject({ nodeCount: 3, needsAttention: true });
    const replacement = await createSecret(owner, workspaceId, 'sendgridApiKey', 'Attention new key');
    await owner.caller.workflows.updateNode({
      workflowId: f.workflow.id,
      nodeId: f.welcome,
      secretId: replacement.id,
    });
    expect(await entry()).toMatchObject({ needsAttention: true });
    await owner.caller.workflows.updateNode({
      workflowId: f.workflow.id,
      nodeId: f.reminder,
      secretId: replacement.id,
    });
    expect(await entry()).toMatchObject({ needsAttention: false });
  });

  it('an empty workflow does not need attention', async () => {
    const workflow = await emptyWorkflow('Empty');
    const entry = (await owner.caller.workflows.list({ workspaceId })).find((w) => w.id === workflow.id);
    expect(entry).toMatchObject({ nodeCount: 0, needsAttention: false });
  });
});
