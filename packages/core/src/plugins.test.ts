/**
 * The registry built from the four real plugins of this repository, read from their sources (core does not
 * depend on them; the server's plugin list does). Each plugin's own behaviour is tested in its package.
 */
import { describe, expect, it } from 'vitest';
import type { IntegrationDefinition } from './contract.js';
import { createRegistry, type JsonSchema } from './registry.js';

const PLUGIN_PACKAGES = ['http-request', 'sendgrid', 'mailgun', 'slack'];

const plugins: IntegrationDefinition[] = await Promise.all(
  PLUGIN_PACKAGES.map(async (name) => {
    const module = (await import(`../../integrations/${name}/src/index.ts`)) as {
      default: IntegrationDefinition;
    };
    return module.default;
  }),
);
const registry = createRegistry(plugins);
const described = registry.describe();
const credentialTypes = described.flatMap((i) =>
  i.credentialTypes.map((c) => ({ ...c, nodeType: i.nodeType })),
);

/** Expected fields of every credential type: `true` for secret, `false` for shown in clear. */
const EXPECTED_FIELDS: Record<string, Record<string, boolean>> = {
  httpBearerToken: { token: true, allowedDomains: false },
  httpBasicAuth: { username: false, password: true, allowedDomains: false },
  httpHeaderAuth: { headerName: false, headerValue: true, allowedDomains: false },
  httpQueryAuth: { paramName: false, paramValue: true, allowedDomains: false },
  httpOAuth2AuthorizationCode: {
    clientId: false,
    clientSecret: true,
    authorizationUrl: false,
    tokenUrl: false,
    allowedDomains: false,
  },
  httpOAuth2ClientCredentials: {
    clientId: false,
    clientSecret: true,
    tokenUrl: false,
    allowedDomains: false,
  },
  sendgridApiKey: { apiKey: true },
  mailgunApiKey: { apiKey: true, domain: false, region: false },
  slackBotToken: { token: true },
  slackWebhook: { webhookUrl: true },
  slackOAuth: { clientId: false, clientSecret: true },
};

/** Optional (not required) fields, all public. (HTTP Request's allowed domains became required: claim 29.) */
const OPTIONAL_FIELDS: Record<string, string[]> = {
  httpOAuth2AuthorizationCode: ['scopes'],
  httpOAuth2ClientCredentials: ['scopes'],
  slackOAuth: ['scopes'],
};

const properties = (schema: JsonSchema) => schema.properties as Record<string, Record<string, unknown>>;

