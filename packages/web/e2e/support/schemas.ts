// The suite reads the integrations from the running server (integrations.list) and derives its test
// data from their JSON Schemas, so a new plugin is covered without changing the tests.

export interface SchemaProperty {
  type?: string;
  enum?: string[];
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  label?: string;
  help?: string;
  placeholder?: string;
  formatHint?: string;
  patternMessage?: string;
  valueCheck?: string;
  secret?: boolean;
  multiline?: boolean;
  choiceLabels?: Record<string, string>;
}

export interface ObjectSchema {
  properties: Record<string, SchemaProperty>;
  required?: string[];
}

export interface CredentialTypeInfo {
  type: string;
  displayName: string;
  description?: string;
  jsonSchema: ObjectSchema;
  secretFields: string[];
  testable: boolean;
  kind: 'static' | 'oauth2';
}

export interface IntegrationInfo {
  id: string;
  displayName: string;
  description: string;
  nodeType: string;
  paramsSchema: ObjectSchema;
  credentialTypes: CredentialTypeInfo[];
}

/**
 * The integrations with the credential types the Secrets & API Keys page offers: the static ones (OAuth2 types
 * are connected through their service, under Integrations).
 */
export async function fetchIntegrations(baseUrl: string): Promise<IntegrationInfo[]> {
  const response = await fetch(`${baseUrl}/trpc/integrations.list`);
  if (!response.ok) throw new Error(`integrations.list answered ${response.status}`);
  const body = (await response.json()) as { result: { data: IntegrationInfo[] } };
  return body.result.data.map((integration) => ({
    ...integration,
    credentialTypes: integration.credentialTypes.filter((type) => type.kind === 'static'),
  }));
}

function fits(property: SchemaProperty, value: string): boolean {
  if (property.minLength !== undefined && value.length < property.minLength) return false;
  if (property.maxLength !== undefined && value.length > property.maxLength) return false;
  if (property.pattern && !new RegExp(property.pattern).test(value)) return false;
  return true;
}

/**
 * An obviously fake value that satisfies a property's schema. For a secret field it contains `canary`
 * (so the suite can prove the value never comes back); placeholders like "SG.xxxxxxxx.xxxxxxxx" or
 * "xoxb-…" are the best guide to the expected shape, so they are tried first with the canary put in.
 */
export function fakeValue(property: SchemaProperty, canary: string): string {
  if (property.enum && property.enum.length > 0) return property.enum[0] as string;
  const filler = property.secret ? canary : 'fake';
  const candidates: string[] = [];
  if (property.placeholder) {
    const filled = property.placeholder.replace(/…|\.\.\./g, filler).replace(/x{3,}/gi, filler);
    candidates.push(filled);
    if (!property.secret) candidates.push(property.placeholder);
  }
  candidates.push(filler, `${filler}-test-value`, `https://example.com/${filler}`, `fake.example.com`);
  const found = candidates.find(
    (candidate) => fits(property, candidate) && (!property.secret || candidate.includes(canary)),
  );
  if (found === undefined)
    throw new Error(
      `cannot derive a fake value for a field labelled "${property.label}" (pattern ${property.pattern})`,
    );
  return found;
}

/** A value that breaks a property's pattern, for the "invalid input" flow. */
export function invalidValue(property: SchemaProperty): string | null {
  if (!property.pattern) return null;
  for (const candidate of ['not a valid value!', '  ', 'x y z', '%%%'])
    if (!new RegExp(property.pattern).test(candidate)) return candidate;
  return null;
}
