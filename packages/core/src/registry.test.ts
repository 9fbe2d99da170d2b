import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type CredentialTypeDefinition,
  defineCredentialType,
  defineIntegration,
  type IntegrationDefinition,
} from './contract.js';
import { field } from './fields.js';
import { withHeader } from './http.js';
import { createRegistry, IntegrationDeclarationError } from './registry.js';

const apiKey = defineCredentialType({
  type: 'exampleApiKey',
  displayName: 'Example key',
  fields: {
    apiKey: field.secret({ label: 'API key' }),
    region: field.choice(['us', 'eu'], { label: 'Region' }),
  },
  authenticate: (c, r) => withHeader(r, 'X-Key', c.apiKey),
});

const example = defineIntegration({
  id: 'example',
  displayName: 'Example',
  description: 'An example integration.',
  nodeType: 'example',
  baseUrls: { default: 'https://api.example.test' },
  credentialTypes: [apiKey],
  params: z.object({ text: field.text({ label: 'Text' }) }),
  action: async () => ({ ok: true, summary: 'done' }),
});

/** A well-formed credential type with its own type name. */
function credentialType(
  type: string,
  fields: Record<string, z.ZodType> = { token: field.secret({ label: 'Token' }) },
) {
  return defineCredentialType({
    type,
    displayName: `Credential ${type}`,
    fields: fields as Record<string, z.ZodType<string>>,
    authenticate: (_c, r) => r,
  });
}

/** A well-formed plugin, with whatever the test wants to break replaced. */
function plugin(overrides: Record<string, unknown> = {}): IntegrationDefinition {
  const id = typeof overrides.id === 'string' ? overrides.id : 'other';
  return {
    ...example,
    id,
    nodeType: `${id.replace(/-/g, '')}Node`,
    credentialTypes: [credentialType(`${id.replace(/-/g, '')}Token`)],
    ...overrides,
  } as unknown as IntegrationDefinition;
}

/** Asserts that building the registry stops with a declaration error whose message names the plugin(s). */
function expectRefused(plugins: unknown[], ...named: string[]): string {
  let caught: unknown;
  try {
    createRegistry(plugins as IntegrationDefinition[]);
  } catch (error) {
    caught = error;
  }
  expect(caught, 'the registry accepted a declaration it should refuse').toBeInstanceOf(
    IntegrationDeclarationError,
  );
  const message = (caught as Error).message;
  for (const name of named) expect(message).toContain(`"${name}"`);
  return message;
}

describe('registry', () => {
  it('answers which credential types a node type accepts', () => {
    const registry = createRegistry([example]);
    expect(registry.credentialTypesForNodeType('example')).toEqual(['exampleApiKey']);
    expect(registry.accepts('example', 'exampleApiKey')).toBe(true);
    expect(registry.accepts('other', 'exampleApiKey')).toBe(false);
  });

  it('rejects a plugin declared twice, naming it', () => {
    expect(() => createRegistry([example, example])).toThrow(IntegrationDeclarationError);
    expect(() => createRegistry([example, example])).toThrow(/"example"/);
  });

  it('splits valid data into public and secret fields', () => {
    const result = createRegistry([example]).validateCredential('exampleApiKey', {
      apiKey: 'fake-key-1',
      region: 'eu',
    });
    expect(result).toEqual({
      ok: true,
      value: {
        credentialType: 'exampleApiKey',
        integrationId: 'example',
        nodeType: 'example',
        publicFields: { region: 'eu' },
        secretFields: { apiKey: 'fake-key-1' },
      },
    });
  });
});

describe('registry lookups', () => {
  const other = plugin({ id: 'other-service' });
  const registry = createRegistry([example, other]);

  it('finds an integration by id and by node type', () => {
    expect(registry.integration('example')).toBe(example);
    expect(registry.integrationForNodeType('otherserviceNode')).toBe(other);
    expect(registry.integration('missing')).toBeUndefined();
    expect(registry.integrationForNodeType('missing')).toBeUndefined();
    expect(registry.integrations.map((i) => i.id)).toEqual(['example', 'other-service']);
  });

  it('finds a credential type together with the integration that declares it', () => {
    const found = registry.credentialType('otherserviceToken');
    expect(found?.integration.id).toBe('other-service');
    expect(found?.definition.type).toBe('otherserviceToken');
    expect(registry.credentialType('exampleApiKey')?.integration).toBe(example);
    expect(registry.credentialType('nope')).toBeUndefined();
  });

  it('offers a credential type to the node type of its own integration only', () => {
    expect(registry.accepts('example', 'exampleApiKey')).toBe(true);
    expect(registry.accepts('otherserviceNode', 'exampleApiKey')).toBe(false);
    expect(registry.accepts('example', 'otherserviceToken')).toBe(false);
    expect(registry.accepts('example', 'unknownType')).toBe(false);
  });

  it('answers an unknown node type with no credential types', () => {
    expect(registry.credentialTypesForNodeType('unknownNode')).toEqual([]);
    expect(registry.credentialTypesForNodeType('__proto__')).toEqual([]);
  });

  it('does not treat inherited object keys as declarations', () => {
    expect(registry.credentialType('constructor')).toBeUndefined();
    expect(registry.integration('toString')).toBeUndefined();
    expect(registry.validateCredential('__proto__', {}).ok).toBe(false);
  });
});

