import { z } from 'zod';
import type { CredentialTypeDefinition, IntegrationDefinition } from './contract.js';
import { type FieldMeta, fieldMeta } from './fields.js';
import { type FieldIssue, type ValidationResult, validateAgainst } from './validation.js';

/** A plugin declared something the registry cannot accept; the message names the plugin. */
export class IntegrationDeclarationError extends Error {
  override name = 'IntegrationDeclarationError';
}

export type JsonSchema = Record<string, unknown>;

/** The JSON-serialisable description of a credential type, for the UI and for clients in any language. */
export interface CredentialTypeDescription {
  type: string;
  displayName: string;
  description?: string;
  jsonSchema: JsonSchema;
  /** Field names whose values are secret (encrypted, never returned). */
  secretFields: string[];
  /** Whether the credential type has a test request. */
  testable: boolean;
  /** `oauth2`: connected through its service (Integrations settings); `static`: a pasted key. */
  kind: 'static' | 'oauth2';
  /** For OAuth2 types: how the first token is obtained (a consent screen, or the client's own credentials). */
  grant?: 'authorizationCode' | 'clientCredentials';
}

export interface IntegrationDescription {
  id: string;
  displayName: string;
  description: string;
  nodeType: string;
  paramsSchema: JsonSchema;
  credentialTypes: CredentialTypeDescription[];
}

export interface ValidCredential {
  credentialType: string;
  integrationId: string;
  nodeType: string;
  /** Fields marked `secret: false`: stored in clear and shown. */
  publicFields: Record<string, string>;
  /** Fields marked `secret: true`: encrypted and never returned. */
  secretFields: Record<string, string>;
}

export interface Registry {
  readonly integrations: readonly IntegrationDefinition[];
  integration(id: string): IntegrationDefinition | undefined;
  integrationForNodeType(nodeType: string): IntegrationDefinition | undefined;
  credentialType(
    type: string,
  ): { integration: IntegrationDefinition; definition: CredentialTypeDefinition } | undefined;
  /** The credential types a node type accepts (empty for an unknown node type). */
  credentialTypesForNodeType(nodeType: string): string[];
  accepts(nodeType: string, credentialType: string): boolean;
  describe(): IntegrationDescription[];
  validateCredential(credentialType: string, data: unknown): ValidationResult<ValidCredential>;
  /**
   * Validates a node's parameters. `draft` (while a node is being configured) checks the fields given but
   * requires none; `complete` (at run time) requires every required field.
   */
  validateParams(
    nodeType: string,
    params: unknown,
    mode?: 'draft' | 'complete',
  ): ValidationResult<Record<string, unknown>>;
}

const INTEGRATION_ID = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;
const NODE_TYPE = /^[a-z][a-zA-Z0-9]*$/;
const CREDENTIAL_TYPE = /^[a-z][a-zA-Z0-9]*$/;
const FIELD_NAME = /^[a-z][a-zA-Z0-9]*$/;

function toJsonSchema(schema: z.ZodType, where: string): JsonSchema {
  try {
    const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'throw' }) as JsonSchema;
    return withFormRequiredFields(json);
  } catch (error) {
    throw new IntegrationDeclarationError(
      `${where} cannot be described as JSON Schema: ${(error as Error).message}`,
    );
  }
}

/** Adds the optional fields marked `requiredInForms` to the schema's `required` list (see FieldMeta). */
function withFormRequiredFields(json: JsonSchema): JsonSchema {
  const properties = (json.properties ?? {}) as Record<string, { requiredInForms?: unknown }>;
  const formRequired = Object.keys(properties).filter((name) => properties[name]?.requiredInForms === true);
  if (formRequired.length === 0) return json;
  const required = Array.isArray(json.required) ? (json.required as string[]) : [];
  return { ...json, required: [...required, ...formRequired.filter((name) => !required.includes(name))] };
}

function checkFields(
  shape: Record<string, z.ZodType>,
  where: string,
  requireSecret: boolean,
): Record<string, FieldMeta> {
  const metas: Record<string, FieldMeta> = {};
  const names = Object.keys(shape);
  if (names.length === 0) throw new IntegrationDeclarationError(`${where} declares no fields`);
  for (const name of names) {
    if (!FIELD_NAME.test(name))
      throw new IntegrationDeclarationError(`${where}: field "${name}" must be camelCase`);
    const meta = fieldMeta(shape[name] as z.ZodType);
    if (!meta || typeof meta.label !== 'string' || meta.label.trim() === '') {
      throw new IntegrationDeclarationError(
        `${where}: field "${name}" has no label (declare it with field.secret/text/choice)`,
      );
    }
    if (typeof meta.secret !== 'boolean') {
      throw new IntegrationDeclarationError(`${where}: field "${name}" must say whether it is secret`);
    }
    if (meta.example !== undefined) {
      // Tests and tools build valid samples from examples, so an example the field itself refuses is a bug.
      const checked =
        typeof meta.example === 'string' ? (shape[name] as z.ZodType).safeParse(meta.example) : undefined;
      if (!checked?.success) {
        const reason = checked?.error.issues[0]?.message ?? 'it is not text';
        throw new IntegrationDeclarationError(
          `${where}: field "${name}" has an example its own rules refuse (${reason})`,
        );
      }
    }
    metas[name] = meta as FieldMeta;
  }
  if (requireSecret && !Object.values(metas).some((m) => m.secret)) {
    throw new IntegrationDeclarationError(
      `${where} has no secret field: a credential must hold at least one secret`,
    );
  }
  return metas;
}

