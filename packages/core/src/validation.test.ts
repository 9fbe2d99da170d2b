import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineCredentialType, defineIntegration } from './contract.js';
import { CREDENTIAL_MAX_BYTES, FIELD_MAX_BYTES, field } from './fields.js';
import { withHeader } from './http.js';
import { createRegistry } from './registry.js';
import { expectRefused } from './testing/index.js';
import { fieldIssuesFromZod, validateAgainst } from './validation.js';

const exampleKey = defineCredentialType({
  type: 'exampleApiKey',
  displayName: 'Example key',
  fields: {
    apiKey: field.secret({
      label: 'API key',
      pattern: /^ex_[a-z0-9]+$/,
      patternMessage: 'An example key looks like ex_ then lower-case letters',
    }),
    region: field.choice(['us', 'eu'], { label: 'Region' }),
    account: field.text({ label: 'Account' }).optional(),
  },
  authenticate: (c, r) => withHeader(r, 'X-Key', c.apiKey),
});

const examplePassword = defineCredentialType({
  type: 'examplePassword',
  displayName: 'Example password',
  fields: { user: field.text({ label: 'User' }), password: field.secret({ label: 'Password' }) },
  authenticate: (_c, r) => r,
});

const example = defineIntegration({
  id: 'example',
  displayName: 'Example',
  description: 'An example integration.',
  nodeType: 'example',
  baseUrls: { default: 'https://api.example.test' },
  credentialTypes: [exampleKey, examplePassword],
  params: z.object({
    title: field.text({ label: 'Title' }),
    body: field.text({ label: 'Body', multiline: true }),
    note: field.text({ label: 'Note' }).optional(),
  }),
  action: async () => ({ ok: true, summary: 'done' }),
});

const registry = createRegistry([example]);
const validKey = { apiKey: 'ex_fakefakefake', region: 'eu' } as const;
const validParams = { title: 'Weekly report', body: 'Line one\nLine two' };