describe('registry description', () => {
  it('describes every integration with its node type, params schema and credential types', () => {
    const [description] = createRegistry([example]).describe();
    expect(description).toMatchObject({
      id: 'example',
      displayName: 'Example',
      description: 'An example integration.',
      nodeType: 'example',
    });
    expect(description?.paramsSchema).toMatchObject({
      type: 'object',
      properties: { text: { type: 'string', label: 'Text', secret: false } },
      required: ['text'],
    });
    expect(description?.credentialTypes).toEqual([
      {
        type: 'exampleApiKey',
        displayName: 'Example key',
        jsonSchema: expect.objectContaining({ type: 'object', additionalProperties: false }),
        secretFields: ['apiKey'],
        testable: false,
        kind: 'static',
      },
    ]);
  });

  it('exports each credential type as a JSON Schema with secret flags, enums and required fields', () => {
    const jsonSchema = createRegistry([example]).describe()[0]?.credentialTypes[0]?.jsonSchema;
    expect(jsonSchema).toMatchObject({
      type: 'object',
      additionalProperties: false,
      required: ['apiKey', 'region'],
      properties: {
        apiKey: { type: 'string', label: 'API key', secret: true, maxLength: 8192, minLength: 1 },
        region: { type: 'string', enum: ['us', 'eu'], label: 'Region', secret: false },
      },
    });
  });

  it('leaves optional fields out of required', () => {
    const optional = plugin({
      id: 'optional',
      credentialTypes: [
        credentialType('optionalToken', {
          token: field.secret({ label: 'Token' }),
          account: field.text({ label: 'Account' }).optional(),
        }),
      ],
    });
    const jsonSchema = createRegistry([optional]).describe()[0]?.credentialTypes[0]?.jsonSchema;
    expect(jsonSchema?.required).toEqual(['token']);
    expect(jsonSchema?.properties).toMatchObject({ account: { label: 'Account', secret: false } });
  });

  it('marks a credential type with a test request as testable', () => {
    const tested = plugin({
      id: 'tested',
      credentialTypes: [
        defineCredentialType({
          type: 'testedToken',
          displayName: 'Tested',
          fields: { token: field.secret({ label: 'Token' }) },
          authenticate: (_c, r) => r,
          test: {
            request: () => ({ method: 'GET', url: 'https://api.example.test/me', headers: {} }),
            interpret: () => ({ ok: true, message: 'fine' }),
          },
        }),
      ],
    });
    expect(createRegistry([tested]).describe()[0]?.credentialTypes[0]?.testable).toBe(true);
  });

  it('is plain JSON that survives serialisation unchanged', () => {
    const described = createRegistry([example, plugin()]).describe();
    expect(JSON.parse(JSON.stringify(described))).toEqual(described);
  });

  it('hands out a copy, so a caller cannot change what the registry describes', () => {
    const registry = createRegistry([example]);
    const first = registry.describe()[0]?.credentialTypes[0];
    if (!first) throw new Error('the example credential type is missing');
    (first.jsonSchema.properties as Record<string, unknown>).apiKey = 'tampered';
    first.secretFields.length = 0;
    const second = registry.describe()[0]?.credentialTypes[0];
    expect(second?.secretFields).toEqual(['apiKey']);
    expect(second?.jsonSchema.properties).toMatchObject({ apiKey: { secret: true } });
  });
});

