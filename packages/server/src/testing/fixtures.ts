import { randomBytes } from 'node:crypto';
import type { FieldIssue } from '@latchkey/core';
import { TRPCError } from '@trpc/server';
import { sql, type Transaction } from 'kysely';
import { expect } from 'vitest';
import { ZodError } from 'zod';
import type { Database, Role } from '../db/schema.js';
import { InvalidInputError } from '../errors.js';
import type { Services } from '../services.js';
import { CREDENTIAL_TYPES, FAKE_DATA, ownerDb, signedInUser } from './harness.js';

/** Shared helpers for the workspace, isolation and workflow suites (built only from public procedures). */

export type Person = Awaited<ReturnType<typeof signedInUser>>;

/** Which node type each credential type belongs to (every credential type of FAKE_DATA, from the plugins). */
export const NODE_TYPE_OF: Record<string, string> = Object.fromEntries(
  CREDENTIAL_TYPES.map(({ credentialType, nodeType }) => [credentialType, nodeType]),
);

export const fakeEmail = (label = 'someone') => `${label}-${randomBytes(4).toString('hex')}@example.test`;

/** The id of a person's personal workspace (created at sign-up). */
export async function personalWorkspaceOf(person: Person): Promise<string> {
  const me = await person.caller.auth.me();
  const personal = me?.workspaces.find((w) => w.plan === 'personal');
  if (!personal) throw new Error('no personal workspace');
  return personal.id;
}

/** Signs up a new person and brings them into a workspace with the given role (invited by `inviter`). */
export async function joinAs(
  svc: Services,
  inviter: Person,
  workspaceId: string,
  role: Role,
  name: string,
): Promise<Person> {
  const person = await signedInUser(svc, name);
  await addToWorkspace(inviter, person, workspaceId, role);
  return person;
}

/** Invites an existing person into a workspace and has them accept. */
export async function addToWorkspace(
  inviter: Person,
  person: Person,
  workspaceId: string,
  role: Role,
): Promise<void> {
  const invite = await inviter.caller.workspaces.invite({ workspaceId, email: person.email, role });
  await person.caller.workspaces.acceptInvite({ token: invite.token });
}

export async function createSecret(
  person: Person,
  workspaceId: string,
  credentialType: string,
  name: string,
) {
  const data = FAKE_DATA[credentialType];
  if (!data) throw new Error(`no fake data for ${credentialType}`);
  return person.caller.secrets.create({ workspaceId, credentialType, name, data });
}

/** A workflow with one node per entry, each optionally using a secret (parameters: none unless given). */
export async function workflowWithNodes(
  person: Person,
  workspaceId: string,
  name: string,
  nodes: { name: string; nodeType: string; secretId?: string; params?: Record<string, unknown> }[],
) {
  const workflow = await person.caller.workflows.create({ workspaceId, name });
  const created: { id: string }[] = [];
  for (const spec of nodes) {
    const node = await person.caller.workflows.addNode({
      workflowId: workflow.id,
      name: spec.name,
      nodeType: spec.nodeType,
      params: spec.params ?? {},
    });
    if (spec.secretId) {
      await person.caller.workflows.updateNode({
        workflowId: workflow.id,
        nodeId: node.id,
        secretId: spec.secretId,
      });
    }
    created.push(node);
  }
  return { workflow, nodes: created };
}

/** Awaits a call that must fail and returns its TRPCError (fails the test if it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<TRPCError> {
  let result: unknown;
  try {
    result = await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(TRPCError);
    return error as TRPCError;
  }
  throw new Error(`expected the call to fail, but it returned ${JSON.stringify(result)?.slice(0, 200)}`);
}

/** The field issues of a BAD_REQUEST: from an InvalidInputError cause, or from the input parser's ZodError. */
export function issuesOf(error: TRPCError): FieldIssue[] {
  const cause = error.cause;
  if (cause instanceof InvalidInputError) return cause.issues;
  if (cause instanceof ZodError)
    return cause.issues.map((i) => ({ path: i.path.map(String), message: i.message }));
  if (cause && Array.isArray((cause as { issues?: unknown }).issues)) {
    return (cause as unknown as { issues: { path: PropertyKey[]; message: string }[] }).issues.map((i) => ({
      path: i.path.map(String),
      message: i.message,
    }));
  }
  return [];
}