describe('credential validation', () => {
  it('returns the typed value split into public and secret fields', () => {
    expect(registry.validateCredential('exampleApiKey', { ...validKey, account: 'acme' })).toEqual({
      ok: true,
      value: {
        credentialType: 'exampleApiKey',
        integrationId: 'example',
        nodeType: 'example',
        publicFields: { region: 'eu', account: 'acme' },
        secretFields: { apiKey: 'ex_fakefakefake' },
      },
    });
  });

  it('leaves an omitted optional field out of the value', () => {
    const result = registry.validateCredential('exampleApiKey', validKey);
    expect(result.ok && result.value.publicFields).toEqual({ region: 'eu' });
  });

  it('answers an unknown credential type with an issue on credentialType', () => {
    const result = registry.validateCredential('nopeApiKey', validKey);
    expect(expectRefused(result, validKey)).toEqual([
      { path: ['credentialType'], message: 'Unknown credential type' },
    ]);
  });

  it.each([
    ['null', null],
    ['an array', ['ex_fakefakefake', 'eu']],
    ['a string', 'ex_fakefakefake'],
    ['a number', 987654321],
    ['a boolean', true],
    ['undefined', undefined],
  ])('answers %s instead of an object with one issue on the whole value', (_what, data) => {
    const issues = expectRefused(registry.validateCredential('exampleApiKey', data), data);
    expect(issues).toEqual([{ path: [], message: 'Must be an object of fields' }]);
  });

  it('answers data that is not plain JSON (a bigint, a cycle) instead of throwing', () => {
    const cyclic: Record<string, unknown> = { ...validKey };
    cyclic.self = cyclic;
    expect(expectRefused(registry.validateCredential('exampleApiKey', cyclic), validKey)).toEqual([
      { path: [], message: 'Must be plain JSON' },
    ]);
    const big = { ...validKey, apiKey: 123456789n };
    expect(expectRefused(registry.validateCredential('exampleApiKey', big), big)[0]?.message).toBe(
      'Must be plain JSON',
    );
  });

  it('refuses an unknown field, naming the field but not its value', () => {
    const data = { ...validKey, extra: 'ex_smuggledvalue' };
    const issues = expectRefused(registry.validateCredential('exampleApiKey', data), data);
    expect(issues).toEqual([{ path: ['extra'], message: 'Unknown field' }]);
  });

  it('reports each unknown field separately', () => {
    const data = { ...validKey, first: 'ex_one-value', second: 'ex_two-value' };
    const issues = expectRefused(registry.validateCredential('exampleApiKey', data), data);
    expect(issues.map((i) => i.path)).toEqual([['first'], ['second']]);
  });

  it('keeps a hostile unknown field name short and free of control characters', () => {
    const name = `${'n'.repeat(200)}\u0000\r\n`;
    const data = { ...validKey, [name]: 'ex_hiddenvalue' };
    const [issue] = expectRefused(registry.validateCredential('exampleApiKey', data), ['ex_hiddenvalue']);
    expect(issue?.path[0]?.length).toBeLessThanOrEqual(65);
    expect([...(issue?.path[0] ?? '')].some((c) => c.charCodeAt(0) < 0x20)).toBe(false);
  });

  it('refuses a __proto__ key from parsed JSON as an unknown field instead of crashing', () => {
    const data = JSON.parse(
      '{"apiKey":"ex_fakefakefake","region":"eu","__proto__":{"polluted":"ex_protovalue"}}',
    );
    const issues = expectRefused(registry.validateCredential('exampleApiKey', data), data, 'ex_protovalue');
    expect(issues).toEqual([{ path: ['__proto__'], message: 'Unknown field' }]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('names every missing required field', () => {
    const issues = expectRefused(registry.validateCredential('exampleApiKey', {}), {});
    expect(issues).toEqual([
      { path: ['apiKey'], message: 'Required' },
      { path: ['region'], message: 'Required' },
    ]);
  });

  it.each([
    ['a number', 424242424],
    ['a boolean', false],
    ['null', null],
    ['an object holding the key', { value: 'ex_nestedsecret' }],
    ['an array holding the key', ['ex_arraysecret']],
  ])('refuses %s where text is expected, saying so without echoing it', (_what, apiKey) => {
    const data = { ...validKey, apiKey };
    const issues = expectRefused(registry.validateCredential('exampleApiKey', data), data);
    expect(issues).toEqual([{ path: ['apiKey'], message: 'Must be text' }]);
  });

  it('refuses an empty string as a missing value', () => {
    const data = { ...validKey, apiKey: '' };
    const issues = expectRefused(registry.validateCredential('exampleApiKey', data), data);
    expect(issues[0]).toEqual({ path: ['apiKey'], message: 'Required' });
    expect(issues.every((i) => i.path[0] === 'apiKey')).toBe(true);
  });

  it('refuses a value of the wrong format with the schema message, not the value', () => {
    const data = { ...validKey, apiKey: 'SG.fakefakefake.fakefakefake' };
    const issues = expectRefused(registry.validateCredential('exampleApiKey', data), data);
    expect(issues).toEqual([
      { path: ['apiKey'], message: 'An example key looks like ex_ then lower-case letters' },
    ]);
  });

  it('refuses a choice outside the allowed values, listing the allowed ones', () => {
    const data = { ...validKey, region: 'antarctica' };
    const issues = expectRefused(registry.validateCredential('exampleApiKey', data), data);
    expect(issues).toEqual([{ path: ['region'], message: 'Must be one of: us, eu' }]);
  });

  it('replaces a message that would happen to contain the submitted value with a generic one', () => {
    const data = { ...validKey, apiKey: 'looks like ex_' };
    const issues = expectRefused(registry.validateCredential('exampleApiKey', data), data);
    expect(issues).toEqual([{ path: ['apiKey'], message: 'Invalid value' }]);
  });

  it('accepts a field of exactly 8 KiB', () => {
    const password = 'p'.repeat(FIELD_MAX_BYTES);
    expect(registry.validateCredential('examplePassword', { user: 'someone', password }).ok).toBe(true);
    const multiByte = 'é'.repeat(FIELD_MAX_BYTES / 2);
    expect(registry.validateCredential('examplePassword', { user: 'someone', password: multiByte }).ok).toBe(
      true,
    );
  });

  it('refuses a field over 8 KiB of characters', () => {
    const data = { user: 'someone', password: `fake-${'p'.repeat(FIELD_MAX_BYTES)}` };
    const issues = expectRefused(registry.validateCredential('examplePassword', data), data);
    expect(issues).toEqual([{ path: ['password'], message: 'Must be at most 8192 characters' }]);
  });

  it.each([
    ['two-byte', 'é', 4097],
    ['three-byte', '€', 2731],
    ['four-byte', '😀', 2049],
  ])('refuses a field under 8192 characters whose %s UTF-8 exceeds 8192 bytes', (_what, char, count) => {
    const password = char.repeat(count);
    expect(password.length).toBeLessThanOrEqual(FIELD_MAX_BYTES);
    expect(Buffer.byteLength(password, 'utf8')).toBeGreaterThan(FIELD_MAX_BYTES);
    const data = { user: 'someone', password };
    const issues = expectRefused(registry.validateCredential('examplePassword', data), data);
    expect(issues).toEqual([{ path: ['password'], message: 'Must be at most 8192 bytes' }]);
  });

  it('refuses data over 64 KiB in all with one issue, before looking at fields', () => {
    const data: Record<string, string> = { user: 'someone', password: 'fake-password' };
    for (let i = 0; i < 9; i++) data[`padding${i}`] = `fake-${i}-${'x'.repeat(FIELD_MAX_BYTES - 10)}`;
    expect(Buffer.byteLength(JSON.stringify(data))).toBeGreaterThan(CREDENTIAL_MAX_BYTES);
    const issues = expectRefused(registry.validateCredential('examplePassword', data), data);
    expect(issues).toEqual([{ path: [], message: 'Must be at most 65536 bytes in all' }]);
  });

  it.each([
    ['NUL', '\u0000'],
    ['CR', '\r'],
    ['LF', '\n'],
    ['ESC', '\u001b'],
    ['TAB', '\t'],
    ['DEL', '\u007f'],
  ])('refuses a %s control character in a single-line field', (_what, char) => {
    const data = { user: `some${char}one-user`, password: `fake${char}password` };
    const issues = expectRefused(registry.validateCredential('examplePassword', data), data);
    expect(issues).toEqual([
      { path: ['user'], message: 'Must not contain control characters' },
      { path: ['password'], message: 'Must not contain control characters' },
    ]);
  });

  it('reports several broken fields at once, each on its own path', () => {
    const data = { apiKey: 'ex_BAD KEY', region: 'mars-region', account: '' };
    const issues = expectRefused(registry.validateCredential('exampleApiKey', data), data);
    expect(new Set(issues.map((i) => i.path.join('.')))).toEqual(new Set(['apiKey', 'region', 'account']));
  });
});

describe('params validation', () => {
  it('accepts complete params, keeping line breaks in multi-line fields', () => {
    const params = { ...validParams, body: 'one\ntwo\r\nthree\tcolumn' };
    expect(registry.validateParams('example', params)).toEqual({ ok: true, value: params });
  });

  it('requires every required field when complete (the default)', () => {
    const issues = expectRefused(registry.validateParams('example', { title: 'Only a title' }), {});
    expect(issues).toEqual([{ path: ['body'], message: 'Required' }]);
    expect(registry.validateParams('example', { title: 'Only a title' }, 'complete').ok).toBe(false);
  });

  it('accepts a partial draft while a node is being configured', () => {
    expect(registry.validateParams('example', {}, 'draft')).toEqual({ ok: true, value: {} });
    expect(registry.validateParams('example', { title: 'Draft' }, 'draft')).toEqual({
      ok: true,
      value: { title: 'Draft' },
    });
  });

  it('treats missing params as empty: fine as a draft, incomplete at run time', () => {
    expect(registry.validateParams('example', undefined, 'draft').ok).toBe(true);
    const issues = expectRefused(registry.validateParams('example', null), {});
    expect(issues.map((i) => i.path)).toEqual([['title'], ['body']]);
  });

  it('still checks the fields a draft does give', () => {
    const draft = { title: 'bad\u0000title' };
    const issues = expectRefused(registry.validateParams('example', draft, 'draft'), draft);
    expect(issues).toEqual([{ path: ['title'], message: 'Must not contain control characters' }]);
  });

  it.each([
    ['NUL', '\u0000'],
    ['ESC', '\u001b'],
    ['vertical tab', '\u000b'],
  ])('refuses a %s even in a multi-line field', (_what, char) => {
    const params = { ...validParams, body: `first line\nsecond${char}line` };
    const issues = expectRefused(registry.validateParams('example', params), params);
    expect(issues).toEqual([{ path: ['body'], message: 'Must not contain control characters' }]);
  });

  it('refuses a line break in a single-line param', () => {
    const params = { ...validParams, title: 'Weekly\nreport-title' };
    const issues = expectRefused(registry.validateParams('example', params), params);
    expect(issues).toEqual([{ path: ['title'], message: 'Must not contain control characters' }]);
  });

  it('refuses a param over 8 KiB', () => {
    const params = { ...validParams, body: 'b'.repeat(FIELD_MAX_BYTES + 1) };
    const issues = expectRefused(registry.validateParams('example', params), params);
    expect(issues).toEqual([{ path: ['body'], message: 'Must be at most 8192 characters' }]);
  });

  it.each([
    ['an array', ['Weekly report']],
    ['a string', 'Weekly report'],
  ])('answers params that are %s instead of an object', (_what, params) => {
    expect(expectRefused(registry.validateParams('example', params), params)).toEqual([
      { path: [], message: 'Must be an object of fields' },
    ]);
  });

  it('refuses a wrong type in params without echoing it', () => {
    const params = { ...validParams, note: 31337 };
    expect(expectRefused(registry.validateParams('example', params), params)).toEqual([
      { path: ['note'], message: 'Must be text' },
    ]);
  });

  it('answers an unknown node type with an issue on nodeType', () => {
    expect(expectRefused(registry.validateParams('unknownNode', validParams), validParams)).toEqual([
      { path: ['nodeType'], message: 'Unknown node type' },
    ]);
  });
});

describe('validateAgainst', () => {
  it('validates against any zod schema with the same guarantees', () => {
    const schema = z.strictObject({ code: field.secret({ label: 'Code', pattern: /^\d+$/ }) });
    expect(validateAgainst(schema, { code: '1234' })).toEqual({ ok: true, value: { code: '1234' } });
    const data = { code: 'ex_not-digits' };
    expect(expectRefused(validateAgainst(schema, data), data)).toEqual([
      { path: ['code'], message: 'Has the wrong format' },
    ]);
  });

  it('runs a field check and reports its message', () => {
    const schema = z.strictObject({
      user: field.text({ label: 'User', check: (v) => (v.includes(':') ? 'Cannot contain ":"' : undefined) }),
    });
    const data = { user: 'fake:user-name' };
    expect(expectRefused(validateAgainst(schema, data), data)).toEqual([
      { path: ['user'], message: 'Cannot contain ":"' },
    ]);
  });
});

describe('fieldIssuesFromZod', () => {
  const issuesOf = (schema: z.ZodType, data: unknown, reportInput?: boolean) => {
    const parsed = schema.safeParse(data, reportInput ? { reportInput } : undefined);
    return parsed.success ? [] : fieldIssuesFromZod(parsed.error.issues);
  };
  const input = z.object({
    name: z.string().min(1).max(5),
    role: z.enum(['owner', 'viewer']),
    email: z.email(),
    id: z.uuid(),
    count: z.number().min(2),
  });

  it('words the issues zod words itself for a person, as tRPC input gets them (no input reported)', () => {
    expect(issuesOf(input, { name: '', role: 'boss', email: 'x', id: 'y', count: 1 })).toEqual([
      { path: ['name'], message: 'Required' },
      { path: ['role'], message: 'Must be one of: owner, viewer' },
      { path: ['email'], message: 'Must be an email address' },
      { path: ['id'], message: 'Has the wrong format' },
      { path: ['count'], message: 'Must be at least 2' },
    ]);
    expect(issuesOf(input, { name: 'too long', role: 'owner' })).toEqual(
      expect.arrayContaining([
        { path: ['name'], message: 'Must be at most 5 characters' },
        { path: ['email'], message: 'Required' },
      ]),
    );
  });

  it('tells a missing choice from a wrong one when the input is reported', () => {
    const choice = z.object({ role: z.enum(['owner', 'viewer']) });
    expect(issuesOf(choice, {}, true)).toEqual([{ path: ['role'], message: 'Required' }]);
    expect(issuesOf(choice, { role: 'boss' }, true)).toEqual([
      { path: ['role'], message: 'Must be one of: owner, viewer' },
    ]);
    expect(issuesOf(z.object({ n: z.string() }), { n: 42 }, true)).toEqual([
      { path: ['n'], message: 'Must be text' },
    ]);
  });

  it('keeps a message the schema wrote', () => {
    const schema = z.object({ password: z.string().min(10, { error: 'Must be at least 10 characters' }) });
    expect(issuesOf(schema, { password: 'short' })).toEqual([
      { path: ['password'], message: 'Must be at least 10 characters' },
    ]);
  });
});
