/**
 * The conformance checks catch what they are meant to catch: each broken toy plugin below fails the one
 * check it breaks, and the well-behaved toy passes the whole suite.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  type CredentialTypeDefinition,
  defineCredentialType,
  defineIntegration,
  type IntegrationDefinition,
} from '../contract.js';
import { field } from '../fields.js';
import { basicAuthorization, bearerAuthorization, joinUrl, withHeader } from '../http.js';
import { createRegistry } from '../registry.js';
import { secretValueForms } from '../secret-forms.js';
import {
  actionSummaryProblems,
  actionTargetProblems,
  authenticateProblems,
  declarationProblems,
  refusedProblems,
  type SampleCredential,
  testOutcomeProblems,
  testRequestProblems,
} from './checks.js';
import { describeIntegrationConformance } from './conformance.js';
import { echoResponse, exampleSample, invalidSamples } from './samples.js';
import { carriesSecret, showsSecret } from './secret-search.js';

const toyKey = defineCredentialType({
  type: 'toyApiKey',
  displayName: 'Toy API key',
  fields: {
    apiKey: field.secret({ label: 'API key', pattern: /^toy_/, example: 'toy_fake_key_123' }),
    region: field.choice(['one', 'two'], { label: 'Region', example: 'two' }),
  },
  authenticate: (credential, request) =>
    withHeader(request, 'Authorization', bearerAuthorization(credential.apiKey)),
  test: {
    request: (publicFields, ctx) => ({
      method: 'GET',
      url: joinUrl(ctx.baseUrl(publicFields.region), '/me'),
      headers: {},
    }),
    interpret: (response) =>
      response.status === 200
        ? { ok: true, message: 'The toy service accepted the key.' }
        : { ok: false, message: `The toy service answered HTTP ${response.status}.` },
  },
});

const toy = defineIntegration({
  id: 'toy',
  displayName: 'Toy',
  description: 'A well-behaved toy integration.',
  nodeType: 'toy',
  baseUrls: { one: 'https://one.toy.example', two: 'https://two.toy.example/api' },
  credentialTypes: [toyKey],
  params: z.object({ text: field.text({ label: 'Text', example: 'hello' }) }),
  action: async (ctx) => {
    const response = await ctx.send({
      method: 'POST',
      url: joinUrl(ctx.baseUrl(ctx.credential.publicFields.region), '/things'),
      headers: { 'Content-Type': 'text/plain' },
      body: ctx.params.text,
    });
    return response.status < 300
      ? { ok: true, summary: 'Thing created' }
      : { ok: false, summary: `The toy service refused (HTTP ${response.status})` };
  },
});

/** The toy with its credential type's `authenticate` or `test` replaced. */
function toyWith(changes: Partial<CredentialTypeDefinition>): {
  plugin: IntegrationDefinition;
  credential: SampleCredential;
} {
  const definition = { ...toyKey, ...changes } as CredentialTypeDefinition;
  return { plugin: { ...toy, credentialTypes: [definition] }, credential: credentialOf(definition) };
}

function credentialOf(definition: CredentialTypeDefinition): SampleCredential {
  return {
    definition,
    values: { apiKey: 'toy_fake_key_123', region: 'two' },
    publicFields: { region: 'two' },
    secretValues: ['toy_fake_key_123'],
  };
}

const good = credentialOf(toyKey);
const params = { text: 'hello' };

describeIntegrationConformance(toy, { secretGoesIn: { toyApiKey: ['header:Authorization'] } });

describe('secret forms', () => {
  it('finds a password inside Basic auth at any offset, and a value URL-encoded, JSON-escaped or re-cased', () => {
    for (const user of ['u', 'us', 'usr']) {
      const header = basicAuthorization(user, 'fake-password-1');
      expect(showsSecret(`echo: ${header.slice('Basic '.length)}`, ['fake-password-1'])).toBe(true);
      expect(carriesSecret(header, ['fake-password-1'])).toBe(true);
    }
    expect(showsSecret('a fake%20value b', ['fake value'])).toBe(true);
    expect(showsSecret('"fake\\"quoted"', ['fake"quoted'])).toBe(true);
    expect(showsSecret('token XOXB-FAKE-TOKEN', ['xoxb-fake-token'])).toBe(true);
    expect(showsSecret('Email accepted (202)', ['toy_fake_key_123'])).toBe(false);
    expect(secretValueForms('toy_fake_key_123').map((form) => form.text)).toContain(
      '746f795f66616b655f6b65795f313233',
    );
  });
});

describe('samples', () => {
  it('builds a valid sample from the examples and names required fields without one', () => {
    expect(exampleSample(toyKey.schema.shape)).toEqual({
      sample: { apiKey: 'toy_fake_key_123', region: 'two' },
      missing: [],
    });
    const shape = { token: field.secret({ label: 'Token' }), note: field.text({ label: 'Note' }).optional() };
    expect(exampleSample(shape)).toEqual({ sample: {}, missing: ['token'] });
  });

  it('derives refusals for every field, each of which the registry refuses', () => {
    const registry = createRegistry([toy]);
    const samples = invalidSamples(toyKey.schema.shape, { apiKey: 'toy_fake_key_123', region: 'two' });
    expect(samples.map((s) => s.what)).toEqual([
      'a list instead of an object',
      'the fields as one JSON string',
      'an unknown field next to valid ones',
      'no fields at all',
      'apiKey as a list',
      'apiKey with a NUL character',
      'apiKey over the size limit',
      'region as a list',
      'region outside its choices',
    ]);
    for (const { data } of samples)
      expect(refusedProblems(registry.validateCredential('toyApiKey', data), data)).toEqual([]);
  });
});

