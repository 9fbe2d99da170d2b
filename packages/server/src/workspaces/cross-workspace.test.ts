/**
 * Cross-workspace isolation, generated from the router (issue 6, item 6): every procedure, as every role of
 * workspace A, against workspace B's ids must answer NOT_FOUND and change nothing.
 *
 * How the cases are made. The procedures come from `appRouter._def.procedures` (tRPC v11: a flat record keyed
 * 'secrets.create' …), and each input is built from the procedure's own zod schema (`_def.inputs`, walked
 * through zod 4's `_zod.def`). Id fields (ID_FIELDS) take a workspace's ids; fields that need domain-valid values
 * (DOMAIN_VALUES) take them from the registry and FAKE_DATA; anything else gets a sample within the schema's
 * bounds. Optional, nullable and enum fields are varied one at a time (plus one variant with every optional
 * field filled) and every union branch is a variant of its own. An id-like field the generator does not know,
 * or a shape it cannot fill, FAILS the coverage test naming the procedure and the field: a new procedure is
 * covered without editing this file, or this file says why not. Procedures without any id are on ONE allowlist
 * (NOT_WORKSPACE_SCOPED), each with its reason; a procedure on neither fails.
 *
 * Each variant is called by A's owner, admin and member (1) with every id from B and (2) with exactly one id
 * from B and the others from A. The call must answer NOT_FOUND, exactly as the same call with ids that exist
 * nowhere does, quote none of B's ids or names, and leave the whole database as it was (one snapshot of every
 * table before and after). A foreign id in a list FILTER (not an object the call acts on) narrows the list:
 * that call must answer exactly what a nonexistent id gets (here: an empty page), and change nothing.
 *
 * Why the sanity check at the end: NOT_FOUND is also what a wrongly built input can produce by accident (an
 * id of the wrong kind, a field the procedure does not read). So the same generated inputs, filled with a
 * workspace's OWN ids, are called by its owner and must answer neither NOT_FOUND nor BAD_REQUEST: the inputs
 * reach the objects they name, and the NOT_FOUNDs above come from the workspace boundary, not from the
 * generator. A unit check also shows that the generator refuses what it cannot fill.
 */

import { type AnyTRPCProcedure, TRPCError } from '@trpc/server';
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { WORKSPACE_SCOPED_TABLES } from '../db/migrations.js';
import type { Database, Role } from '../db/schema.js';
import { createSecret, fakeEmail, type Person, workflowWithNodes } from '../testing/fixtures.js';
import {
  createTestApp,
  FAKE_DATA,
  OAUTH2_FAKE_DATA,
  type TestApp,
  teamWorkspace,
} from '../testing/harness.js';
import { id as idSchema } from '../trpc/inputs.js';
import { appRouter } from '../trpc/router.js';

let app: TestApp;

/**
 * The ONE handle for direct reads of the database (snapshots, the audit cursor). How the harness exposes an
 * owner handle is about to change: switch it here. It must see every workspace's rows (no row-level-security
 * scope): `snapshotSeesBothWorkspaces` fails loudly if it does not.
 */
function directReads(): Kysely<Database> {
  return app.owner;
}

// ---------------------------------------------------------------------------------------------------------
// What the generator knows

/** Procedures that take no workspace or object id: there is no "other workspace" to point them at. */
const NOT_WORKSPACE_SCOPED: Record<string, string> = {
  'auth.signUp': 'creates an account; takes an email, a password and a name, no id',
  'auth.signIn': 'takes an email and a password, no id',
  'auth.signOut': "no input; ends the caller's own sessions",
  'auth.changePassword': "changes the caller's own password; no id",
  'auth.me': "no input; answers the caller's own account and workspaces",
  'workspaces.create': 'creates a new workspace owned by the caller; no id',
  'workspaces.list': "no input; lists the caller's own workspaces",
  'workspaces.acceptInvite':
    'takes a one-time token bound to the invited email, no id (isolation.test.ts tries a foreign token)',
  'workspaces.inspectInvite':
    'takes an invite token, no id; answers only what the invite page shows (invites.test.ts)',
  'integrations.list': 'no input; the installed integrations, the same for everyone',
};

