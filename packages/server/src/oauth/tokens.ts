/**
 * What an OAuth2 connection keeps of a token answer, and the client a connection's token requests are made as.
 * The tokens live in the secret's envelope (`OAUTH2_TOKEN_FIELDS`, beside the client secret); what may be
 * shown (status, account, scopes, expiry) in its columns.
 */
import {
  type CredentialTypeDefinition,
  credentialSubject,
  type FieldIssue,
  type IntegrationDefinition,
  OAUTH2_TOKEN_FIELDS,
  type OAuth2Declaration,
  type OAuth2TokenResponse,
  requestedScopes,
  type ValidCredential,
} from '@latchkey/core';
import { membershipOf } from '../access/membership.js';
import { InvalidInputError } from '../errors.js';
import { CredentialDestinationError, destinationCheck } from '../runner/destinations.js';
import { OutboundRefusedError } from '../runner/outbound-guard.js';
import type { Actor, Services } from '../services.js';
import { type OAuth2Client, requestNewToken, TokenRequestError } from './protocol.js';

export type OAuth2Definition = CredentialTypeDefinition & { oauth2: OAuth2Declaration };

/** An installed OAuth2 credential type, or undefined. */
export function oauth2Type(
  svc: Services,
  credentialType: string,
): { integration: IntegrationDefinition; definition: OAuth2Definition } | undefined {
  const entry = svc.registry.credentialType(credentialType);
  return entry?.definition.oauth2
    ? { integration: entry.integration, definition: entry.definition as OAuth2Definition }
    : undefined;
}

/**
 * The secret fields a user typed (the client secret), from a connection's decrypted fields: not a token (`$`
 * names) and not a public field. A new token is written next to them.
 */
export function typedSecretFields(
  fields: Record<string, string>,
  publicFields: Record<string, string>,
): Record<string, string> {
  return Object.fromEntries(
    Object.entries(fields).filter(([name]) => !name.startsWith('$') && !(name in publicFields)),
  );
}

/**
 * How a credential type is saved: `create` (static types, and client credentials, which fetch their first
 * token then), or `connect` (authorization code: through the service's consent screen). A call the type is not
 * saved by is a field error on `credentialType`.
 */
export function requireSavedBy(svc: Services, credentialType: string, by: 'create' | 'connect'): void {
  const grant = svc.registry.credentialType(credentialType)?.definition.oauth2?.grant;
  const savedBy = grant === 'authorizationCode' ? 'connect' : 'create';
  if (savedBy === by) return;
  throw new InvalidInputError([
    {
      path: ['credentialType'],
      message:
        by === 'create'
          ? 'This credential type is connected through its service’s consent screen: use Connect (secrets.connect)'
          : grant
            ? 'This OAuth2 type needs no consent screen: save it with secrets.create'
            : 'This credential type is not an OAuth2 connection: save it with secrets.create',
    },
  ]);
}

/** The client a connection's token requests are made as; they may go only where the credential may go. */
export function clientFor(
  svc: Services,
  type: { integration: IntegrationDefinition; definition: OAuth2Definition },
  publicFields: Record<string, string>,
  secretFields: Record<string, string>,
  name?: string,
): OAuth2Client {
  return {
    ...type,
    publicFields,
    clientSecret: secretFields.clientSecret ?? '',
    destination: destinationCheck(svc, type.definition, publicFields, credentialSubject(name)),
  };
}

/** What a connection stores of a token answer. */
export interface StoredToken {
  tokenFields: Record<string, string>;
  account: string | null;
  scopes: string | null;
  expiresAt: Date | null;
}

const MAX_ACCOUNT = 200;

/**
 * The token fields to store (a refresh answer without a new refresh token keeps the old one, RFC 6749 §6),
 * the account to show, the granted scopes (the requested ones when the answer does not say), and the expiry.
 */
export function storedToken(
  definition: OAuth2Definition,
  publicFields: Record<string, string>,
  token: OAuth2TokenResponse,
  previousRefreshToken?: string,
): StoredToken {
  const refreshToken = token.refreshToken ?? previousRefreshToken;
  let account: string | undefined;
  try {
    account = definition.oauth2.account?.(token);
  } catch {
    account = undefined;
  }
  const scopes = token.scope ?? requestedScopes(definition.oauth2, publicFields).join(' ');
  return {
    tokenFields: {
      [OAUTH2_TOKEN_FIELDS.accessToken]: token.accessToken,
      ...(refreshToken ? { [OAUTH2_TOKEN_FIELDS.refreshToken]: refreshToken } : {}),
    },
    account: typeof account === 'string' && account ? account.slice(0, MAX_ACCOUNT) : null,
    scopes: scopes || null,
    expiresAt:
      typeof token.expiresIn === 'number' && Number.isFinite(token.expiresIn) && token.expiresIn > 0
        ? new Date(Date.now() + token.expiresIn * 1000)
        : null,
  };
}

/**
 * A token request's failure while saving, as a field error: a refused client on the client secret, refused
 * scopes on the scopes, a refused destination on the allowed domains, anything else on the token URL (or the
 * type, when the URL is not in the form).
 */
export function tokenFailureAsFieldError(error: unknown, publicFields: Record<string, string>): Error {
  const endpointField = 'tokenUrl' in publicFields ? 'tokenUrl' : 'credentialType';
  const issue = (field: string, message: string): FieldIssue => ({
    path: field === 'credentialType' ? [field] : ['data', field],
    message,
  });
  if (error instanceof TokenRequestError) {
    if (error.code === 'invalid_client' || error.code === 'unauthorized_client')
      return new InvalidInputError([
        issue('clientSecret', `The service refused this client: ${error.message}`),
      ]);
    if (error.code === 'invalid_scope')
      return new InvalidInputError([issue('scopes', 'The service refused these scopes')]);
    return new InvalidInputError([issue(endpointField, `Could not get a token: ${error.message}`)]);
  }
  if (error instanceof CredentialDestinationError)
    return new InvalidInputError([issue('allowedDomains', error.message)]);
  if (error instanceof OutboundRefusedError)
    return new InvalidInputError([issue(endpointField, `The token request was refused: ${error.message}`)]);
  return error instanceof Error ? error : new Error('The token request failed');
}

/**
 * A client-credentials type's first token, fetched while saving (secrets.create): a client the service refuses
 * is not saved, and the error names the field to fix. A stranger to the workspace learns "not found" before any
 * request is sent on their behalf.
 */
export async function firstClientCredentialsToken(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; credentialType: string; name: string },
  valid: ValidCredential,
): Promise<StoredToken & { status: 'connected' }> {
  await membershipOf(svc.db, input.workspaceId, actor.userId);
  const type = oauth2Type(svc, input.credentialType);
  if (!type) throw new Error(`${input.credentialType} is not an OAuth2 type`);
  const client = clientFor(svc, type, valid.publicFields, valid.secretFields, input.name);
  try {
    const token = await requestNewToken(svc, client, undefined);
    return { status: 'connected', ...storedToken(type.definition, valid.publicFields, token) };
  } catch (error) {
    throw tokenFailureAsFieldError(error, valid.publicFields);
  }
}