describe('the registry of the four plugins', () => {
  it('describes 4 integrations and 11 credential types, each with a JSON Schema and its kind', () => {
    expect(described.map((i) => [i.id, i.nodeType])).toEqual([
      ['http-request', 'httpRequest'],
      ['sendgrid', 'sendgrid'],
      ['mailgun', 'mailgun'],
      ['slack', 'slack'],
    ]);
    expect(credentialTypes.map((c) => c.type).sort()).toEqual(Object.keys(EXPECTED_FIELDS).sort());
    for (const credential of credentialTypes) {
      expect(credential.jsonSchema, credential.type).toMatchObject({
        type: 'object',
        properties: expect.any(Object),
      });
    }
    expect(credentialTypes.filter((c) => c.kind === 'oauth2').map((c) => [c.type, c.grant])).toEqual([
      ['httpOAuth2AuthorizationCode', 'authorizationCode'],
      ['httpOAuth2ClientCredentials', 'clientCredentials'],
      ['slackOAuth', 'authorizationCode'],
    ]);
  });

  it('gives every integration a display name, a description and a params schema', () => {
    for (const integration of described) {
      expect(integration.displayName.length, integration.id).toBeGreaterThan(0);
      expect(integration.description.length, integration.id).toBeGreaterThan(0);
      expect(integration.paramsSchema, integration.id).toMatchObject({
        type: 'object',
        required: expect.any(Array),
      });
      for (const [name, property] of Object.entries(properties(integration.paramsSchema))) {
        expect(property.label, `${integration.id} param ${name}`).toEqual(expect.any(String));
        expect(property.secret, `${integration.id} param ${name}`).toBe(false);
      }
    }
  });

  it('describes the params each node needs', () => {
    const params = Object.fromEntries(described.map((i) => [i.nodeType, i.paramsSchema]));
    expect(params.httpRequest?.required).toEqual(['method', 'url']);
    expect(properties(params.httpRequest ?? {}).method?.enum).toEqual([
      'GET',
      'POST',
      'PUT',
      'PATCH',
      'DELETE',
      'HEAD',
    ]);
    expect(properties(params.httpRequest ?? {}).body).toMatchObject({ multiline: true });
    expect(params.sendgrid?.required).toEqual(['from', 'to', 'subject', 'text']);
    expect(params.mailgun?.required).toEqual(['from', 'to', 'subject', 'text']);
    expect(params.slack?.required).toEqual(['text']);
    expect(Object.keys(properties(params.slack ?? {}))).toEqual(['channel', 'text']);
  });

  it.each(Object.entries(EXPECTED_FIELDS))(
    'exports %s with secret flags, required fields and no extra fields',
    (type, fields) => {
      const credential = credentialTypes.find((c) => c.type === type);
      expect(credential).toBeDefined();
      const schema = credential?.jsonSchema ?? {};
      expect(schema.additionalProperties).toBe(false);
      expect(schema.required).toEqual(Object.keys(fields));
      const optional = OPTIONAL_FIELDS[type] ?? [];
      expect(Object.keys(properties(schema)).sort()).toEqual([...Object.keys(fields), ...optional].sort());
      for (const name of optional)
        expect(properties(schema)[name], `${type}.${name}`).toMatchObject({ secret: false });
      for (const [name, secret] of Object.entries(fields)) {
        expect(properties(schema)[name], `${type}.${name}`).toMatchObject({
          secret,
          label: expect.any(String),
        });
      }
      expect(credential?.secretFields).toEqual(Object.keys(fields).filter((name) => fields[name]));
    },
  );

  it('offers Mailgun regions as an enum of us and eu', () => {
    const schema = credentialTypes.find((c) => c.type === 'mailgunApiKey')?.jsonSchema ?? {};
    expect(properties(schema).region).toMatchObject({ type: 'string', enum: ['us', 'eu'], secret: false });
  });

  it('carries format hints and patterns for keys with a known shape', () => {
    const property = (type: string, name: string) =>
      properties(credentialTypes.find((c) => c.type === type)?.jsonSchema ?? {})[name];
    expect(property('sendgridApiKey', 'apiKey')).toMatchObject({
      formatHint: 'Starts with `SG.`.',
      pattern: expect.any(String),
    });
    expect(property('slackBotToken', 'token')).toMatchObject({
      formatHint: 'Starts with `xoxb-`.',
      pattern: expect.any(String),
    });
    expect(property('slackWebhook', 'webhookUrl')).toMatchObject({
      pattern: expect.stringContaining('hooks'),
    });
    expect(property('httpHeaderAuth', 'headerName')).toMatchObject({ pattern: expect.any(String) });
  });

  it('marks the credential types that can be tested against their service', () => {
    const testable = credentialTypes.filter((c) => c.testable).map((c) => c.type);
    expect(testable.sort()).toEqual(['mailgunApiKey', 'sendgridApiKey', 'slackBotToken', 'slackOAuth']);
  });

  it('scopes every credential type to the node type of its integration only', () => {
    expect(registry.credentialTypesForNodeType('httpRequest')).toEqual([
      'httpBearerToken',
      'httpBasicAuth',
      'httpHeaderAuth',
      'httpQueryAuth',
      'httpOAuth2AuthorizationCode',
      'httpOAuth2ClientCredentials',
    ]);
    expect(registry.credentialTypesForNodeType('sendgrid')).toEqual(['sendgridApiKey']);
    expect(registry.credentialTypesForNodeType('mailgun')).toEqual(['mailgunApiKey']);
    expect(registry.credentialTypesForNodeType('slack')).toEqual([
      'slackBotToken',
      'slackWebhook',
      'slackOAuth',
    ]);
    for (const credential of credentialTypes) {
      for (const integration of described) {
        expect(
          registry.accepts(integration.nodeType, credential.type),
          `${integration.nodeType} ← ${credential.type}`,
        ).toBe(integration.nodeType === credential.nodeType);
      }
    }
  });

  it('routes validation to the right plugin and keeps secret fields apart from shown ones', () => {
    const result = registry.validateCredential('mailgunApiKey', {
      apiKey: 'fake-mailgun-key-0000',
      domain: 'mg.example.com',
      region: 'eu',
    });
    expect(result).toEqual({
      ok: true,
      value: {
        credentialType: 'mailgunApiKey',
        integrationId: 'mailgun',
        nodeType: 'mailgun',
        publicFields: { domain: 'mg.example.com', region: 'eu' },
        secretFields: { apiKey: 'fake-mailgun-key-0000' },
      },
    });
  });

  it('is refused when a plugin is listed twice', () => {
    expect(() => createRegistry([...plugins, plugins[1] as IntegrationDefinition])).toThrow(/"sendgrid"/);
  });
});
