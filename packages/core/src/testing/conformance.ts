/**
 * The conformance suite every integration's tests call with its own definition. It registers vitest tests;
 * the checks themselves live in ./checks.ts.
 */
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import type { CredentialTypeDefinition, IntegrationDefinition } from '../contract.js';
import { OAUTH2_TOKEN_FIELDS } from '../oauth2.js';
import { createRegistry, type Registry } from '../registry.js';
import {
  acceptedProblems,
  actionSummaryProblems,
  actionTargetProblems,
  authenticateProblems,
  credentialSchemaProblems,
  declarationProblems,
  ECHO_STATUSES,
  refusedProblems,
  type SampleCredential,
  type SecretPlacement,
  testOutcomeProblems,
  testRequestProblems,
} from './checks.js';
import { exampleSample, invalidSamples } from './samples.js';

export interface CredentialSamples {
  /** Data the form must accept. Default: one sample made of the fields' `example` values. */
  valid?: Record<string, unknown>[];
  /** Data the form must refuse, in addition to the ones the suite derives (missing, unknown, oversized, …). */
  invalid?: unknown[];
}

export interface ConformanceOptions {
  /** Samples per credential type. */
  samples?: Record<string, CredentialSamples>;
  /**
   * Where each credential type's `authenticate` puts its secret; a function when a public field names the
   * place (a header name the user chose). Without it, the suite still requires that every part of the
   * request that changes carries a secret and that nothing else changes.
   */
  secretGoesIn?: Record<
    string,
    readonly SecretPlacement[] | ((credential: Record<string, string>) => readonly SecretPlacement[])
  >;
  /** Node parameters. Default: one set made of the params fields' `example` values. */
  params?: { valid?: Record<string, unknown>[]; invalid?: unknown[] };
  /**
   * How to run the action. Default: with the first valid sample of each credential type and each valid
   * set of params.
   */
  actionCases?: {
    credentialType: string;
    credential?: Record<string, unknown>;
    params?: Record<string, unknown>;
  }[];
  /**
   * Checks a credential type is known to fail, with the reason. They run as `it.fails`: the suite stays
   * green while the issue is open and turns red the day it is fixed, so the entry is removed then.
   */
  knownIssues?: { credentialType: string; check: KnownIssueCheck; reason: string }[];
}

/** The checks that may be marked as known issues. */
export type KnownIssueCheck = 'testOutcome' | 'actionSummary';

interface Prepared {
  registry: Registry;
  credentials: Map<string, { definition: CredentialTypeDefinition; valid: unknown[]; invalid: unknown[] }>;
  params: { valid: Record<string, unknown>[]; invalid: unknown[]; missing: string[] };
}

function nameOf(plugin: IntegrationDefinition): string {
  return typeof plugin?.displayName === 'string' && plugin.displayName
    ? plugin.displayName
    : String(plugin?.id);
}

function prepare(plugin: IntegrationDefinition, options: ConformanceOptions): Prepared | { error: unknown } {
  let registry: Registry;
  try {
    registry = createRegistry([plugin]);
  } catch (error) {
    return { error };
  }
  const credentials: Prepared['credentials'] = new Map();
  for (const definition of plugin.credentialTypes) {
    const given = options.samples?.[definition.type];
    const fromExamples = exampleSample(definition.schema.shape as Record<string, z.ZodType>);
    credentials.set(definition.type, {
      definition,
      valid: given?.valid ?? (fromExamples.missing.length === 0 ? [fromExamples.sample] : []),
      invalid: given?.invalid ?? [],
    });
  }
  const paramExamples = exampleSample(plugin.params.shape as Record<string, z.ZodType>);
  return {
    registry,
    credentials,
    params: {
      valid: options.params?.valid ?? (paramExamples.missing.length === 0 ? [paramExamples.sample] : []),
      invalid: options.params?.invalid ?? [],
      missing: options.params?.valid ? [] : paramExamples.missing,
    },
  };
}

/** Tokens as the server would hold them for a connection of this type: obviously fake. */
function fakeOAuth2Tokens(type: string): Record<string, string> {
  return { [OAUTH2_TOKEN_FIELDS.accessToken]: `fake-access-token-for-${type}` };
}

