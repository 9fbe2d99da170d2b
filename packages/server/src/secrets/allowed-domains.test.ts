import { Migrator } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { migrateToLatest, migrations } from '../db/migrations.js';
import { withDbScope } from '../db/scope.js';
import { parseOutboundAllow } from '../runner/outbound-guard.js';
import type { Services } from '../services.js';
import { freshFakeData, PARAMS, type RunnerTestEnv, startRunnerTestEnv } from '../testing/fake-services.js';
import { issuesOf, rejection } from '../testing/fixtures.js';
import { clientFor, openTestDatabase, ownerDb, ownerOf, teamWorkspace } from '../testing/harness.js';
import { deleteSecret } from './deletion.js';
import { replaceSecret } from './write.js';

// Claims 29–33 (docs/security.md): an HTTP Request credential goes only to the hosts its owner approved.

let env: RunnerTestEnv;
beforeAll(async () => {
  env = await startRunnerTestEnv();
});
afterAll(() => env.close());
beforeEach(() => env.fakes.resetAll());

type Team = Awaited<ReturnType<typeof teamWorkspace>>;

const bearerData = (allowedDomains: string) => ({
  ...(freshFakeData().httpBearerToken as { token: string }),
  allowedDomains,
});

/** Data for a credential saved through the API without a list (as by a client written before it existed). */
const withoutList = (credentialType: string) => {
  const { allowedDomains: _none, ...data } = freshFakeData()[credentialType] as Record<string, string>;
  return data;
};

async function auditDetails(svc: Services, secretId: string, action: string) {
  return ownerDb(svc)
    .selectFrom('audit_events')
    .select(['details', 'actor_id'])
    .where('target_id', '=', secretId)
    .where('action', '=', action)
    .orderBy('seq')
    .execute();
}

describe('allowed domains are required by forms; a credential without them is sent nowhere', () => {
  it.each(['httpBearerToken', 'httpBasicAuth', 'httpHeaderAuth', 'httpQueryAuth'])(
    '%s saved through the API without them is stored as needing them, and a run sends it nowhere',
    async (credentialType) => {
      const team = await teamWorkspace(env.svc);
      const created = await team.member.caller.secrets.create({
        workspaceId: team.workspaceId,
        credentialType,
        name: 'No list',
        data: withoutList(credentialType),
      });
      expect(created.needsAllowedDomains).toBe(true);
      const workflow = await team.member.caller.workflows.create({
        workspaceId: team.workspaceId,
        name: 'W',
      });
      const node = await team.member.caller.workflows.addNode({
        workflowId: workflow.id,
        name: 'Call',
        nodeType: 'httpRequest',
        params: PARAMS.http(`${env.fakes.http.url}/collect`),
      });
      // Selected in the database: the editor refuses to save a node with a credential that has no hosts.
      await ownerDb(env.svc)
        .updateTable('workflow_nodes')
        .set({ secret_id: created.id })
        .where('id', '=', node.id)
        .execute();
      const [result] = (await team.member.caller.workflows.run({ workflowId: workflow.id })).nodes;
      expect(result?.ok).toBe(false);
      expect(result?.error).toBe(
        "Node 'Call': The credential 'No list' needs allowed domains before it can be used: its creator, an owner or an admin can add them.",
      );
      expect(env.fakes.http.requests).toEqual([]);
    },
  );
});