type IdKind = 'workspace' | 'secret' | 'connection' | 'workflow' | 'node' | 'user' | 'invite';

/**
 * Every id field the procedures take, and which object of a workspace fills it. `filter`: the id narrows a
 * list of the workspace (secrets.list createdBy) instead of naming an object the call acts on.
 */
const ID_FIELDS: Record<string, { kind: IdKind; filter?: boolean }> = {
  workspaceId: { kind: 'workspace' },
  secretId: { kind: 'secret' },
  workflowId: { kind: 'workflow' },
  nodeId: { kind: 'node' },
  userId: { kind: 'user' },
  inviteId: { kind: 'invite' },
  createdBy: { kind: 'user', filter: true },
  // The audit log's filters: who did it, and what it was done to (a secret's history).
  'audit.list.actorId': { kind: 'user', filter: true },
  'audit.list.targetId': { kind: 'secret', filter: true },
  // Reconnecting names an OAuth2 connection (a static secret is a field error, not another workspace's object).
  'secrets.reconnect.secretId': { kind: 'connection' },
};

/** Id-like fields that name no object of a workspace (the same for every workspace): DOMAIN_VALUES fills them. */
const NOT_WORKSPACE_IDS: Record<string, string> = {
  integrationId: 'an installed integration, from the registry',
};

/** The credential type, node type and fake data the generated inputs use (chosen from the registry). */
interface Probe {
  credentialType: string;
  nodeType: string;
  integrationId: string;
  data: Record<string, string>;
}

let probe: Probe;
let probeNames = 0;

/**
 * Fields that need a domain-valid value, by field name or by 'procedure.field'. `world` is the workspace that
 * supplies the call's workspaceId (its cursors are only valid there).
 */
const DOMAIN_VALUES: Record<string, (world: World) => unknown> = {
  credentialType: () => probe.credentialType,
  nodeType: () => probe.nodeType,
  integrationId: () => probe.integrationId,
  data: () => probe.data,
  name: () => `Probe ${++probeNames}`,
  email: () => fakeEmail('probe'),
  'secrets.list.cursor': (world) => world.listCursor,
  // Connecting takes an OAuth2 type with a consent screen (its endpoints never resolve: nothing is sent).
  'secrets.connect.credentialType': () => 'httpOAuth2AuthorizationCode',
  'secrets.connect.data': () => OAUTH2_FAKE_DATA.httpOAuth2AuthorizationCode,
  // An n8n export (decrypted form) of one credential, a fresh n8n id and name each time.
  'secrets.importN8n.credentials': () => [
    {
      id: `probe-${++probeNames}`,
      name: `Probe ${probeNames}`,
      type: 'sendGridApi',
      data: FAKE_DATA.sendgridApiKey,
    },
  ],
  'audit.list.cursor': (world) => world.auditCursor,
  'audit.list.actions': () => ['secret.created', 'secret.used'],
  'audit.list.from': () => '2020-01-01T00:00:00Z',
  'audit.list.to': () => '2100-01-01',
};

// ---------------------------------------------------------------------------------------------------------
// The generator: zod schema -> input templates (ids and domain values are slots, filled per call)

const OMIT = Symbol('omitted');

class IdSlot {
  constructor(
    readonly path: string,
    readonly kind: IdKind,
    readonly filter: boolean,
  ) {}
}

class DomainSlot {
  constructor(readonly key: string) {}
}

type Template = unknown;

class Unfillable extends Error {}

interface Where {
  procedure: string;
  path: string[];
  /** The object key this schema is the value of (through optional/nullable/array wrappers). */
  field: string | undefined;
}

type ZodDef = { type: string } & Record<string, unknown>;

function zodDef(schema: unknown): ZodDef | undefined {
  const def = (schema as { _zod?: { def?: ZodDef } } | null | undefined)?._zod?.def;
  return def && typeof def.type === 'string' ? def : undefined;
}

function checksOf(def: ZodDef): Record<string, unknown>[] {
  return ((def.checks as { _zod: { def: Record<string, unknown> } }[] | undefined) ?? []).map(
    (c) => c._zod.def,
  );
}

const fieldName = (where: Where) => where.path.join('.') || '(input)';

function unfillable(where: Where, what: string): never {
  throw new Unfillable(`${where.procedure}: field '${fieldName(where)}': ${what}`);
}