/** A valid sample, validated by the registry and split into what `authenticate` and the action see. */
function sampleCredential(
  registry: Registry,
  definition: CredentialTypeDefinition,
  data: unknown,
): SampleCredential {
  const result = registry.validateCredential(definition.type, data);
  if (!result.ok) {
    throw new Error(
      `the sample of ${definition.type} is not valid: ${result.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  const { publicFields } = result.value;
  // An OAuth2 type's access token is not a form field: the server holds it beside the client secret.
  const secretFields = definition.oauth2
    ? { ...result.value.secretFields, ...fakeOAuth2Tokens(definition.type) }
    : result.value.secretFields;
  return {
    definition,
    values: { ...publicFields, ...secretFields },
    publicFields,
    secretValues: Object.values(secretFields),
  };
}

/** `it`, or `it.fails` with the reason in the name when the check is a known issue of this credential type. */
function itUnlessKnown(
  options: ConformanceOptions,
  credentialType: string,
  check: KnownIssueCheck,
  name: string,
  fn: () => void | Promise<void>,
): void {
  const known = options.knownIssues?.find((k) => k.credentialType === credentialType && k.check === check);
  if (known) it.fails(`${name} [known issue: ${known.reason}]`, fn);
  else it(name, fn);
}

function expectNoProblems(problems: string[]): void {
  expect(problems, problems.join('\n')).toEqual([]);
}

function placementsFor(
  options: ConformanceOptions,
  credential: SampleCredential,
): readonly SecretPlacement[] | undefined {
  const declared = options.secretGoesIn?.[credential.definition.type];
  return typeof declared === 'function' ? declared(credential.values) : declared;
}

function registerDeclaration(
  plugin: IntegrationDefinition,
  options: ConformanceOptions,
): Prepared | undefined {
  const prepared = prepare(plugin, options);
  it('is a well-formed declaration the registry accepts', () => {
    expectNoProblems(declarationProblems(plugin));
  });
  return 'error' in prepared ? undefined : prepared;
}

function registerCredentialTests(
  plugin: IntegrationDefinition,
  options: ConformanceOptions,
  prepared: Prepared,
) {
  for (const [type, { definition, valid, invalid }] of prepared.credentials) {
    describe(`credential type ${type}`, () => {
      const secretFieldNames =
        prepared.registry
          .describe()[0]
          ?.credentialTypes.find((c) => c.type === type)
          ?.secretFields.slice() ?? [];

      it('has a JSON Schema with every field labelled and flagged secret or public, and at least one secret', () => {
        expectNoProblems(credentialSchemaProblems(prepared.registry, type));
      });

      if (valid.length === 0) {
        it('has a valid sample to check against', () => {
          const { missing } = exampleSample(definition.schema.shape as Record<string, z.ZodType>);
          expect.fail(
            `give samples.${type}.valid, or an \`example\` for the required field(s) ${missing.join(', ')}`,
          );
        });
        return;
      }

      for (const [index, data] of valid.entries()) {
        it(`accepts valid sample #${index} and files each value as secret or public as declared`, () => {
          expectNoProblems(
            acceptedProblems(prepared.registry.validateCredential(type, data), secretFieldNames),
          );
        });
      }

      const refusals = [
        ...invalidSamples(
          definition.schema.shape as Record<string, z.ZodType>,
          valid[0] as Record<string, string>,
        ),
        ...invalid.map((data, index) => ({ what: `invalid sample #${index}`, data })),
      ];
      for (const { what, data } of refusals) {
        it(`refuses ${what} without repeating a submitted value`, () => {
          expectNoProblems(refusedProblems(prepared.registry.validateCredential(type, data), data));
        });
      }

      for (const [index, data] of valid.entries()) {
        it(`authenticate puts the secret of sample #${index} only where it belongs and leaves the rest of the request untouched`, () => {
          const credential = sampleCredential(prepared.registry, definition, data);
          expectNoProblems(authenticateProblems(plugin, credential, placementsFor(options, credential)));
        });
      }

      if (definition.test) {
        it('sends its test request to the base URL, and to the overridden base URL when there is one', () => {
          expectNoProblems(
            testRequestProblems(plugin, sampleCredential(prepared.registry, definition, valid[0])),
          );
        });
        itUnlessKnown(
          options,
          type,
          'testOutcome',
          'never repeats a secret value in its test outcome, even when the service echoes the credential',
          () => {
            expectNoProblems(
              testOutcomeProblems(plugin, sampleCredential(prepared.registry, definition, valid[0])),
            );
          },
        );
      }
    });
  }
}