describe("a member cannot take a teammate's token", () => {
  /** A refused credential: no `secret.used`, no last use, one `secret.refused_destination` by the member. */
  async function expectRefusedNotUsed(team: Team, secretId: string, reason: string) {
    expect(await auditDetails(env.svc, secretId, 'secret.used')).toEqual([]);
    const refusals = await auditDetails(env.svc, secretId, 'secret.refused_destination');
    expect(refusals).toEqual([
      {
        actor_id: team.member.user.id,
        details: {
          workflowId: expect.any(String),
          workflowName: 'Mine',
          nodeId: expect.any(String),
          nodeName: 'Exfiltrate',
          host: new URL(env.fakes.http.url).host,
          reason,
        },
      },
    ]);
    const listed = await team.owner.caller.secrets.list({ workspaceId: team.workspaceId });
    expect(listed.items.find((m) => m.id === secretId)?.lastUsedAt).toBeNull();
    // The owner finds it in the secret's history.
    const history = await team.owner.caller.audit.list({ workspaceId: team.workspaceId, targetId: secretId });
    expect(history.items.map((e) => e.action)).toEqual(['secret.refused_destination', 'secret.created']);
  }

  async function memberAimsAtOwnHost(team: Team, secretId: string) {
    // The member's own host: a local fake standing in for a server they control.
    const workflow = await team.member.caller.workflows.create({
      workspaceId: team.workspaceId,
      name: 'Mine',
    });
    const node = await team.member.caller.workflows.addNode({
      workflowId: workflow.id,
      name: 'Exfiltrate',
      nodeType: 'httpRequest',
      params: PARAMS.http(`${env.fakes.http.url}/collect`),
    });
    // Pointed at the credential directly in the database: the editor's own check (below) would refuse it.
    await ownerDb(env.svc)
      .updateTable('workflow_nodes')
      .set({ secret_id: secretId })
      .where('id', '=', node.id)
      .execute();
    return (await team.member.caller.workflows.run({ workflowId: workflow.id })).nodes[0];
  }

  it("a teammate's credential saved without allowed domains is sent nowhere: the run names the node and says why", async () => {
    const team = await teamWorkspace(env.svc);
    const owned = await team.owner.caller.secrets.create({
      workspaceId: team.workspaceId,
      credentialType: 'httpBearerToken',
      name: 'Billing API',
      data: withoutList('httpBearerToken'),
    });

    const node = await memberAimsAtOwnHost(team, owned.id);
    expect(node?.ok).toBe(false);
    expect(node?.error).toBe(
      "Node 'Exfiltrate': The credential 'Billing API' needs allowed domains before it can be used: its creator, an owner or an admin can add them.",
    );
    expect(env.fakes.http.requests).toEqual([]);
    await expectRefusedNotUsed(team, owned.id, 'not_allowed_host');
  });

  it('a credential with allowed domains is not sent to the host of a member who points a node elsewhere', async () => {
    const team = await teamWorkspace(env.svc);
    const owned = await team.owner.caller.secrets.create({
      workspaceId: team.workspaceId,
      credentialType: 'httpBearerToken',
      name: 'Billing API',
      data: bearerData('billing.example.test'),
    });
    const node = await memberAimsAtOwnHost(team, owned.id);
    expect(node?.error).toBe(
      "Node 'Exfiltrate': The credential 'Billing API' may only be sent to billing.example.test.",
    );
    expect(env.fakes.http.requests).toEqual([]);
    // Not a use (nothing was sent): the refusal is its own event, by the member, naming where it would have gone.
    await expectRefusedNotUsed(team, owned.id, 'not_allowed_host');
  });

  it('the secrets list marks a credential without allowed domains as needing them', async () => {
    const team = await teamWorkspace(env.svc);
    await team.owner.caller.secrets.create({
      workspaceId: team.workspaceId,
      credentialType: 'httpHeaderAuth',
      name: 'Legacy',
      data: withoutList('httpHeaderAuth'),
    });
    const listed = await team.owner.caller.secrets.create({
      workspaceId: team.workspaceId,
      credentialType: 'httpHeaderAuth',
      name: 'Listed',
      data: { ...(freshFakeData().httpHeaderAuth as Record<string, string>) },
    });
    const { items } = await team.owner.caller.secrets.list({ workspaceId: team.workspaceId });
    expect(Object.fromEntries(items.map((s) => [s.name, s.needsAllowedDomains]))).toEqual({
      Legacy: true,
      Listed: false,
    });
    const selectable = await team.member.caller.secrets.selectable({
      workspaceId: team.workspaceId,
      nodeType: 'httpRequest',
    });
    expect(Object.fromEntries(selectable.map((s) => [s.name, s.allowedHosts]))).toEqual({
      Legacy: [],
      Listed: ['127.0.0.1', 'api.example.test'],
    });
    expect(listed.needsAllowedDomains).toBe(false);
  });
});

