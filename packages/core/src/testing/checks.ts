/**
 * The conformance checks, as plain functions that return the problems they find (an empty list when all is
 * well). `describeIntegrationConformance` turns them into vitest tests; keeping them free of vitest lets the
 * suite's own tests prove that each check catches what it is meant to catch.
 */
import {
  type ActionResult,
  applyCredential,
  type CredentialTypeDefinition,
  type IntegrationDefinition,
  type RequestContext,
  type TestOutcome,
} from '../contract.js';
import type { HttpResponse, OutgoingRequest } from '../http.js';
import { joinUrl } from '../http.js';
import { createRegistry, type Registry } from '../registry.js';
import type { ValidationResult } from '../validation.js';
import { echoResponse, submittedStrings } from './samples.js';
import { carriesSecret, showsSecret } from './secret-search.js';

/**
 * Where `authenticate` puts a credential's secret: a header (`header:authorization`, any case), a query
 * parameter (`query:api_key`), or the URL itself (`url`, for credentials that are a URL, like a webhook).
 */
export type SecretPlacement = 'url' | `header:${string}` | `query:${string}`;

/** A credential as the checks use it: its validated values, split the way the registry splits them. */
export interface SampleCredential {
  definition: CredentialTypeDefinition;
  /** Every field (public and secret), as `authenticate` receives them. */
  values: Record<string, string>;
  publicFields: Record<string, string>;
  secretValues: string[];
}

/** What a service answers in the action and test checks: a status and the echo of everything it received. */
export const ECHO_STATUSES = [200, 401, 403] as const;