function registerActionTests(plugin: IntegrationDefinition, options: ConformanceOptions, prepared: Prepared) {
  describe(`node ${plugin.nodeType}`, () => {
    if (prepared.params.valid.length === 0) {
      it('has valid params to run the action with', () => {
        expect.fail(
          `give params.valid, or an \`example\` for the required param(s) ${prepared.params.missing.join(', ')}`,
        );
      });
      return;
    }
    for (const [index, data] of prepared.params.valid.entries()) {
      it(`accepts valid params #${index}`, () => {
        const result = prepared.registry.validateParams(plugin.nodeType, data, 'complete');
        expect(result.ok, result.ok ? '' : JSON.stringify(result.issues)).toBe(true);
      });
    }
    for (const [index, data] of prepared.params.invalid.entries()) {
      it(`refuses invalid params #${index} without repeating a submitted value`, () => {
        expectNoProblems(refusedProblems(prepared.registry.validateParams(plugin.nodeType, data), data));
      });
    }

    const cases =
      options.actionCases ??
      [...prepared.credentials.values()].flatMap(({ definition, valid }) =>
        prepared.params.valid.map((params) => ({
          credentialType: definition.type,
          credential: valid[0],
          params,
        })),
      );
    for (const [index, c] of cases.entries()) {
      const entry = prepared.credentials.get(c.credentialType);
      const label = `with a ${c.credentialType} credential (case #${index})`;
      const load = () => {
        if (!entry) throw new Error(`${c.credentialType} is not a credential type of ${plugin.id}`);
        const credential = sampleCredential(
          prepared.registry,
          entry.definition,
          c.credential ?? entry.valid[0],
        );
        const params = prepared.registry.validateParams(
          plugin.nodeType,
          c.params ?? prepared.params.valid[0],
          'complete',
        );
        if (!params.ok) throw new Error(`the params of case #${index} are not valid`);
        return { credential, params: params.value };
      };
      it(`${label}: sends every request to the base URL, and to the overridden base URL when there is one`, async () => {
        const { credential, params } = load();
        expectNoProblems(await actionTargetProblems(plugin, credential, params));
      });
      itUnlessKnown(
        options,
        c.credentialType,
        'actionSummary',
        `${label}: never puts a secret value in its summary, even when the service echoes the credential (HTTP ${ECHO_STATUSES.join('/')})`,
        async () => {
          const { credential, params } = load();
          expectNoProblems(await actionSummaryProblems(plugin, credential, params));
        },
      );
    }
  });
}

/**
 * The credential half of the suite: declarations, JSON Schemas, samples, `authenticate`, the test request.
 * Call it from the plugin's `src/credentials.test.ts`.
 */
export function describeCredentialConformance(
  plugin: IntegrationDefinition,
  options: ConformanceOptions = {},
): void {
  describe(`${nameOf(plugin)}: credential conformance`, () => {
    const prepared = registerDeclaration(plugin, options);
    if (prepared) registerCredentialTests(plugin, options, prepared);
  });
}

/** The action half of the suite: params, base URLs, summaries. Call it from the plugin's `src/action.test.ts`. */
export function describeActionConformance(
  plugin: IntegrationDefinition,
  options: ConformanceOptions = {},
): void {
  describe(`${nameOf(plugin)}: action conformance`, () => {
    const prepared = registerDeclaration(plugin, options);
    if (prepared) registerActionTests(plugin, options, prepared);
  });
}

/** Both halves at once. */
export function describeIntegrationConformance(
  plugin: IntegrationDefinition,
  options: ConformanceOptions = {},
): void {
  describe(`${nameOf(plugin)}: conformance`, () => {
    const prepared = registerDeclaration(plugin, options);
    if (prepared) {
      registerCredentialTests(plugin, options, prepared);
      registerActionTests(plugin, options, prepared);
    }
  });
}