describe('plain http', () => {
  it('secrets.test sends no credential over plain http:// to a host LATCHKEY_OUTBOUND_ALLOW does not list', async () => {
    const team = await teamWorkspace(env.svc);
    const unlisted = clientFor(await env.servicesWith({ policy: parseOutboundAllow('') }));
    unlisted.session.token = team.owner.session.token;
    const data = freshFakeData().sendgridApiKey as Record<string, string>;
    const outcome = await unlisted.caller.secrets.test({
      workspaceId: team.workspaceId,
      credentialType: 'sendgridApiKey',
      data,
    });
    expect(outcome.ok).toBe(false);
    expect(outcome.message).toMatch(
      /^The request was refused: This credential is never sent over plain http:\/\/ \(127\.0\.0\.1:\d+ is not in LATCHKEY_OUTBOUND_ALLOW\): use https:\/\/\.$/,
    );
    expect(env.fakes.sendgrid.requests).toEqual([]);
    // Control: listed, the same test reaches the fake.
    await team.owner.caller.secrets.test({
      workspaceId: team.workspaceId,
      credentialType: 'sendgridApiKey',
      data,
    });
    expect(env.fakes.sendgrid.requests).toHaveLength(1);
  });
});

describe('the node editor refuses a URL outside the credential’s hosts (the server decides)', () => {
  it('addNode and updateNode answer BAD_REQUEST naming params.url with the message a run would give', async () => {
    const team = await teamWorkspace(env.svc);
    const owned = await team.owner.caller.secrets.create({
      workspaceId: team.workspaceId,
      credentialType: 'httpBearerToken',
      name: 'Billing API',
      data: bearerData('billing.example.test'),
    });
    const workflow = await team.member.caller.workflows.create({ workspaceId: team.workspaceId, name: 'W' });
    const outside = PARAMS.http('https://collector.evil.test/x');
    const message = "The credential 'Billing API' may only be sent to billing.example.test.";

    const added = await rejection(
      team.member.caller.workflows.addNode({
        workflowId: workflow.id,
        name: 'Call',
        nodeType: 'httpRequest',
        params: outside,
        secretId: owned.id,
      }),
    );
    expect(added.code).toBe('BAD_REQUEST');
    expect(issuesOf(added)).toEqual([{ path: ['params', 'url'], message }]);
    expect((await team.member.caller.workflows.get({ workflowId: workflow.id })).nodes).toEqual([]);

    const node = await team.member.caller.workflows.addNode({
      workflowId: workflow.id,
      name: 'Call',
      nodeType: 'httpRequest',
      params: PARAMS.http('https://api.billing.example.test/v1'),
      secretId: owned.id,
    });
    expect(node.secretId).toBe(owned.id);
    const moved = await rejection(
      team.member.caller.workflows.updateNode({ workflowId: workflow.id, nodeId: node.id, params: outside }),
    );
    expect(issuesOf(moved)).toEqual([{ path: ['params', 'url'], message }]);
    const saved = await team.member.caller.workflows.get({ workflowId: workflow.id });
    expect(saved.nodes[0]?.params.url).toBe('https://api.billing.example.test/v1');

    // Selecting the credential for a node that already points elsewhere is refused the same way.
    const other = await team.member.caller.workflows.addNode({
      workflowId: workflow.id,
      name: 'Other',
      nodeType: 'httpRequest',
      params: outside,
    });
    const selected = await rejection(
      team.member.caller.workflows.updateNode({
        workflowId: workflow.id,
        nodeId: other.id,
        secretId: owned.id,
      }),
    );
    expect(issuesOf(selected)).toEqual([{ path: ['params', 'url'], message }]);
  });
});