function describeError(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

// ---------------------------------------------------------------------------------------------------------
// Base URLs

/** A base URL that exists nowhere, per variant: a request that reaches it honoured the override. */
export function overrideBaseUrl(variant: string): string {
  const label = variant.toLowerCase().replace(/[^a-z0-9]+/g, '-') || 'default';
  return `https://${label}.override.invalid/conformance-base`;
}

/** `ctx.baseUrl` as the server answers it: the variant asked for, else `default`, else the first declared. */
export function baseUrlResolver(
  plugin: IntegrationDefinition,
  mode: 'configured' | 'override',
): (variant?: string) => string {
  return (variant) => {
    const names = Object.keys(plugin.baseUrls);
    const name = variant ?? (names.includes('default') ? 'default' : names[0]);
    if (name === undefined || !names.includes(name)) {
      throw new Error(
        `${plugin.id} asked for base URL "${name ?? 'default'}", which it does not declare in baseUrls`,
      );
    }
    return mode === 'override' ? overrideBaseUrl(name) : (plugin.baseUrls[name] as string);
  };
}

function under(url: string, bases: readonly string[]): boolean {
  return bases.some((raw) => {
    const base = raw.replace(/\/+$/, '');
    return url === base || url.startsWith(`${base}/`) || url.startsWith(`${base}?`);
  });
}

function basesFor(plugin: IntegrationDefinition, mode: 'configured' | 'override'): string[] {
  return Object.entries(plugin.baseUrls).map(([variant, url]) =>
    mode === 'override' ? overrideBaseUrl(variant) : url,
  );
}

function urlProblem(
  plugin: IntegrationDefinition,
  mode: 'configured' | 'override',
  url: string,
  what: string,
): string | undefined {
  const bases = basesFor(plugin, mode);
  if (under(url, bases)) return undefined;
  return mode === 'override'
    ? `${what} went to ${url}, not to the overridden base URL (${bases.join(' or ')}): build URLs with joinUrl(ctx.baseUrl(…), path), never from a constant`
    : `${what} went to ${url}, which is under none of the declared base URLs (${bases.join(', ')})`;
}

// ---------------------------------------------------------------------------------------------------------
// Declarations and schemas

export function declarationProblems(plugin: IntegrationDefinition): string[] {
  try {
    createRegistry([plugin]);
    return [];
  } catch (error) {
    return [`the registry refuses the plugin: ${describeError(error)}`];
  }
}

export function credentialSchemaProblems(registry: Registry, credentialType: string): string[] {
  const description = registry
    .describe()
    .flatMap((integration) => integration.credentialTypes)
    .find((c) => c.type === credentialType);
  if (!description) return [`${credentialType} is not described by the registry`];
  const problems: string[] = [];
  const schema = description.jsonSchema as {
    type?: unknown;
    additionalProperties?: unknown;
    properties?: Record<string, Record<string, unknown>>;
  };
  if (schema.type !== 'object') problems.push('the JSON Schema is not an object schema');
  if (schema.additionalProperties !== false)
    problems.push('the JSON Schema accepts unknown fields (declare it with defineCredentialType)');
  const properties = Object.entries(schema.properties ?? {});
  if (properties.length === 0) problems.push('the JSON Schema has no properties');
  for (const [name, property] of properties) {
    if (typeof property.label !== 'string' || property.label.trim() === '')
      problems.push(`field ${name} has no label in the JSON Schema`);
    if (typeof property.secret !== 'boolean')
      problems.push(`field ${name} is not flagged secret: true or false in the JSON Schema`);
  }
  const flagged = properties.filter(([, p]) => p.secret === true).map(([name]) => name);
  if (flagged.length === 0) problems.push('no field is secret: a credential must hold at least one secret');
  if (JSON.stringify(flagged) !== JSON.stringify(description.secretFields))
    problems.push(
      `secretFields (${description.secretFields.join(', ')}) differ from the fields flagged secret (${flagged.join(', ')})`,
    );
  return problems;
}

// ---------------------------------------------------------------------------------------------------------
// Validation

export function acceptedProblems(
  result: ValidationResult<{ publicFields: Record<string, string>; secretFields: Record<string, string> }>,
  secretFieldNames: readonly string[],
): string[] {
  if (!result.ok)
    return [
      `a valid sample was refused: ${result.issues.map((i) => `${i.path.join('.') || '(data)'}: ${i.message}`).join('; ')}`,
    ];
  const problems: string[] = [];
  for (const name of Object.keys(result.value.publicFields))
    if (secretFieldNames.includes(name)) problems.push(`secret field ${name} was filed as public`);
  for (const name of Object.keys(result.value.secretFields))
    if (!secretFieldNames.includes(name)) problems.push(`public field ${name} was filed as secret`);
  return problems;
}

/** A refusal, with messages and paths that never repeat a submitted value (verbatim or JSON-escaped). */
export function refusedProblems(result: ValidationResult<unknown>, submitted: unknown): string[] {
  if (result.ok) return ['the data was accepted, but it should have been refused'];
  const problems: string[] = [];
  if (result.issues.length === 0) problems.push('refused without saying why (no issues)');
  const values = submittedStrings(submitted).filter((value) => value.length >= 3);
  for (const issue of result.issues) {
    if (typeof issue.message !== 'string' || issue.message.length === 0)
      problems.push(`an issue at ${issue.path.join('.')} has no message`);
    for (const value of values) {
      if (issue.message.includes(value))
        problems.push(`the message "${issue.message}" repeats a submitted value`);
      if (issue.path.some((segment) => segment.includes(value)))
        problems.push(`the path ${issue.path.join('.')} repeats a submitted value`);
    }
  }
  const serialized = JSON.stringify(result);
  for (const value of values)
    if (serialized.includes(JSON.stringify(value).slice(1, -1)))
      problems.push('the refusal repeats a submitted value somewhere');
  return [...new Set(problems)];
}

// ---------------------------------------------------------------------------------------------------------
// authenticate

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const item of Object.values(value)) deepFreeze(item);
    Object.freeze(value);
  }
  return value;
}

/** The parts of a request a credential may go into, keyed like `SecretPlacement` (header names lower-cased). */
function requestParts(request: OutgoingRequest): Map<string, string> {
  const parts = new Map<string, string>([['url', request.url]]);
  for (const [name, value] of Object.entries(request.headers ?? {}))
    parts.set(`header:${name.toLowerCase()}`, value);
  for (const [name, value] of Object.entries(request.query ?? {})) parts.set(`query:${name}`, value);
  return parts;
}

function normalizePlacement(placement: string): string {
  return placement.startsWith('header:')
    ? `header:${placement.slice('header:'.length).toLowerCase()}`
    : placement;
}

/** The request `authenticate` is checked against: something in every part, so any change shows. */
export function requestToAuthenticate(plugin: IntegrationDefinition): OutgoingRequest {
  const base = Object.values(plugin.baseUrls)[0] ?? 'https://api.example.com';
  return {
    method: 'POST',
    url: joinUrl(base, '/conformance/resource?keep=1'),
    headers: { 'Content-Type': 'application/json', 'X-Conformance-Keep': 'unchanged' },
    query: { keepQuery: 'unchanged' },
    body: '{"conformance":"body"}',
  };
}