const GRANTS = new Set(['authorizationCode', 'clientCredentials']);
const CLIENT_AUTHENTICATIONS = new Set(['client_secret_basic', 'client_secret_post']);

/** An OAuth2 type: a known grant, an `endpoints` function, and the client fields the server reads by name. */
function checkOAuth2(definition: CredentialTypeDefinition, where: string): void {
  const oauth2 = definition.oauth2 as NonNullable<CredentialTypeDefinition['oauth2']>;
  if (!GRANTS.has(oauth2.grant))
    throw new IntegrationDeclarationError(
      `${where}: oauth2.grant must be authorizationCode or clientCredentials`,
    );
  if (typeof oauth2.endpoints !== 'function')
    throw new IntegrationDeclarationError(`${where}: oauth2.endpoints must be a function`);
  if (oauth2.clientAuthentication && !CLIENT_AUTHENTICATIONS.has(oauth2.clientAuthentication)) {
    throw new IntegrationDeclarationError(
      `${where}: oauth2.clientAuthentication must be client_secret_basic or client_secret_post`,
    );
  }
  if (definition.authenticate)
    throw new IntegrationDeclarationError(
      `${where}: an OAuth2 type applies its token with oauth2.applyToken, not authenticate`,
    );
  const shape = definition.schema.shape as Record<string, z.ZodType>;
  for (const [name, secret] of [
    ['clientId', false],
    ['clientSecret', true],
  ] as const) {
    const meta = shape[name] ? fieldMeta(shape[name]) : undefined;
    if (!meta || meta.secret !== secret) {
      throw new IntegrationDeclarationError(
        `${where}: an OAuth2 type needs a ${secret ? 'secret' : 'public'} field "${name}" (spread oauth2Fields)`,
      );
    }
  }
}

interface CredentialEntry {
  integration: IntegrationDefinition;
  definition: CredentialTypeDefinition;
  secretFieldNames: Set<string>;
  description: CredentialTypeDescription;
}

/**
 * Builds the registry once, at start-up, from the list of plugins. Any malformed or clashing declaration
 * stops start-up with a message naming the plugin, so a broken plugin never half-works.
 */