describe('only the creator, owners and admins change the list, and each change is audited', () => {
  it('replace records the old and the new list in its audit event', async () => {
    const team = await teamWorkspace(env.svc);
    const created = await team.member.caller.secrets.create({
      workspaceId: team.workspaceId,
      credentialType: 'httpBearerToken',
      name: 'Mine',
      data: bearerData('one.example.test'),
    });
    await team.member.caller.secrets.replace({
      workspaceId: team.workspaceId,
      secretId: created.id,
      data: bearerData('two.example.test, three.example.test'),
    });
    const cleared = await team.member.caller.secrets.replace({
      workspaceId: team.workspaceId,
      secretId: created.id,
      data: withoutList('httpBearerToken'),
    });
    expect(cleared.needsAllowedDomains).toBe(true);
    const fixed = await team.admin.caller.secrets.replace({
      workspaceId: team.workspaceId,
      secretId: created.id,
      data: bearerData('four.example.test'),
    });
    expect(fixed.needsAllowedDomains).toBe(false);

    const events = await auditDetails(env.svc, created.id, 'secret.replaced');
    expect(events.map((e) => e.details)).toEqual([
      {
        credentialType: 'httpBearerToken',
        publicFieldChanges: {
          allowedDomains: { old: 'one.example.test', new: 'two.example.test, three.example.test' },
        },
      },
      {
        credentialType: 'httpBearerToken',
        publicFieldChanges: { allowedDomains: { old: 'two.example.test, three.example.test', new: null } },
      },
      {
        credentialType: 'httpBearerToken',
        publicFieldChanges: { allowedDomains: { old: null, new: 'four.example.test' } },
      },
    ]);
    expect(events.map((e) => e.actor_id)).toEqual([
      team.member.user.id,
      team.member.user.id,
      team.admin.user.id,
    ]);
  });

  it("a member cannot change the list of a teammate's credential", async () => {
    const team = await teamWorkspace(env.svc);
    const owned = await team.owner.caller.secrets.create({
      workspaceId: team.workspaceId,
      credentialType: 'httpBearerToken',
      name: 'Billing API',
      data: bearerData('billing.example.test'),
    });
    const error = await rejection(
      team.member.caller.secrets.replace({
        workspaceId: team.workspaceId,
        secretId: owned.id,
        data: bearerData('billing.example.test, collector.evil.test'),
      }),
    );
    expect(error.code).toBe('FORBIDDEN');
    const selectable = await team.member.caller.secrets.selectable({
      workspaceId: team.workspaceId,
      nodeType: 'httpRequest',
    });
    expect(selectable.find((s) => s.id === owned.id)?.allowedHosts).toEqual(['billing.example.test']);
    expect(await auditDetails(env.svc, owned.id, 'secret.replaced')).toEqual([]);
  });
});

/**
 * Item 5 of issue 12: the permission check is part of the write's own statement. `between` runs right before
 * the write statement (the statement matching `write`) reaches the database, after every earlier read of the
 * operation: the services passed to the domain function see their queries through a proxy of `svc.db`.
 */
function servicesInterleaving(svc: Services, write: RegExp, between: () => Promise<void>): Services {
  let done = false;
  // Kysely's classes keep private fields: every method runs bound to the real object, not to the proxy.
  const bound = <T extends object>(target: T, property: PropertyKey) => {
    const value = Reflect.get(target, property, target);
    return typeof value === 'function' ? value.bind(target) : value;
  };
  const db = new Proxy(svc.db, {
    get(target, property) {
      if (property !== 'getExecutor') return bound(target, property);
      return () => {
        const executor = target.getExecutor();
        return new Proxy(executor, {
          get(inner, name) {
            if (name !== 'executeQuery') return bound(inner, name);
            return async (compiled: { sql: string }, ...rest: unknown[]) => {
              if (!done && write.test(compiled.sql)) {
                done = true;
                await between();
              }
              return (inner.executeQuery as (...args: unknown[]) => unknown).call(inner, compiled, ...rest);
            };
          },
        });
      };
    },
  });
  return { ...svc, db };
}

