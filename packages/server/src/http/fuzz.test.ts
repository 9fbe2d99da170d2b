import type { AnyProcedure } from '@trpc/server';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createServices } from '../app.js';
import { readConfig } from '../config.js';
import { LocalKeyProvider } from '../crypto/index.js';
import type { Services } from '../services.js';
import { openTestDatabase, TEST_SCRYPT, testMasterKey } from '../testing/harness.js';
import {
  type HttpClient,
  type HttpTestServer,
  signUpOverHttp,
  startHttpServer,
} from '../testing/http-harness.js';
import { appRouter } from '../trpc/router.js';

const runnerSettingsOf = (env: NodeJS.ProcessEnv) => readConfig(env).runnerSettings;

// Issue 6, item 9: property-based tests of every procedure's input, generated from the router — a new
// procedure is covered without editing this file. Each procedure gets random hostile input (huge strings,
// deep nesting, prototype keys, NUL bytes, lone surrogates, numbers where strings go, arrays, null) with at
// least one thing no procedure accepts, sent over real HTTP by a signed-in user. Every answer must be a 4xx
// JSON error with `error.data.code` — never a 500, never a hang — and must not echo any submitted value.

const RUNS = Number(process.env.LATCHKEY_FUZZ_RUNS ?? 40);
const REQUEST_TIMEOUT_MS = 10_000;
/** Every generated string carries this marker: an answer that contains it echoed an input value. */
const MARK = 'QZXECHO';

interface ProcedureInfo {
  path: string;
  type: 'query' | 'mutation';
  hasInput: boolean;
  /** Field names of the input object (every union branch). */
  fields: string[];
  /** Fields that are required strings in every branch, with their maximum length if any. */
  requiredStrings: { name: string; maxLength: number | undefined }[];
  /** The first branch's schema, to build a valid input from. */
  schema: JsonSchema | undefined;
}

interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  anyOf?: JsonSchema[];
  maxLength?: number;
  enum?: unknown[];
  format?: string;
}

function describeProcedure(path: string, procedure: AnyProcedure): ProcedureInfo {
  const def = procedure._def as unknown as { type: 'query' | 'mutation'; inputs?: z.ZodType[] };
  const input = def.inputs?.[0];
  const info: ProcedureInfo = {
    path,
    type: def.type,
    hasInput: Boolean(input),
    fields: [],
    requiredStrings: [],
    schema: undefined,
  };
  if (!input) return info;
  const schema = z.toJSONSchema(input, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const branches = schema.anyOf ?? [schema];
  info.schema = branches[0];
  info.fields = [...new Set(branches.flatMap((b) => Object.keys(b.properties ?? {})))];
  const [first, ...rest] = branches;
  for (const name of first?.required ?? []) {
    const everywhere = branches.every(
      (b) => b.required?.includes(name) && b.properties?.[name]?.type === 'string',
    );
    if (everywhere) {
      const maxLengths = branches.map((b) => b.properties?.[name]?.maxLength);
      const maxLength = maxLengths.every((m) => m !== undefined)
        ? Math.max(...(maxLengths as number[]))
        : undefined;
      info.requiredStrings.push({ name, maxLength });
    }
  }
  void rest;
  return info;
}

const procedures: ProcedureInfo[] = Object.entries(
  appRouter._def.procedures as unknown as Record<string, AnyProcedure>,
).map(([path, procedure]) => describeProcedure(path, procedure));

// ------------------------------------------------------------------------------------------------
// Arbitraries

const HOSTILE_KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'valueOf',
  'a'.repeat(100),
  '',
];
const NASTY = [
  '',
  ' ',
  '../../etc/passwd',
  "' or 1=1 --",
  '<script>alert(1)</script>',
  '%00',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a log-injection payload, deliberately literal
  '${jndi:ldap://x}',
  '\u202e\u200b\ufeff',
  '🗝️👩‍💻',
  '\\',
  '"',
  '\r\nSet-Cookie: x=y',
];