const ID_LIKE = /Ids?$/;

function sampleString(def: ZodDef, where: Where): Template[] {
  if (def.format === 'email') return [new DomainSlot('email')];
  if (def.format !== undefined) unfillable(where, `no sample for string format '${String(def.format)}'`);
  let min = 0;
  let max = Number.POSITIVE_INFINITY;
  for (const check of checksOf(def)) {
    switch (check.check) {
      case 'min_length':
        min = Math.max(min, Number(check.minimum));
        break;
      case 'max_length':
        max = Math.min(max, Number(check.maximum));
        break;
      case 'length_equals':
        min = Number(check.length);
        max = min;
        break;
      case 'overwrite': // trim(), toLowerCase(): the sample is already trimmed and lower-case
      case 'custom': // refine(): the parse check in the coverage test catches a sample it refuses
        break;
      default:
        unfillable(where, `no sample for string check '${String(check.check)}'`);
    }
  }
  if (min > max) unfillable(where, `string bounds ${min}..${max} are empty`);
  return ['probe-value'.padEnd(min, 'x').slice(0, max)];
}

function sampleNumber(def: ZodDef, where: Where): Template[] {
  let low = Number.NEGATIVE_INFINITY;
  let high = Number.POSITIVE_INFINITY;
  let integer = false;
  for (const check of checksOf(def)) {
    switch (check.check) {
      case 'greater_than':
        low = Number(check.value) + (check.inclusive ? 0 : integer ? 1 : 0.5);
        break;
      case 'less_than':
        high = Number(check.value) - (check.inclusive ? 0 : integer ? 1 : 0.5);
        break;
      case 'number_format':
        integer = ['safeint', 'int32', 'uint32'].includes(String(check.format));
        break;
      default:
        unfillable(where, `no sample for number check '${String(check.check)}'`);
    }
  }
  const value = Math.min(Math.max(1, low), high);
  if (value < low || (integer && !Number.isInteger(value))) unfillable(where, 'number bounds are empty');
  return [value];
}

/** One variant per choice: the first choice of every field, then each other choice of one field at a time. */
function objectAlternatives(shape: Record<string, unknown>, where: Where): Template[] {
  const fields = Object.entries(shape).map(
    ([key, schema]) =>
      [key, alternatives(schema, { ...where, path: [...where.path, key], field: key })] as const,
  );
  const base = Object.fromEntries(fields.map(([key, alts]) => [key, alts[0]]));
  const variants: Template[] = [base];
  for (const [key, alts] of fields) {
    for (const alt of alts.slice(1)) variants.push({ ...base, [key]: alt });
  }
  // And every optional field filled at once.
  variants.push(
    Object.fromEntries(
      fields.map(([key, alts]) => [key, alts.find((a) => a !== OMIT && a !== null) ?? alts[0]]),
    ),
  );
  return variants;
}