describe('replace and delete check the permission in the write itself', () => {
  async function teammateSecret(team: Team) {
    return team.member.caller.secrets.create({
      workspaceId: team.workspaceId,
      credentialType: 'httpBearerToken',
      name: `Mia token ${Math.random()}`,
      data: bearerData('api.example.test'),
    });
  }
  const demote = (team: Team) => () =>
    ownerDb(env.svc)
      .updateTable('memberships')
      .set({ role: 'member' })
      .where('workspace_id', '=', team.workspaceId)
      .where('user_id', '=', team.admin.user.id)
      .execute()
      .then(() => undefined);
  const remove = (team: Team) => () =>
    ownerDb(env.svc)
      .deleteFrom('memberships')
      .where('workspace_id', '=', team.workspaceId)
      .where('user_id', '=', team.admin.user.id)
      .execute()
      .then(() => undefined);
  const asAdmin = (team: Team) => ({ userId: team.admin.user.id });
  const scoped = <T>(team: Team, fn: () => Promise<T>) =>
    withDbScope({ workspaceId: team.workspaceId, userId: team.admin.user.id }, fn);

  it.each([
    ['demoted to member', demote, 'FORBIDDEN'],
    ['removed', remove, 'NOT_FOUND'],
  ] as const)('an admin %s between the read and the write replaces nothing', async (_what, change, kind) => {
    const team = await teamWorkspace(env.svc);
    const secret = await teammateSecret(team);
    const svc = servicesInterleaving(env.svc, /update secrets set ciphertext/i, change(team));
    const error = await scoped(team, () =>
      replaceSecret(svc, asAdmin(team), {
        workspaceId: team.workspaceId,
        secretId: secret.id,
        data: bearerData('collector.evil.test'),
      }),
    ).then(
      () => undefined,
      (e: { kind?: string }) => e,
    );
    expect(error?.kind).toBe(kind);
    const row = await ownerDb(env.svc)
      .selectFrom('secrets')
      .select('public_fields')
      .where('id', '=', secret.id)
      .executeTakeFirstOrThrow();
    expect(row.public_fields.allowedDomains).toBe('api.example.test');
    expect(await auditDetails(env.svc, secret.id, 'secret.replaced')).toEqual([]);
  });

  it.each([
    ['demoted to member', demote, 'FORBIDDEN'],
    ['removed', remove, 'NOT_FOUND'],
  ] as const)('an admin %s just before the delete statement deletes nothing', async (_what, change, kind) => {
    const team = await teamWorkspace(env.svc);
    const secret = await teammateSecret(team);
    const svc = servicesInterleaving(env.svc, /delete from secrets/i, change(team));
    const error = await scoped(team, () =>
      deleteSecret(svc, asAdmin(team), { workspaceId: team.workspaceId, secretId: secret.id }),
    ).then(
      () => undefined,
      (e: { kind?: string }) => e,
    );
    expect(error?.kind).toBe(kind);
    const left = await ownerDb(env.svc)
      .selectFrom('secrets')
      .select('id')
      .where('id', '=', secret.id)
      .execute();
    expect(left).toHaveLength(1);
  });
});

describe('migration 0006', () => {
  it('records, for each HTTP Request credential saved without allowed domains, that it is no longer applied', async () => {
    const older = await openTestDatabase();
    try {
      const owner = ownerOf(older);
      const migrator = new Migrator({
        db: owner,
        provider: { getMigrations: async () => migrations },
        ...(older.schema ? { migrationTableSchema: older.schema } : {}),
      });
      const before = await migrator.migrateTo('0005_row_level_security');
      if (before.error) throw before.error;
      await owner
        .insertInto('users')
        .values({ id: 'u1', email: 'u1@example.test', name: 'U', password_hash: 'x' })
        .execute();
      await owner.insertInto('workspaces').values({ id: 'w1', name: 'Older', plan: 'personal' }).execute();
      await owner
        .insertInto('workspace_keys')
        .values({
          workspace_id: 'w1',
          version: 1,
          master_key_id: 'mk_fake',
          wrapped_key: Buffer.from('fake'),
        })
        .execute();
      const row = (id: string, credential_type: string, publicFields: Record<string, string>) => ({
        id,
        workspace_id: 'w1',
        name: `Secret ${id}`,
        integration_id: credential_type.startsWith('http') ? 'http-request' : 'sendgrid',
        node_type: credential_type.startsWith('http') ? 'httpRequest' : 'sendgrid',
        credential_type,
        public_fields: JSON.stringify(publicFields),
        ciphertext: Buffer.from('fake-ciphertext'),
        key_version: 1,
        created_by: 'u1',
        updated_at: new Date(),
      });
      await owner
        .insertInto('secrets')
        .values([
          row('no-list', 'httpBearerToken', {}),
          row('blank-list', 'httpHeaderAuth', { headerName: 'X-Key', allowedDomains: ' , ' }),
          row('listed', 'httpBasicAuth', { username: 'u', allowedDomains: 'api.example.test' }),
          row('not-http', 'sendgridApiKey', {}),
        ])
        .execute();

      expect(await migrateToLatest(owner, older.schema)).toContain('0006_http_allowed_domains');
      const events = await owner
        .selectFrom('audit_events')
        .select(['target_id', 'action', 'actor_id', 'details'])
        .orderBy('target_id')
        .execute();
      expect(events).toEqual([
        {
          target_id: 'blank-list',
          action: 'secret.needs_allowed_domains',
          actor_id: null,
          details: { credentialType: 'httpHeaderAuth' },
        },
        {
          target_id: 'no-list',
          action: 'secret.needs_allowed_domains',
          actor_id: null,
          details: { credentialType: 'httpBearerToken' },
        },
      ]);
    } finally {
      await older.close();
    }
  });
});