function hostileString(maxRepeat: number) {
  return fc
    .oneof(
      fc.string({ maxLength: 40, unit: 'binary' }),
      fc.constantFrom(...NASTY),
      fc.nat({ max: maxRepeat }).map((n) => 'A'.repeat(n)),
    )
    .map((s) => `${s}${MARK}`);
}

/** Values that look valid for some field, so calls also get past validation into the handlers. */
function plausible(ids: Record<string, string>) {
  return fc.constantFrom(
    ...Object.values(ids),
    'slackBotToken',
    'slack',
    'httpRequest',
    'team',
    'personal',
    'member',
    'owner',
    'someone@example.test',
  );
}

const VALID_BY_NAME: Record<string, unknown> = {
  credentialType: 'slackBotToken',
  nodeType: 'slack',
  password: 'correct horse battery staple',
  currentPassword: 'correct horse battery staple',
  newPassword: 'another fine passphrase',
  data: { token: 'xoxb-fake-fuzz' },
  params: {},
  search: 'bot',
  limit: 10,
};

/**
 * A valid input for the procedure (ids of the caller's own objects, plausible values by field name), so that a
 * single poison is the only thing wrong with it and a handler that lets the poison through would run with it.
 */
function validInput(info: ProcedureInfo, ids: Record<string, string>): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(info.schema?.properties ?? {})) {
    if (field.enum?.length) input[name] = field.enum[field.enum.length - 1];
    else if (field.format === 'email') input[name] = 'fuzz-target@example.test';
    else if (name in ids) input[name] = ids[name];
    else if (name in VALID_BY_NAME) input[name] = VALID_BY_NAME[name];
    else if (field.type === 'string') input[name] = 'Fuzz value';
  }
  return input;
}

function hostileValue(maxRepeat: number, ids: Record<string, string>) {
  const leaf = fc.oneof(
    hostileString(maxRepeat),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    plausible(ids),
  );
  return fc.letrec((tie) => ({
    node: fc.oneof(
      { depthSize: 'small', maxDepth: 4 },
      leaf,
      fc.array(tie('node'), { maxLength: 4 }),
      fc.dictionary(fc.oneof(fc.constantFrom(...HOSTILE_KEYS), fc.string({ maxLength: 8 })), tie('node'), {
        maxKeys: 4,
      }),
    ),
  })).node;
}

function nested(depth: number, leafValue: unknown, useArrays: boolean): unknown {
  let value = leafValue;
  for (let i = 0; i < depth; i++) value = useArrays ? [value] : { a: value };
  return value;
}

type Poison =
  | { kind: 'top'; value: unknown }
  | { kind: 'nul' | 'surrogate'; field: string; nestedIn: number }
  | { kind: 'deep'; field: string; depth: number; arrays: boolean }
  | { kind: 'wrongType'; field: string; value: unknown }
  | { kind: 'tooLong'; field: string; length: number };

/** Something no procedure accepts (for procedures with an input); exactly one is put in every input. */
function poison(info: ProcedureInfo) {
  const fieldPool = info.fields.length ? info.fields : ['x'];
  const anyField = fc.constantFrom(...fieldPool, '__proto__', 'extra');
  const options: fc.Arbitrary<Poison>[] = [
    fc.record({
      kind: fc.constant('nul' as const),
      field: anyField,
      nestedIn: fc.nat({ max: 3 }),
    }),
    fc.record({
      kind: fc.constant('surrogate' as const),
      field: anyField,
      nestedIn: fc.nat({ max: 3 }),
    }),
    fc.record({
      kind: fc.constant('deep' as const),
      field: anyField,
      depth: fc.integer({ min: 33, max: info.type === 'query' ? 300 : 20_000 }),
      arrays: fc.boolean(),
    }),
  ];
  if (info.hasInput) {
    options.push(
      fc.record({
        kind: fc.constant('top' as const),
        value: fc.oneof(
          fc.constant(null),
          fc.integer(),
          fc.boolean(),
          hostileString(100),
          fc.array(hostileString(10), { maxLength: 3 }),
        ),
      }),
    );
  }
  if (info.requiredStrings.length) {
    const required = fc.constantFrom(...info.requiredStrings.map((f) => f.name));
    options.push(
      fc.record({
        kind: fc.constant('wrongType' as const),
        field: required,
        value: fc.oneof(
          fc.integer(),
          fc.double(),
          fc.boolean(),
          fc.constant(null),
          fc.array(hostileString(10), { maxLength: 3 }),
          fc.dictionary(fc.constantFrom(...HOSTILE_KEYS), hostileString(10), { maxKeys: 2 }),
        ),
      }),
    );
    const bounded = info.requiredStrings.filter((f) => f.maxLength !== undefined);
    if (bounded.length) {
      options.push(
        fc.record({
          kind: fc.constant('tooLong' as const),
          field: fc.constantFrom(...bounded.map((f) => f.name)),
          length: fc.integer({ min: 1, max: info.type === 'query' ? 2_000 : 300_000 }),
        }),
      );
    }
  }
  return fc.oneof(...options);
}