function alternatives(schema: unknown, where: Where): Template[] {
  const def = zodDef(schema);
  if (!def) return unfillable(where, 'not a zod 4 schema');
  switch (def.type) {
    case 'optional':
    case 'default':
    case 'prefault':
      return [OMIT, ...alternatives(def.innerType, where)];
    case 'nullable':
      return [...alternatives(def.innerType, where), null];
    case 'readonly':
    case 'catch':
      return alternatives(def.innerType, where);
    case 'pipe':
      return alternatives(def.in, where);
    case 'union':
      return (def.options as unknown[]).flatMap((option) => alternatives(option, where));
  }

  // A leaf (or an object/array) under `where.field`: ids and domain values first.
  const field = where.field;
  if (schema === idSchema || (field !== undefined && (ID_LIKE.test(field) || field in ID_FIELDS))) {
    if (field === undefined) return unfillable(where, 'an id outside an object field');
    const singular = def.type === 'array' ? field.replace(/Ids$/, 'Id') : field;
    if (singular in NOT_WORKSPACE_IDS && singular in DOMAIN_VALUES) {
      const domain = new DomainSlot(singular);
      return [def.type === 'array' ? [domain] : domain];
    }
    const known = ID_FIELDS[`${where.procedure}.${singular}`] ?? ID_FIELDS[singular];
    if (!known) {
      return unfillable(
        where,
        `id-like field '${singular}' is not in ID_FIELDS: say which object of a workspace fills it`,
      );
    }
    const slot = new IdSlot(fieldName(where), known.kind, known.filter ?? false);
    return [def.type === 'array' ? [slot] : slot];
  }
  const domainKey = [`${where.procedure}.${field}`, field].find((k) => k !== undefined && k in DOMAIN_VALUES);
  if (domainKey) return [new DomainSlot(domainKey)];
  if (field === 'cursor') {
    return unfillable(where, `an opaque cursor: add '${where.procedure}.cursor' to DOMAIN_VALUES`);
  }

  switch (def.type) {
    case 'object':
      return objectAlternatives(def.shape as Record<string, unknown>, where);
    case 'string':
      return sampleString(def, where);
    case 'number':
      return sampleNumber(def, where);
    case 'boolean':
      return [false, true];
    case 'enum':
      return Object.values(def.entries as Record<string, string>);
    case 'literal':
      return [...(def.values as unknown[])];
    case 'null':
      return [null];
    case 'record':
      return [{}];
    case 'array':
      return alternatives(def.element, { ...where, path: [...where.path, '0'] }).map((alt) => [alt]);
    case 'unknown':
    case 'any':
      return unfillable(where, `accepts anything ('${def.type}'): add a DOMAIN_VALUES entry for it`);
    default:
      return unfillable(where, `no sample for a '${def.type}' schema`);
  }
}

/** A stable text for a template (dedupe). */
function signature(template: Template): string {
  return JSON.stringify(template, (_key, value: unknown) =>
    value instanceof IdSlot
      ? `$id:${value.path}`
      : value instanceof DomainSlot
        ? `$domain:${value.key}`
        : value,
  );
}

/** A readable name for a variant: its fields, with the choices that vary (never a sample or a secret value). */
function labelOf(template: Template): string {
  if (template === OMIT) return '(no input)';
  if (Array.isArray(template)) return `[${template.map(labelOf).join(', ')}]`;
  if (template instanceof IdSlot || template instanceof DomainSlot) return '…';
  if (template !== null && typeof template === 'object') {
    const parts = Object.entries(template as Record<string, unknown>)
      .filter(([, value]) => value !== OMIT)
      .map(([key, value]) => {
        if (value instanceof IdSlot || value instanceof DomainSlot) return key;
        if (value === null || typeof value === 'boolean' || typeof value === 'number')
          return `${key}: ${value}`;
        if (typeof value === 'string') return value.length <= 12 ? `${key}: '${value}'` : key;
        return `${key}: ${labelOf(value)}`;
      });
    return `{${parts.join(', ')}}`;
  }
  return String(template);
}

function idSlotsOf(template: Template): IdSlot[] {
  if (template instanceof IdSlot) return [template];
  if (Array.isArray(template)) return template.flatMap(idSlotsOf);
  if (template !== null && typeof template === 'object' && !(template instanceof DomainSlot)) {
    return Object.values(template as Record<string, unknown>).flatMap(idSlotsOf);
  }
  return [];
}

function resolve(
  template: Template,
  fillId: (slot: IdSlot) => string,
  fillDomain: (slot: DomainSlot) => unknown,
): unknown {
  if (template === OMIT) return undefined;
  if (template instanceof IdSlot) return fillId(template);
  if (template instanceof DomainSlot) return fillDomain(template);
  if (Array.isArray(template)) return template.map((t) => resolve(t, fillId, fillDomain));
  if (template !== null && typeof template === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(template as Record<string, unknown>)) {
      if (value !== OMIT) out[key] = resolve(value, fillId, fillDomain);
    }
    return out;
  }
  return template;
}

interface Generated {
  type: string;
  schema: z.ZodType | undefined;
  variants: Template[];
  error?: string;
}