describe('conformance checks catch broken plugins', () => {
  it('a declaration the registry refuses', () => {
    const noSecret = defineCredentialType({
      type: 'toyOpen',
      displayName: 'Open',
      fields: { user: field.text({ label: 'User' }) },
      authenticate: (_c, r) => r,
    });
    expect(declarationProblems({ ...toy, credentialTypes: [noSecret] })[0]).toMatch(/no secret field/);
  });

  it('a refusal that repeats the submitted value', () => {
    const echoing = {
      ok: false as const,
      issues: [{ path: ['apiKey'], message: 'toy_fake_key_123 is wrong' }],
    };
    expect(refusedProblems(echoing, { apiKey: 'toy_fake_key_123' })).toEqual([
      'the message "toy_fake_key_123 is wrong" repeats a submitted value',
      'the refusal repeats a submitted value somewhere',
    ]);
    expect(refusedProblems({ ok: true, value: {} }, {})).toEqual([
      'the data was accepted, but it should have been refused',
    ]);
  });

  it('authenticate that also puts the key in the body, or changes the method', () => {
    const { plugin, credential } = toyWith({
      authenticate: (c, r) => ({ ...r, method: 'PUT', body: `${r.body}${c.apiKey}` }),
    });
    expect(authenticateProblems(plugin, credential)).toEqual([
      'authenticate changed the method',
      'authenticate changed the body',
      'authenticate put no secret value into the request',
    ]);
  });

  it('authenticate that changes a part without a secret in it, or drops a header', () => {
    const { plugin, credential } = toyWith({
      authenticate: (c, r) => {
        const { 'X-Conformance-Keep': _dropped, ...headers } = r.headers;
        return { ...r, headers: { ...headers, Authorization: `Bearer ${c.apiKey}`, 'X-Region': 'two' } };
      },
    });
    expect(authenticateProblems(plugin, credential)).toEqual([
      'authenticate removed header:x-conformance-keep',
      'authenticate changed header:x-region, which carries no secret',
    ]);
  });

  it('authenticate that changes the request it is given', () => {
    const { plugin, credential } = toyWith({
      authenticate: (c, r) => {
        r.headers.Authorization = String(c.apiKey);
        return r;
      },
    });
    expect(authenticateProblems(plugin, credential)[0]).toMatch(/^authenticate threw/);
  });

  it('a secret put somewhere else than declared', () => {
    const { plugin, credential } = toyWith({
      authenticate: (c, r) => ({ ...r, query: { ...r.query, key: String(c.apiKey) } }),
    });
    expect(authenticateProblems(plugin, credential, ['header:authorization'])).toEqual([
      'the secret went into query:key, which is not declared',
      'the secret was declared to go into header:authorization but is not there',
    ]);
    expect(authenticateProblems(plugin, credential, ['query:key'])).toEqual([]);
  });

  it('a test request to a fixed URL instead of the (overridable) base URL', () => {
    const { plugin, credential } = toyWith({
      test: {
        request: () => ({ method: 'GET', url: 'https://two.toy.example/api/me', headers: {} }),
        interpret: () => ({ ok: true, message: 'fine' }),
      },
    });
    const problems = testRequestProblems(plugin, credential);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/not to the overridden base URL/);
    expect(testRequestProblems(toy, good)).toEqual([]);
  });

  it('a test outcome that quotes what the service answered, or calls a 401 a success', () => {
    const { plugin, credential } = toyWith({
      test: {
        request: toyKey.test?.request as never,
        interpret: (response) => ({ ok: true, message: `Answer: ${response.body}` }),
      },
    });
    const problems = testOutcomeProblems(plugin, credential);
    expect(problems).toContain('HTTP 200: the outcome message repeats a secret value the service echoed');
    expect(problems).toContain('HTTP 401: a rejected credential is reported as working');
  });

  it('an action that ignores the base URL', async () => {
    const plugin = {
      ...toy,
      action: async (ctx: Parameters<typeof toy.action>[0]) => {
        await ctx.send({ method: 'POST', url: 'https://two.toy.example/api/things', headers: {} });
        return { ok: true, summary: 'done' };
      },
    } as IntegrationDefinition;
    const problems = await actionTargetProblems(plugin, good, params);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      /went to https:\/\/two\.toy\.example\/api\/things, not to the overridden base URL/,
    );
    expect(await actionTargetProblems(toy, good, params)).toEqual([]);
  });

  it('an action that quotes the service in its summary, or throws on a refusal', async () => {
    const quoting = {
      ...toy,
      action: async (ctx: Parameters<typeof toy.action>[0]) => {
        const response = await ctx.send({
          method: 'GET',
          url: joinUrl(ctx.baseUrl('two'), '/x'),
          headers: {},
        });
        if (response.status === 403) throw new Error('refused');
        return { ok: false, summary: `Refused: ${JSON.parse(response.body).message}` };
      },
    } as IntegrationDefinition;
    expect(await actionSummaryProblems(quoting, good, params)).toEqual([
      'HTTP 200: the summary repeats a secret value the service echoed',
      'HTTP 401: the summary repeats a secret value the service echoed',
      'HTTP 403: the action threw (Error: refused) instead of reporting',
    ]);
  });

  it('echoes the credential in body and headers, as a careless service would', () => {
    const request = {
      method: 'GET' as const,
      url: 'https://two.toy.example/api/me',
      headers: { Authorization: 'Bearer toy_fake_key_123' },
    };
    const response = echoResponse(401, request, ['toy_fake_key_123']);
    expect(response.status).toBe(401);
    expect(response.body).toContain('toy_fake_key_123');
    expect(response.headers['www-authenticate']).toContain('toy_fake_key_123');
  });
});