describe('registry construction refuses malformed or clashing plugins', () => {
  it('refuses an integration id declared by two plugins, naming it', () => {
    expect(expectRefused([example, plugin({ id: 'example', nodeType: 'exampleTwo' })], 'example')).toMatch(
      /twice/,
    );
  });

  it('refuses a node type provided by two plugins, naming both', () => {
    const message = expectRefused(
      [example, plugin({ id: 'copycat', nodeType: 'example' })],
      'copycat',
      'example',
    );
    expect(message).toMatch(/node type/);
  });

  it('refuses a credential type declared by two plugins, naming both', () => {
    const message = expectRefused(
      [example, plugin({ id: 'copycat', credentialTypes: [apiKey] })],
      'copycat',
      'example',
    );
    expect(message).toContain('"exampleApiKey"');
  });

  it('refuses a credential type declared twice by the same plugin', () => {
    const twice = plugin({
      id: 'twice',
      credentialTypes: [credentialType('sameToken'), credentialType('sameToken')],
    });
    expect(expectRefused([twice], 'twice', 'sameToken')).toMatch(/already declared/);
  });

  it.each([
    ['an upper-case integration id', { id: 'Example' }, 'Example'],
    ['an integration id with underscores', { id: 'my_service' }, 'my_service'],
    ['an integration id ending in a dash', { id: 'service-' }, 'service-'],
    ['an integration id starting with a digit', { id: '1service' }, '1service'],
    ['a node type with dashes', { id: 'dashes', nodeType: 'my-node' }, 'dashes'],
    ['a node type starting upper-case', { id: 'upper', nodeType: 'MyNode' }, 'upper'],
    ['an empty node type', { id: 'empty', nodeType: '' }, 'empty'],
  ])('refuses %s, naming the plugin', (_what, overrides, name) => {
    expectRefused([plugin(overrides)], name);
  });

  it('names a plugin without an id as unnamed', () => {
    expect(expectRefused([plugin({ id: undefined })])).toContain('(unnamed)');
  });

  it.each([
    ['with dashes', 'bad-type'],
    ['starting upper-case', 'BadType'],
    ['empty', ''],
  ])('refuses a credential type name %s, naming the plugin', (_what, type) => {
    const bad = plugin({ id: 'badtype', credentialTypes: [credentialType(type)] });
    expect(expectRefused([bad], 'badtype')).toMatch(/camelCase/);
  });

  it('refuses a credential field name that is not camelCase, naming the plugin and the field', () => {
    const bad = plugin({
      id: 'snake',
      credentialTypes: [credentialType('snakeToken', { api_key: field.secret({ label: 'Key' }) })],
    });
    expectRefused([bad], 'snake', 'api_key');
  });

  it('refuses a credential field without label metadata (a plain z.string()), naming the plugin and the field', () => {
    const bad = plugin({
      id: 'plain',
      credentialTypes: [
        credentialType('plainToken', { token: field.secret({ label: 'Token' }), extra: z.string() }),
      ],
    });
    expect(expectRefused([bad], 'plain', 'extra')).toMatch(/label/);
  });

  it('refuses a field whose label is blank', () => {
    const bad = plugin({
      id: 'blank',
      credentialTypes: [
        credentialType('blankToken', { token: z.string().meta({ label: '  ', secret: true }) }),
      ],
    });
    expect(expectRefused([bad], 'blank', 'token')).toMatch(/label/);
  });

  it('refuses a field that does not say whether it is secret', () => {
    const bad = plugin({
      id: 'unsure',
      credentialTypes: [credentialType('unsureToken', { token: z.string().meta({ label: 'Token' }) })],
    });
    expect(expectRefused([bad], 'unsure', 'token')).toMatch(/secret/);
  });

  it('refuses a field whose example breaks its own rules, naming the plugin and the field', () => {
    const bad = plugin({
      id: 'wrong-example',
      credentialTypes: [
        credentialType('wrongExampleToken', {
          token: field.secret({ label: 'Token', pattern: /^tok_/, example: 'fake-token' }),
        }),
      ],
    });
    expect(expectRefused([bad], 'wrong-example', 'token')).toMatch(/example/);
    const badParam = plugin({
      id: 'wrong-param-example',
      params: z.object({ count: field.choice(['one', 'two'], { label: 'Count', example: 'three' }) }),
    });
    expect(expectRefused([badParam], 'wrong-param-example', 'count')).toMatch(/example/);
  });

  it('accepts examples that fit their fields and publishes them in the JSON Schema', () => {
    const good = plugin({
      id: 'good-example',
      credentialTypes: [
        credentialType('goodExampleToken', {
          token: field.secret({ label: 'Token', pattern: /^tok_/, example: 'tok_fake' }),
        }),
      ],
    });
    const [description] = createRegistry([good]).describe();
    expect(description?.credentialTypes[0]?.jsonSchema).toMatchObject({
      properties: { token: { example: 'tok_fake', secret: true } },
    });
  });

  it('refuses a params field without label metadata, naming the plugin', () => {
    const bad = plugin({
      id: 'params',
      params: z.object({ text: field.text({ label: 'Text' }), raw: z.string() }),
    });
    expect(expectRefused([bad], 'params', 'raw')).toMatch(/params/);
  });

  it('refuses a credential type with no secret field, naming the plugin', () => {
    const bad = plugin({
      id: 'public',
      credentialTypes: [credentialType('publicOnly', { user: field.text({ label: 'User' }) })],
    });
    expect(expectRefused([bad], 'public', 'publicOnly')).toMatch(/no secret field/);
  });

  it('refuses a credential type with no fields, naming the plugin', () => {
    const bad = plugin({ id: 'fieldless', credentialTypes: [credentialType('fieldlessToken', {})] });
    expect(expectRefused([bad], 'fieldless')).toMatch(/no fields/);
  });

  it('refuses an integration with no credential types, naming it', () => {
    expect(expectRefused([plugin({ id: 'nocreds', credentialTypes: [] })], 'nocreds')).toMatch(
      /no credential types/,
    );
    expectRefused([plugin({ id: 'nolist', credentialTypes: undefined })], 'nolist');
  });

  it.each([
    ['a plain object', { text: field.text({ label: 'Text' }) }],
    ['a zod string', z.string()],
    ['missing', undefined],
  ])('refuses params that are %s instead of a zod object, naming the plugin', (_what, params) => {
    expect(expectRefused([plugin({ id: 'params', params })], 'params')).toMatch(
      /params must be a zod object/,
    );
  });

  it('refuses a credential schema that cannot be turned into JSON Schema (a date field), naming the plugin', () => {
    const bad = plugin({
      id: 'dated',
      credentialTypes: [
        credentialType('datedToken', {
          token: field.secret({ label: 'Token' }),
          expires: z.date().meta({ label: 'Expires', secret: false }),
        }),
      ],
    });
    expect(expectRefused([bad], 'dated', 'datedToken')).toMatch(/JSON Schema/);
  });

  it('refuses params that cannot be turned into JSON Schema (a bigint field), naming the plugin', () => {
    const bad = plugin({
      id: 'bignum',
      params: z.object({ count: z.bigint().meta({ label: 'Count', secret: false }) }),
    });
    expect(expectRefused([bad], 'bignum')).toMatch(/params cannot be described as JSON Schema/);
  });

  it('refuses a plugin without an action, naming it', () => {
    expect(expectRefused([plugin({ id: 'idle', action: undefined })], 'idle')).toMatch(/action/);
  });

  it.each([
    ['an ftp URL', { default: 'ftp://files.example.test' }, 'default'],
    ['a bare host', { eu: 'api.example.test' }, 'eu'],
    ['an empty string', { default: '' }, 'default'],
    ['a relative path', { default: '/api' }, 'default'],
  ])('refuses a base URL that is %s, naming the plugin and the variant', (_what, baseUrls, variant) => {
    expect(expectRefused([plugin({ id: 'urls', baseUrls })], 'urls', variant)).toMatch(/http\(s\) URL/);
  });

  it('refuses baseUrls that are not an object, naming the plugin', () => {
    expectRefused([plugin({ id: 'nourls', baseUrls: undefined })], 'nourls');
  });

  it.each(['displayName', 'description'])('refuses an integration without a %s, naming it', (key) => {
    expect(expectRefused([plugin({ id: 'terse', [key]: ' ' })], 'terse')).toContain(key);
  });

  it('refuses a credential type without a display name', () => {
    const bad = plugin({
      id: 'anon',
      credentialTypes: [{ ...credentialType('anonToken'), displayName: '' }],
    });
    expectRefused([bad], 'anon', 'anonToken');
  });

  it('refuses a credential type not built with defineCredentialType', () => {
    const { schema: _schema, ...withoutSchema } = credentialType('rawToken');
    const bad = plugin({ id: 'raw', credentialTypes: [withoutSchema] });
    expect(expectRefused([bad], 'raw', 'rawToken')).toMatch(/defineCredentialType/);
  });

  it('refuses a credential type without authenticate', () => {
    const bad = plugin({
      id: 'noauth',
      credentialTypes: [{ ...credentialType('noauthToken'), authenticate: undefined }],
    });
    expect(expectRefused([bad], 'noauth', 'noauthToken')).toMatch(/authenticate/);
  });

  it('refuses a test without both request and interpret', () => {
    const half: CredentialTypeDefinition = {
      ...credentialType('halfToken'),
      test: { request: () => ({ method: 'GET', url: 'https://x.test', headers: {} }) } as never,
    };
    expect(expectRefused([plugin({ id: 'half', credentialTypes: [half] })], 'half', 'halfToken')).toMatch(
      /interpret/,
    );
  });

  it('refuses an entry that is not a plugin object instead of crashing', () => {
    expectRefused([null]);
    expectRefused(['sendgrid']);
  });

  it('refuses the whole list when one plugin is broken, even after good ones', () => {
    expectRefused([example, plugin({ id: 'broken', action: 'not a function' })], 'broken');
  });
});