function generate(path: string, procedure: AnyTRPCProcedure): Generated {
  const type = procedure._def.type;
  const inputs = procedure._def.inputs as unknown[];
  try {
    if (type !== 'query' && type !== 'mutation') {
      throw new Unfillable(`${path}: a ${type} procedure; the generator calls queries and mutations only`);
    }
    if (inputs.length === 0) return { type, schema: undefined, variants: [OMIT] };
    if (inputs.length > 1) {
      throw new Unfillable(`${path}: ${inputs.length} chained .input() parsers; the generator reads one`);
    }
    const where: Where = { procedure: path, path: [], field: undefined };
    const seen = new Set<string>();
    const variants = alternatives(inputs[0], where).filter((t) => {
      const key = signature(t);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    return { type, schema: inputs[0] as z.ZodType, variants };
  } catch (error) {
    if (!(error instanceof Unfillable)) throw error;
    return { type, schema: undefined, variants: [], error: error.message };
  }
}

// ---------------------------------------------------------------------------------------------------------
// The procedures and the cases, from the router

const procedures = appRouter._def.procedures as unknown as Record<string, AnyTRPCProcedure>;
const PATHS = Object.keys(procedures).sort();
const GENERATED = new Map(PATHS.map((path) => [path, generate(path, procedures[path] as AnyTRPCProcedure)]));

interface Case {
  name: string;
  procedure: string;
  template: Template;
  /** 'all': every id from B; otherwise the path of the one id slot that takes B's id (the rest take A's). */
  foreign: 'all' | string;
  /** 'not-found': must answer NOT_FOUND; 'as-if-missing': a filter id, answered as a nonexistent id is. */
  expect: 'not-found' | 'as-if-missing';
}

const CASES: Case[] = [];
for (const [procedure, generated] of GENERATED) {
  if (procedure in NOT_WORKSPACE_SCOPED) continue;
  for (const template of generated.variants) {
    const slots = idSlotsOf(template);
    if (slots.length === 0) continue;
    const label = `${procedure} ${labelOf(template)}`;
    CASES.push({
      name: `${label}, every id from B`,
      procedure,
      template,
      foreign: 'all',
      expect: 'not-found',
    });
    if (slots.length < 2) continue;
    for (const slot of slots) {
      CASES.push({
        name: `${label}, B's ${slot.path} with A's other ids`,
        procedure,
        template,
        foreign: slot.path,
        expect: slot.filter ? 'as-if-missing' : 'not-found',
      });
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Workspaces

interface World {
  label: string;
  workspaceId: string;
  owner: Person;
  admin: Person;
  member: Person;
  ids: Record<IdKind, string>;
  listCursor: string;
  auditCursor: string;
  /** Every id and name of the workspace (what each is, and its value): none may show in another's answers. */
  strings: { what: string; value: string }[];
}

function chooseProbe(): Probe {
  for (const integration of app.svc.registry.describe()) {
    for (const credential of integration.credentialTypes) {
      const data = FAKE_DATA[credential.type];
      // Not testable: a sanity call of secrets.test never leaves the process.
      if (data && !credential.testable) {
        return {
          credentialType: credential.type,
          nodeType: integration.nodeType,
          integrationId: integration.id,
          data,
        };
      }
    }
  }
  throw new Error('no untestable credential type with FAKE_DATA in the registry');
}

/** A team workspace like isolation.test.ts builds: secrets of several types, a workflow using them, an invite. */
async function populatedWorld(label: string): Promise<World> {
  const { workspaceId, owner, admin, member } = await teamWorkspace(app.svc);
  const mail = await createSecret(member, workspaceId, 'sendgridApiKey', `${label} mail key`);
  const hook = await createSecret(admin, workspaceId, 'slackWebhook', `${label} team webhook`);
  const token = await createSecret(owner, workspaceId, probe.credentialType, `${label} probe credential`);
  // A consent in flight (oauth_states), and its pending connection.
  const connection = await owner.caller.secrets.connect({
    workspaceId,
    credentialType: 'httpOAuth2AuthorizationCode',
    name: `${label} pending connection`,
    data: OAUTH2_FAKE_DATA.httpOAuth2AuthorizationCode,
  });
  // Node params stay empty: a sanity run of this workflow stops at "not fully configured", before any request.
  const { workflow, nodes } = await workflowWithNodes(owner, workspaceId, `${label} onboarding`, [
    { name: `${label} welcome email`, nodeType: 'sendgrid', secretId: mail.id },
    { name: `${label} probe node`, nodeType: probe.nodeType, secretId: token.id },
    { name: `${label} notify team`, nodeType: 'slack', secretId: hook.id },
  ]);
  const probeNode = nodes[1] as { id: string };
  const inviteEmail = fakeEmail(`${label.toLowerCase()}-pending`);
  const invite = await owner.caller.workspaces.invite({ workspaceId, email: inviteEmail, role: 'member' });
  const pending = (await owner.caller.workspaces.invites({ workspaceId })).find(
    (i) => i.email === inviteEmail,
  );
  if (!pending) throw new Error(`the pending invite of workspace ${label} is not listed`);
  const page = await owner.caller.secrets.list({ workspaceId, limit: 1 });
  if (!page.nextCursor) throw new Error('expected a second page of secrets');
  const seq = await directReads()
    .selectFrom('audit_events')
    .select((eb) => eb.fn.max('seq').as('seq'))
    .where('workspace_id', '=', workspaceId)
    .executeTakeFirstOrThrow();
  if (seq.seq === null) throw new Error(`the direct-read handle sees no audit event of workspace ${label}`);
  const workspace = await owner.caller.workspaces.get({ workspaceId });
  const strings = [
    { what: 'workspace id', value: workspaceId },
    { what: 'workspace name', value: workspace.name },
    { what: 'workflow id', value: workflow.id },
    { what: 'workflow name', value: workflow.name },
    { what: 'pending invite email', value: inviteEmail },
    { what: 'pending invite token', value: invite.token },
    { what: 'pending invite id', value: pending.id },
    ...[mail, hook, token].flatMap((s) => [
      { what: 'secret id', value: s.id },
      { what: 'secret name', value: s.name },
    ]),
    { what: 'secret id', value: connection.secretId },
    { what: 'secret name', value: `${label} pending connection` },
    ...nodes.map((n) => ({ what: 'node id', value: n.id })),
    ...[`${label} welcome email`, `${label} probe node`, `${label} notify team`].map((value) => ({
      what: 'node name',
      value,
    })),
    ...[owner, admin, member].flatMap((p) => [
      { what: 'user id', value: p.user.id },
      { what: 'user email', value: p.email },
      { what: 'user name', value: p.user.name },
    ]),
  ];
  return {
    label,
    workspaceId,
    owner,
    admin,
    member,
    ids: {
      workspace: workspaceId,
      secret: token.id,
      connection: connection.secretId,
      workflow: workflow.id,
      node: probeNode.id,
      user: member.user.id,
      invite: pending.id,
    },
    listCursor: page.nextCursor,
    auditCursor: String(seq.seq),
    strings,
  };
}

const missingId = (kind: IdKind) => `missing-${kind}-0000`;

// ---------------------------------------------------------------------------------------------------------
// Calls, snapshots, checks

type Caller = Person['caller'];
type Outcome = { ok: true; value: unknown } | { ok: false; error: TRPCError };

/** Calls a procedure by its dotted path, through the in-process caller (middlewares and all). */
async function call(caller: Caller, path: string, input: unknown): Promise<Outcome> {
  let target: unknown = caller;
  for (const key of path.split('.')) target = (target as Record<string, unknown>)[key];
  try {
    return { ok: true, value: await (target as (input: unknown) => Promise<unknown>)(input) };
  } catch (error) {
    if (error instanceof TRPCError) return { ok: false, error };
    throw error;
  }
}

const answer = (outcome: Outcome) =>
  outcome.ok
    ? { ok: true, value: outcome.value }
    : { code: outcome.error.code, message: outcome.error.message };

let tables: string[];

/** Every row of every table, one text per table, in ONE statement. */
async function databaseSnapshot(): Promise<Record<string, string>> {
  const columns = tables.map(
    (table) =>
      sql`(select coalesce(json_agg(r order by r::text), '[]'::json)::text from ${sql.table(table)} r) as ${sql.ref(table)}`,
  );
  const { rows } = await sql<Record<string, string>>`select ${sql.join(columns)}`.execute(directReads());
  return rows[0] as Record<string, string>;
}

/** The tables whose rows differ, with their row counts (never the rows: they hold ciphertexts and emails). */
function changedTables(before: Record<string, string>, after: Record<string, string>): string[] {
  return tables
    .filter((t) => before[t] !== after[t])
    .map((t) => {
      const count = (text: string | undefined) => (JSON.parse(text ?? '[]') as unknown[]).length;
      return `${t} (${count(before[t])} -> ${count(after[t])} rows)`;
    });
}

const ROLES = ['owner', 'admin', 'member'] as const satisfies readonly Role[];

let a: World;
let b: World;
/** B's ids and names that A does not share (the harness names both workspaces' people the same way). */
let bOnly: { what: string; value: string }[];

function leaksOf(text: string): string[] {
  return bOnly.filter((s) => text.includes(s.value)).map((s) => s.what);
}

async function runCase(c: Case, role: (typeof ROLES)[number]) {
  const isForeign = (slot: IdSlot) => c.foreign === 'all' || c.foreign === slot.path;
  const workspaceSlot = idSlotsOf(c.template).find((s) => s.kind === 'workspace');
  const domainWorld = (workspaceSlot ? isForeign(workspaceSlot) : c.foreign === 'all') ? b : a;
  const domainValues = new Map<string, unknown>();
  const fillDomain = (slot: DomainSlot) => {
    if (!domainValues.has(slot.key)) domainValues.set(slot.key, DOMAIN_VALUES[slot.key]?.(domainWorld));
    return domainValues.get(slot.key);
  };
  const input = resolve(c.template, (s) => (isForeign(s) ? b : a).ids[s.kind], fillDomain);
  const absent = resolve(c.template, (s) => (isForeign(s) ? missingId(s.kind) : a.ids[s.kind]), fillDomain);
  const where = `${role} of A calling ${c.name}`;

  const before = await databaseSnapshot();
  const outcome = await call(a[role].caller, c.procedure, input);
  const asIfMissing = await call(a[role].caller, c.procedure, absent);
  const after = await databaseSnapshot();

  if (c.expect === 'not-found') {
    expect(outcome.ok ? 'a result' : outcome.error.code, `${where}: expected NOT_FOUND`).toBe('NOT_FOUND');
  }
  expect(answer(outcome), `${where}: answered differently from ids that exist nowhere`).toEqual(
    answer(asIfMissing),
  );
  const text = outcome.ok ? JSON.stringify(outcome.value) : outcome.error.message;
  expect(leaksOf(text), `${where}: the answer quotes B's`).toEqual([]);
  expect(changedTables(before, after), `${where}: the database changed`).toEqual([]);
}

beforeAll(async () => {
  app = await createTestApp();
  probe = chooseProbe();
  const { rows } = await sql<{ table_name: string }>`
    select table_name from information_schema.tables
    where table_schema = current_schema() and table_type = 'BASE TABLE'
    order by table_name`.execute(directReads());
  tables = rows.map((r) => r.table_name);
  a = await populatedWorld('A');
  b = await populatedWorld('B');
  const aValues = new Set(a.strings.map((s) => s.value));
  bOnly = b.strings.filter((s) => !aValues.has(s.value));
  await snapshotSeesBothWorkspaces();
});

/** A snapshot that cannot see a workspace's rows would compare equal whatever a call did: refuse it. */
async function snapshotSeesBothWorkspaces() {
  const snapshot = await databaseSnapshot();
  const blind = WORKSPACE_SCOPED_TABLES.filter((table) => table !== 'workspaces').filter(
    (table) => !(snapshot[table]?.includes(a.workspaceId) && snapshot[table]?.includes(b.workspaceId)),
  );
  if (blind.length > 0) {
    throw new Error(
      `directReads() does not see both workspaces' rows in ${blind.join(', ')}: switch directReads()`,
    );
  }
}
afterAll(() => app?.close());

// ---------------------------------------------------------------------------------------------------------

describe('coverage: every procedure of the router is generated or allowlisted', () => {
  it('the router has no lazy sub-routers (their procedures would not be listed)', () => {
    expect(Object.keys(appRouter._def.lazy)).toEqual([]);
    expect(PATHS.length).toBeGreaterThan(0);
  });

  it('the allowlist names only procedures of the router', () => {
    expect(Object.keys(NOT_WORKSPACE_SCOPED).filter((path) => !(path in procedures))).toEqual([]);
  });

  it.each(PATHS)('%s: the generator fills its input; it gets cases, or is allowlisted', (path) => {
    const generated = GENERATED.get(path) as Generated;
    if (generated.error) throw new Error(generated.error);
    const idFields = [...new Set(generated.variants.flatMap(idSlotsOf).map((s) => s.path))];
    if (path in NOT_WORKSPACE_SCOPED) {
      expect(idFields, `${path} is on NOT_WORKSPACE_SCOPED but takes ids: take it off`).toEqual([]);
    } else {
      expect(
        idFields.length,
        `${path} takes no workspace or object id and is not on NOT_WORKSPACE_SCOPED: add it there with a reason`,
      ).toBeGreaterThan(0);
      expect(CASES.filter((c) => c.procedure === path).length).toBeGreaterThan(0);
    }
  });

  it.each(PATHS)('%s: every generated input passes its schema', (path) => {
    const generated = GENERATED.get(path) as Generated;
    if (generated.error) throw new Error(generated.error);
    for (const template of generated.variants) {
      const input = resolve(
        template,
        (slot) => a.ids[slot.kind],
        (slot) => DOMAIN_VALUES[slot.key]?.(a),
      );
      if (!generated.schema) {
        expect(input).toBeUndefined();
        continue;
      }
      const parsed = generated.schema.safeParse(input);
      const issues = parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.code}`);
      expect(issues, `${path} ${labelOf(template)}: the generated input is refused`).toEqual([]);
    }
  });

  it('the generator refuses an id field it does not know and a shape it cannot fill', () => {
    const unknownId = generate('test.unknownId', {
      _def: { type: 'mutation', inputs: [z.object({ workspaceId: idSchema, gadgetId: z.string() })] },
    } as unknown as AnyTRPCProcedure);
    expect(unknownId.error).toMatch(/test\.unknownId: field 'gadgetId': id-like field 'gadgetId'/);
    const sharedIdSchema = generate('test.sharedId', {
      _def: { type: 'query', inputs: [z.object({ workspaceId: idSchema, owner: idSchema })] },
    } as unknown as AnyTRPCProcedure);
    expect(sharedIdSchema.error).toMatch(/field 'owner': id-like field 'owner' is not in ID_FIELDS/);
    const date = generate('test.date', {
      _def: { type: 'query', inputs: [z.object({ workspaceId: idSchema, since: z.date() })] },
    } as unknown as AnyTRPCProcedure);
    expect(date.error).toMatch(/test\.date: field 'since': no sample for a 'date' schema/);
    const anything = generate('test.anything', {
      _def: { type: 'mutation', inputs: [z.object({ workspaceId: idSchema, blob: z.unknown() })] },
    } as unknown as AnyTRPCProcedure);
    expect(anything.error).toMatch(/field 'blob': accepts anything/);
  });
});

describe.each(ROLES)("the %s of workspace A, with workspace B's ids", (role) => {
  // One test per case, by its full name ('$name' in it.each would cut it at 40 characters).
  for (const c of CASES) {
    it(c.name, async () => {
      await runCase(c, role);
    });
  }
});

describe("sanity: with a workspace's own ids, the same inputs reach their objects", () => {
  const scoped = PATHS.filter((path) => CASES.some((c) => c.procedure === path));
  let shared: World | undefined;

  it.each(scoped)("%s, called by the owner with the workspace's own ids", async (path) => {
    const generated = GENERATED.get(path) as Generated;
    // Queries share one workspace; each mutation gets a fresh one, so one cannot spoil another's objects.
    if (generated.type === 'query' && !shared) shared = await populatedWorld('Q');
    const world =
      generated.type === 'query' && shared ? shared : await populatedWorld(`M${path.replace(/\W/g, '')}`);
    for (const template of generated.variants) {
      const input = resolve(
        template,
        (slot) => world.ids[slot.kind],
        (slot) => DOMAIN_VALUES[slot.key]?.(world),
      );
      const outcome = await call(world.owner.caller, path, input);
      const code = outcome.ok ? 'OK' : outcome.error.code;
      expect(
        ['NOT_FOUND', 'BAD_REQUEST'],
        `${path} ${labelOf(template)} with own ids answered ${code}`,
      ).not.toContain(code);
    }
  });
});