const DEEP_SENTINEL = 'deep-sentinel-7f3a';

/** The input as JSON text, with a deep poison spliced in as text. */
function serialize(input: unknown, p: Poison): string | undefined {
  const text = JSON.stringify(input);
  if (p.kind !== 'deep' || text === undefined) return text;
  const [open, close] = p.arrays ? ['[', ']'] : ['{"a":', '}'];
  const deep = `${open.repeat(p.depth)}"deep${MARK}"${close.repeat(p.depth)}`;
  return text.replace(`"${DEEP_SENTINEL}"`, () => deep);
}

function applyPoison(info: ProcedureInfo, fields: Record<string, unknown>, p: Poison): unknown {
  const input: Record<string, unknown> = { ...fields };
  const set = (field: string, value: unknown) => {
    Object.defineProperty(input, field, { value, enumerable: true, configurable: true, writable: true });
  };
  switch (p.kind) {
    case 'top':
      return p.value;
    case 'nul':
      set(p.field, nested(p.nestedIn, `before\u0000after${MARK}`, p.nestedIn % 2 === 0));
      return input;
    case 'surrogate':
      set(p.field, nested(p.nestedIn, `lone\uD800surrogate${MARK}`, p.nestedIn % 2 === 1));
      return input;
    case 'deep':
      // Spliced in as text by `serialize` (JSON.stringify itself would overflow this process's stack).
      set(p.field, DEEP_SENTINEL);
      return input;
    case 'wrongType':
      set(p.field, p.value);
      return input;
    case 'tooLong': {
      const max = info.requiredStrings.find((f) => f.name === p.field)?.maxLength ?? 0;
      set(p.field, `${'L'.repeat(max + p.length)}${MARK}`);
      return input;
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Server

let svc: Services;
let http: HttpTestServer;
let closeDatabase: () => Promise<void>;

beforeAll(async () => {
  const database = await openTestDatabase();
  closeDatabase = () => database.close();
  const key = testMasterKey();
  svc = await createServices({
    database,
    keyProvider: new LocalKeyProvider({ active: key, all: [key] }),
    passwordCost: TEST_SCRYPT,
    // Nothing here should reach the network; if something did, it would give up quickly.
    runnerSettings: { ...runnerSettingsOf({}), timeoutMs: 2_000 },
  });
  http = await startHttpServer(svc, {
    signInLimits: { perAccount: 1_000_000, perAddress: 1_000_000, windowMs: 60_000 },
  });
});
afterAll(async () => {
  await http.close();
  await closeDatabase();
});

/** A signed-in user with a workspace, a secret, a workflow and a node, whose ids the inputs may use. */
async function signedInWithObjects(): Promise<{ client: HttpClient; ids: Record<string, string> }> {
  const person = await signUpOverHttp(http, 'Fuzzer');
  const { client, workspaceId } = person;
  const secret = await client.trpc.secrets.create.mutate({
    workspaceId,
    credentialType: 'slackBotToken',
    name: 'Fuzz bot',
    data: { token: 'xoxb-fake-fuzz' },
  });
  const workflow = await client.trpc.workflows.create.mutate({ workspaceId, name: 'Fuzz flow' });
  const node = await client.trpc.workflows.addNode.mutate({
    workflowId: workflow.id,
    name: 'Post',
    nodeType: 'slack',
    params: {},
  });
  return {
    client,
    ids: {
      workspaceId,
      secretId: secret.id,
      workflowId: workflow.id,
      nodeId: node.id,
      userId: person.user.id,
    },
  };
}

async function send(client: HttpClient, info: ProcedureInfo, json: string | undefined) {
  const signal = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
  if (info.type === 'query') {
    const query = json === undefined ? '' : `?input=${encodeURIComponent(json)}`;
    return client.fetch(`/trpc/${info.path}${query}`, { signal });
  }
  return client.fetch(`/trpc/${info.path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    ...(json === undefined ? {} : { body: json }),
    signal,
  });
}

const prototypeNames = () => Object.getOwnPropertyNames(Object.prototype).sort();

describe('every procedure answers hostile input with a 4xx JSON error (fast-check, generated from the router)', () => {
  const objectPrototype = prototypeNames();

  it('covers every procedure of the router', () => {
    expect(procedures.length).toBeGreaterThanOrEqual(30);
    expect(procedures.map((p) => p.path)).toEqual(
      expect.arrayContaining(['secrets.create', 'workflows.run']),
    );
  });

  it.each(procedures.map((p) => [p.path, p] as const))('%s', async (_path, info) => {
    const { client, ids } = await signedInWithObjects();
    const maxRepeat = info.type === 'query' ? 500 : 5_000;
    const hostile = fc.dictionary(
      fc.oneof(
        fc.constantFrom(...(info.fields.length ? info.fields : ['x'])),
        fc.constantFrom(...HOSTILE_KEYS),
      ),
      hostileValue(maxRepeat, ids),
      { maxKeys: info.type === 'query' ? 4 : 6 },
    );
    // Half the time a valid input with the poison as its only fault; otherwise hostile values everywhere.
    const fields = fc.oneof(hostile, fc.constant(validInput(info, ids)));
    await fc.assert(
      fc.asyncProperty(fields, poison(info), async (generated, p) => {
        const json = serialize(applyPoison(info, generated, p), p);
        if (info.type === 'query') fc.pre(encodeURIComponent(json ?? '').length < 12_000);
        const response = await send(client, info, json);
        const context = `${info.path} ${p.kind} → ${response.status} ${response.text.slice(0, 300)}`;
        expect(response.status, context).toBeLessThan(500);
        if (info.hasInput || p.kind !== 'top') {
          expect(response.status, context).toBeGreaterThanOrEqual(400);
        }
        expect(response.headers.get('content-type') ?? '', context).toMatch(/^application\/json/);
        if (response.status >= 400) {
          const body = response.json as { error?: { message?: unknown; data?: { code?: unknown } } };
          expect(typeof body?.error?.message, context).toBe('string');
          expect(typeof body?.error?.data?.code, context).toBe('string');
        }
        expect(response.text.includes(MARK), context).toBe(false);
      }),
      { numRuns: RUNS },
    );
    expect(prototypeNames()).toEqual(objectPrototype);
    expect(({} as Record<string, unknown>).a).toBeUndefined();
  });

  it('logged no unexpected error while fuzzing', () => {
    const errors = http.recorded.logs.filter((line) => (JSON.parse(line) as { level: number }).level >= 50);
    expect(errors).toEqual([]);
  });
});

describe('secrets.list answers a crafted cursor with a 400 that quotes nothing (issue 12, item 5)', () => {
  // The random strings above never decode to JSON, so they never reach the timestamp: these cursors are valid
  // base64url JSON whose content the server did not write. Before the fix, the timestamps that Date.parse accepts
  // and PostgreSQL refuses answered 500 and logged PostgreSQL's error, which quotes them.
  const LOOSE_DATES = [
    '2024-02-30',
    '2024-02-30T00:00:00.000Z',
    '1',
    '0000-01-01T00:00:00.000Z',
    '-000001-01-01T00:00:00Z',
    '+275760-09-13T00:00:00.000Z',
    '12/31/99999',
    'Tue Mar 1 2024',
    '2024-13-45',
    '300000-01-01',
  ];
  const UUID = '0b9d3e1c-5f4a-4c2e-9a7b-3d2f1e0c9b8a';
  const cursorOf = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const crafted = fc.oneof(
    fc
      .record({
        createdAt: fc.oneof(
          fc.constantFrom(...LOOSE_DATES),
          fc
            .date({ noInvalidDate: true })
            .map((date) => date.toISOString())
            .filter((t) => !/^\d{4}-/.test(t)),
          hostileString(40),
        ),
        id: fc.oneof(
          fc.constant(UUID),
          hostileString(40),
          fc.uuid().map((u) => u.toUpperCase()),
        ),
      })
      .map(({ createdAt, id }) => ({ text: createdAt, cursor: cursorOf([createdAt, id]) })),
    fc
      .record({
        createdAt: fc.constant('2026-01-01T00:00:00.000Z'),
        id: fc.oneof(hostileString(40), fc.integer(), fc.constant(null)),
      })
      .map(({ createdAt, id }) => ({ text: String(id), cursor: cursorOf([createdAt, id]) })),
    hostileValue(10, {}).map((value) => ({ text: JSON.stringify(value) ?? '', cursor: cursorOf(value) })),
  );

  it('for any base64url JSON the server did not write', async () => {
    const { client, ids } = await signedInWithObjects();
    const logsBefore = http.recorded.logs.length;
    const list = procedures.find((p) => p.path === 'secrets.list') as ProcedureInfo;
    await fc.assert(
      fc.asyncProperty(crafted, async ({ text, cursor }) => {
        fc.pre(cursor.length <= 512);
        const response = await send(client, list, JSON.stringify({ workspaceId: ids.workspaceId, cursor }));
        const context = `${text} → ${response.status} ${response.text.slice(0, 300)}`;
        expect(response.status, context).toBe(400);
        const body = response.json as { error: { message: string; data: { code: string } } };
        expect(body.error.data.code, context).toBe('BAD_REQUEST');
        expect(body.error.message, context).toContain('cursor');
        expect(response.text.includes(MARK), context).toBe(false);
        if (text.length >= 6) expect(response.text.includes(text), context).toBe(false);
      }),
      {
        numRuns: Math.max(RUNS, 60),
        examples: LOOSE_DATES.map((date) => [{ text: date, cursor: cursorOf([date, UUID]) }]),
      },
    );
    const logged = http.recorded.logs.slice(logsBefore);
    expect(logged.filter((line) => (JSON.parse(line) as { level: number }).level >= 50)).toEqual([]);
    for (const date of LOOSE_DATES.filter((d) => d.length >= 6)) {
      expect(
        logged.some((line) => line.includes(date)),
        date,
      ).toBe(false);
    }
    expect(logged.some((line) => line.includes(MARK))).toBe(false);
  });

  it('still pages with the cursors it wrote', async () => {
    const { client, ids } = await signedInWithObjects();
    await client.trpc.secrets.create.mutate({
      workspaceId: ids.workspaceId as string,
      credentialType: 'slackBotToken',
      name: 'Second fuzz bot',
      data: { token: 'xoxb-fake-fuzz-2' },
    });
    const first = await client.trpc.secrets.list.query({ workspaceId: ids.workspaceId as string, limit: 1 });
    expect(first.nextCursor).toEqual(expect.any(String));
    const second = await client.trpc.secrets.list.query({
      workspaceId: ids.workspaceId as string,
      limit: 1,
      cursor: first.nextCursor as string,
    });
    expect(second.items).toHaveLength(1);
    expect(second.items[0]?.id).not.toBe(first.items[0]?.id);
  });
});