export function createRegistry(plugins: readonly IntegrationDefinition[]): Registry {
  const byId = new Map<string, IntegrationDefinition>();
  const byNodeType = new Map<string, IntegrationDefinition>();
  const credentials = new Map<string, CredentialEntry>();
  const descriptions: IntegrationDescription[] = [];

  for (const plugin of plugins) {
    const name = typeof plugin?.id === 'string' && plugin.id ? plugin.id : '(unnamed)';
    const where = `Integration "${name}"`;
    if (!plugin || typeof plugin !== 'object')
      throw new IntegrationDeclarationError(`${where} is not an object`);
    if (!INTEGRATION_ID.test(plugin.id ?? '')) {
      throw new IntegrationDeclarationError(`${where}: id must be lower-case words joined by "-"`);
    }
    for (const key of ['displayName', 'description'] as const) {
      if (typeof plugin[key] !== 'string' || plugin[key].trim() === '') {
        throw new IntegrationDeclarationError(`${where}: ${key} is required`);
      }
    }
    if (!NODE_TYPE.test(plugin.nodeType ?? '')) {
      throw new IntegrationDeclarationError(`${where}: nodeType must be camelCase`);
    }
    const sameId = byId.get(plugin.id);
    if (sameId) throw new IntegrationDeclarationError(`${where} is declared twice`);
    const sameNode = byNodeType.get(plugin.nodeType);
    if (sameNode) {
      throw new IntegrationDeclarationError(
        `${where}: node type "${plugin.nodeType}" is already provided by "${sameNode.id}"`,
      );
    }
    if (typeof plugin.action !== 'function')
      throw new IntegrationDeclarationError(`${where}: action must be a function`);
    if (!plugin.baseUrls || typeof plugin.baseUrls !== 'object') {
      throw new IntegrationDeclarationError(`${where}: baseUrls must be an object (it may be empty)`);
    }
    for (const [variant, url] of Object.entries(plugin.baseUrls)) {
      if (!/^https?:\/\/[^/]+/.test(String(url))) {
        throw new IntegrationDeclarationError(`${where}: base URL "${variant}" must be an http(s) URL`);
      }
    }
    if (!(plugin.params instanceof z.ZodObject)) {
      throw new IntegrationDeclarationError(`${where}: params must be a zod object`);
    }
    checkFields(plugin.params.shape as Record<string, z.ZodType>, `${where} params`, false);
    if (plugin.destinationParam !== undefined && !(plugin.destinationParam in plugin.params.shape)) {
      throw new IntegrationDeclarationError(`${where}: destinationParam must name one of its params`);
    }
    const paramsSchema = toJsonSchema(plugin.params.strict(), `${where} params`);

    if (!Array.isArray(plugin.credentialTypes) || plugin.credentialTypes.length === 0) {
      throw new IntegrationDeclarationError(`${where} declares no credential types`);
    }
    const credentialDescriptions: CredentialTypeDescription[] = [];
    for (const definition of plugin.credentialTypes as CredentialTypeDefinition[]) {
      const typeName = String(definition?.type ?? '');
      const cwhere = `${where}, credential type "${typeName}"`;
      if (!CREDENTIAL_TYPE.test(typeName)) {
        throw new IntegrationDeclarationError(`${where}: credential type "${typeName}" must be camelCase`);
      }
      const clash = credentials.get(typeName);
      if (clash) {
        throw new IntegrationDeclarationError(`${cwhere} is already declared by "${clash.integration.id}"`);
      }
      if (typeof definition.displayName !== 'string' || definition.displayName.trim() === '') {
        throw new IntegrationDeclarationError(`${cwhere}: displayName is required`);
      }
      if (!(definition.schema instanceof z.ZodObject)) {
        throw new IntegrationDeclarationError(`${cwhere}: declare it with defineCredentialType`);
      }
      if (definition.oauth2) checkOAuth2(definition, cwhere);
      else if (typeof definition.authenticate !== 'function') {
        throw new IntegrationDeclarationError(`${cwhere}: authenticate must be a function`);
      }
      if (
        definition.test &&
        (typeof definition.test.request !== 'function' || typeof definition.test.interpret !== 'function')
      ) {
        throw new IntegrationDeclarationError(`${cwhere}: test needs request and interpret functions`);
      }
      const metas = checkFields(definition.schema.shape as Record<string, z.ZodType>, cwhere, true);
      const secretFields = Object.entries(metas)
        .filter(([, m]) => m.secret)
        .map(([n]) => n);
      const description: CredentialTypeDescription = {
        type: typeName,
        displayName: definition.displayName,
        ...(definition.description ? { description: definition.description } : {}),
        jsonSchema: toJsonSchema(definition.schema, cwhere),
        secretFields,
        testable: Boolean(definition.test),
        kind: definition.oauth2 ? 'oauth2' : 'static',
        ...(definition.oauth2 ? { grant: definition.oauth2.grant } : {}),
      };
      credentials.set(typeName, {
        integration: plugin,
        definition,
        secretFieldNames: new Set(secretFields),
        description,
      });
      credentialDescriptions.push(description);
    }
    byId.set(plugin.id, plugin);
    byNodeType.set(plugin.nodeType, plugin);
    descriptions.push({
      id: plugin.id,
      displayName: plugin.displayName,
      description: plugin.description,
      nodeType: plugin.nodeType,
      paramsSchema,
      credentialTypes: credentialDescriptions,
    });
  }

  const accepts = (nodeType: string, credentialType: string): boolean =>
    credentials.get(credentialType)?.integration.nodeType === nodeType;

  const unknownType = (): ValidationResult<never> => ({
    ok: false,
    issues: [{ path: ['credentialType'], message: 'Unknown credential type' }],
  });

  return {
    integrations: [...byId.values()],
    integration: (id) => byId.get(id),
    integrationForNodeType: (nodeType) => byNodeType.get(nodeType),
    credentialType(type) {
      const entry = credentials.get(type);
      return entry ? { integration: entry.integration, definition: entry.definition } : undefined;
    },
    // "A secret of this credential type may serve this node type" is `accepts`; everything else derives from it.
    credentialTypesForNodeType: (nodeType) =>
      [...credentials.keys()].filter((type) => accepts(nodeType, type)),
    accepts,
    describe: () => structuredClone(descriptions),
    validateCredential(credentialType, data) {
      const entry = typeof credentialType === 'string' ? credentials.get(credentialType) : undefined;
      if (!entry) return unknownType();
      const result = validateAgainst(entry.definition.schema, data);
      if (!result.ok) return result;
      const publicFields: Record<string, string> = {};
      const secretFields: Record<string, string> = {};
      for (const [key, value] of Object.entries(result.value as Record<string, string | undefined>)) {
        if (value === undefined) continue;
        (entry.secretFieldNames.has(key) ? secretFields : publicFields)[key] = value;
      }
      return {
        ok: true,
        value: {
          credentialType,
          integrationId: entry.integration.id,
          nodeType: entry.integration.nodeType,
          publicFields,
          secretFields,
        },
      };
    },
    validateParams(nodeType, params, mode = 'complete') {
      const integration = byNodeType.get(nodeType);
      if (!integration) return { ok: false, issues: [{ path: ['nodeType'], message: 'Unknown node type' }] };
      const schema = mode === 'draft' ? integration.params.partial().strict() : integration.params.strict();
      return validateAgainst(schema, params ?? {}) as ValidationResult<Record<string, unknown>>;
    },
  };
}

export type { FieldIssue, ValidationResult };