/**
 * Everything about a workspace that the API shows its owner, plus its pending invites (not visible through
 * the API): two snapshots compare equal only if nothing in the workspace changed.
 */
export async function workspaceState(svc: Services, reader: Person, workspaceId: string) {
  const c = reader.caller;
  const workspace = await c.workspaces.get({ workspaceId });
  const members = await c.workspaces.members({ workspaceId });
  const secrets = await c.secrets.list({ workspaceId, limit: 100 });
  const workflows = await c.workflows.list({ workspaceId });
  const details = [];
  for (const w of workflows) details.push(await c.workflows.get({ workflowId: w.id }));
  const audit = await c.audit.list({ workspaceId });
  const invites = await ownerDb(svc)
    .selectFrom('invites')
    .select(['id', 'email', 'role', 'accepted_at', 'expires_at'])
    .where('workspace_id', '=', workspaceId)
    .orderBy('id')
    .execute();
  return { workspace, members, secrets, workflows, details, audit, invites };
}

export async function auditEvents(reader: Person, workspaceId: string, action?: string) {
  const { items } = await reader.caller.audit.list({ workspaceId });
  return action ? items.filter((e) => e.action === action) : items;
}

/**
 * Runs `fn` while every insert into audit_events fails (a trigger raises), then removes the trigger.
 * Each statement is sent on its own (PGlite's extended protocol takes one statement at a time).
 */
export async function whileAuditIsDown<T>(svc: Services, fn: () => Promise<T>): Promise<T> {
  const suffix = randomBytes(4).toString('hex');
  const fnName = `fail_audit_${suffix}`;
  const trigger = `audit_down_${suffix}`;
  await sql
    .raw(
      `create function ${fnName}() returns trigger language plpgsql as $$ begin raise exception 'audit down'; end $$`,
    )
    .execute(ownerDb(svc));
  await sql
    .raw(`create trigger ${trigger} before insert on audit_events for each row execute function ${fnName}()`)
    .execute(ownerDb(svc));
  try {
    return await fn();
  } finally {
    await sql.raw(`drop trigger if exists ${trigger} on audit_events`).execute(ownerDb(svc));
    await sql.raw(`drop function if exists ${fnName}()`).execute(ownerDb(svc));
  }
}

/** Orders affected-node lists so that results from different queries compare equal. */
export const byNodeId = <T extends { nodeId: string }>(nodes: readonly T[]) =>
  [...nodes].sort((a, b) => a.nodeId.localeCompare(b.nodeId));

/**
 * PostgreSQL only: a transaction on its own connection that holds locks (taken by `lock`) until `release`, so a
 * test can line concurrent requests up behind it and let them go at the same instant.
 */
export async function holdLocks(svc: Services, lock: (trx: Transaction<Database>) => Promise<unknown>) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => {
    release = resolve;
  });
  let ready!: (pid: number) => void;
  const holding = new Promise<number>((resolve) => {
    ready = resolve;
  });
  const done = ownerDb(svc)
    .transaction()
    .execute(async (trx) => {
      await lock(trx);
      const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(trx);
      ready(Number(rows[0]?.pid));
      await released;
    });
  const pid = await Promise.race([
    holding,
    done.then(() => Promise.reject(new Error('lock holder ended early'))),
  ]);
  return {
    /** Resolves once `count` other sessions wait for a lock this holder has. */
    async waitForWaiters(count: number, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const { rows } = await sql<{ n: string }>`
          select count(*) as n from pg_stat_activity where ${pid} = any(pg_blocking_pids(pid))`.execute(
          ownerDb(svc),
        );
        if (Number(rows[0]?.n) >= count) return;
        if (Date.now() > deadline) throw new Error(`fewer than ${count} sessions waited for the lock holder`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async release() {
      release();
      await done;
    },
  };
}

/** Resolves once `count` sessions of this database wait for a lock (polling pg_stat_activity). */
export async function waitForLockWaiters(svc: Services, count: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await sql<{ n: string }>`
      select count(*) as n from pg_stat_activity
      where datname = current_database() and wait_event_type = 'Lock'`.execute(ownerDb(svc));
    if (Number(rows[0]?.n) >= count) return;
    if (Date.now() > deadline) throw new Error(`fewer than ${count} sessions waited for a lock`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