/**
 * `authenticate` returns a new request whose changed parts each carry a secret value, and changes nothing
 * else: method, body, the other headers and query parameters stay as they were. With `declared`, the secret
 * must be in exactly those parts.
 */
export function authenticateProblems(
  plugin: IntegrationDefinition,
  credential: SampleCredential,
  declared?: readonly SecretPlacement[],
): string[] {
  const original = requestToAuthenticate(plugin);
  const snapshot = JSON.stringify(original);
  deepFreeze(original);
  const ctx: RequestContext = { baseUrl: baseUrlResolver(plugin, 'configured') };
  let result: OutgoingRequest;
  try {
    result = applyCredential(credential.definition, credential.values, original, ctx);
  } catch (error) {
    return [
      `authenticate threw (${describeError(error)}); it must return a new request and leave the one it is given as it was`,
    ];
  }
  const problems: string[] = [];
  if (JSON.stringify(original) !== snapshot) problems.push('authenticate changed the request it was given');
  if (!result || typeof result !== 'object') return ['authenticate returned no request'];
  for (const key of Object.keys(result))
    if (!['method', 'url', 'headers', 'query', 'body'].includes(key))
      problems.push(`authenticate added "${key}", which is not part of a request`);
  if (result.method !== original.method) problems.push('authenticate changed the method');
  if (result.body !== original.body) problems.push('authenticate changed the body');

  const before = requestParts(original);
  const after = requestParts(result);
  const secrets = credential.secretValues;
  const expected = declared?.map(normalizePlacement);
  for (const part of new Set([...before.keys(), ...after.keys()])) {
    const value = after.get(part);
    if (value === before.get(part)) continue;
    if (value === undefined) problems.push(`authenticate removed ${part}`);
    else if (!carriesSecret(value, secrets))
      problems.push(`authenticate changed ${part}, which carries no secret`);
  }
  const carrying = [...after].filter(([, value]) => carriesSecret(value, secrets)).map(([part]) => part);
  if (carrying.length === 0) problems.push('authenticate put no secret value into the request');
  if (expected) {
    for (const part of carrying)
      if (!expected.includes(part)) problems.push(`the secret went into ${part}, which is not declared`);
    for (const part of expected)
      if (!carrying.includes(part))
        problems.push(`the secret was declared to go into ${part} but is not there`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------
// The credential test

/** The test request goes to the base URL, and to the overridden one when the base URL is overridden. */
export function testRequestProblems(plugin: IntegrationDefinition, credential: SampleCredential): string[] {
  const test = credential.definition.test;
  if (!test) return [];
  const problems: string[] = [];
  for (const mode of ['configured', 'override'] as const) {
    const ctx: RequestContext = { baseUrl: baseUrlResolver(plugin, mode) };
    try {
      const request = test.request({ ...credential.publicFields }, ctx);
      const sent = applyCredential(credential.definition, credential.values, request, ctx);
      const problem = urlProblem(plugin, mode, sent.url, 'the test request');
      if (problem) problems.push(problem);
    } catch (error) {
      problems.push(`building the test request failed (${describeError(error)})`);
    }
  }
  return problems;
}

/** Whatever the service answers, even an echo of the credential, the outcome never shows a secret value. */
export function testOutcomeProblems(plugin: IntegrationDefinition, credential: SampleCredential): string[] {
  const test = credential.definition.test;
  if (!test) return [];
  const ctx: RequestContext = { baseUrl: baseUrlResolver(plugin, 'configured') };
  const problems: string[] = [];
  for (const status of [...ECHO_STATUSES, 404, 429, 500]) {
    let outcome: TestOutcome;
    try {
      const request = applyCredential(
        credential.definition,
        credential.values,
        test.request({ ...credential.publicFields }, ctx),
        ctx,
      );
      outcome = test.interpret(echoResponse(status, request, credential.secretValues));
    } catch (error) {
      problems.push(`HTTP ${status}: interpret threw (${describeError(error)})`);
      continue;
    }
    if (typeof outcome?.ok !== 'boolean' || typeof outcome.message !== 'string' || !outcome.message)
      problems.push(`HTTP ${status}: the outcome is not { ok, message }`);
    else if (showsSecret(outcome.message, credential.secretValues))
      problems.push(`HTTP ${status}: the outcome message repeats a secret value the service echoed`);
    if ((status === 401 || status === 403) && outcome?.ok !== false)
      problems.push(`HTTP ${status}: a rejected credential is reported as working`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------
// The action

export interface ActionRun {
  result?: ActionResult;
  error?: unknown;
  /** Every request as it would leave the server: after `authenticate`. */
  sent: OutgoingRequest[];
}

/**
 * Runs the action the way the server does: `send` applies the credential's `authenticate` and answers with
 * `respond`; the action itself sees only the credential's type and public fields.
 */
export async function runAction(
  plugin: IntegrationDefinition,
  credential: SampleCredential,
  params: Record<string, unknown>,
  mode: 'configured' | 'override',
  respond: (request: OutgoingRequest) => HttpResponse,
): Promise<ActionRun> {
  const baseUrl = baseUrlResolver(plugin, mode);
  const sent: OutgoingRequest[] = [];
  try {
    const result = await plugin.action({
      params: params as never,
      credential: { type: credential.definition.type, publicFields: { ...credential.publicFields } },
      baseUrl,
      send: async (request) => {
        const authenticated = applyCredential(credential.definition, credential.values, request, { baseUrl });
        sent.push(authenticated);
        return respond(authenticated);
      },
    });
    return { result, sent };
  } catch (error) {
    return { error, sent };
  }
}

function paramUrls(params: Record<string, unknown>): string[] {
  return Object.values(params).flatMap((value) => {
    if (typeof value !== 'string') return [];
    try {
      return [new URL(value).origin];
    } catch {
      return [];
    }
  });
}

/** Every request the action sends goes to the base URL, and to the overridden one when it is overridden. */
export async function actionTargetProblems(
  plugin: IntegrationDefinition,
  credential: SampleCredential,
  params: Record<string, unknown>,
): Promise<string[]> {
  const problems: string[] = [];
  const hasBaseUrls = Object.keys(plugin.baseUrls).length > 0;
  for (const mode of ['configured', 'override'] as const) {
    const run = await runAction(plugin, credential, params, mode, (request) =>
      echoResponse(200, request, credential.secretValues),
    );
    if (run.error) problems.push(`the action threw (${describeError(run.error)})`);
    if (run.sent.length === 0 && !run.error)
      problems.push('the action sent no request (choose params with which it does)');
    for (const request of run.sent) {
      if (hasBaseUrls) {
        const problem = urlProblem(plugin, mode, request.url, 'a request of the action');
        if (problem) problems.push(problem);
      } else {
        // No base URL of its own (a generic HTTP node): requests go where the node's params say.
        const origins = paramUrls(params);
        let origin = '';
        try {
          origin = new URL(request.url).origin;
        } catch {
          origin = '';
        }
        if (!origins.includes(origin))
          problems.push(`a request of the action went to ${request.url}, which is not a URL of its params`);
      }
    }
  }
  return [...new Set(problems)];
}

/**
 * Even when the service answers by echoing the credential (body and headers), the action's result is
 * `{ ok, summary }`, a rejected credential is not a success, and the summary shows no secret value.
 */
export async function actionSummaryProblems(
  plugin: IntegrationDefinition,
  credential: SampleCredential,
  params: Record<string, unknown>,
): Promise<string[]> {
  const problems: string[] = [];
  for (const status of ECHO_STATUSES) {
    const run = await runAction(plugin, credential, params, 'configured', (request) =>
      echoResponse(status, request, credential.secretValues),
    );
    if (run.error) {
      problems.push(`HTTP ${status}: the action threw (${describeError(run.error)}) instead of reporting`);
      continue;
    }
    const result = run.result;
    if (typeof result?.ok !== 'boolean' || typeof result.summary !== 'string' || !result.summary) {
      problems.push(`HTTP ${status}: the result is not { ok, summary }`);
      continue;
    }
    if (showsSecret(result.summary, credential.secretValues))
      problems.push(`HTTP ${status}: the summary repeats a secret value the service echoed`);
    if (status !== 200 && run.sent.length > 0 && result.ok)
      problems.push(`HTTP ${status}: a rejected credential is reported as a success`);
  }
  return problems;
}
