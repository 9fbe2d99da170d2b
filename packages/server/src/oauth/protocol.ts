/**
 * The OAuth2 protocol, on oauth4webapi (a spec-compliant client): the authorization URL with state and PKCE,
 * the code exchange, refresh and client-credentials token requests, and reading their answers and errors. Every
 * request to an authorization server goes through the runner's outbound path: the outbound guard, and the
 * credential's allowed hosts (the token endpoint receives the client secret).
 */
import type {
  CredentialTypeDefinition,
  HttpResponse,
  IntegrationDefinition,
  OAuth2Declaration,
  OAuth2Endpoints,
  OAuth2TokenError,
  OAuth2TokenResponse,
  OutgoingRequest,
} from '@latchkey/core';
import { requestedScopes } from '@latchkey/core';
import * as oauth from 'oauth4webapi';
import { type CredentialDestinationCheck, outboundOptions } from '../runner/destinations.js';
import { sendOutbound } from '../runner/outbound-http.js';
import { scrubSecrets } from '../runner/redaction.js';
import { baseUrlFor } from '../runner/settings.js';
import type { Services } from '../services.js';

/** A connection's client, as the protocol needs it: its type, public fields and client secret. */
export interface OAuth2Client {
  integration: IntegrationDefinition;
  definition: CredentialTypeDefinition & { oauth2: OAuth2Declaration };
  publicFields: Record<string, string>;
  clientSecret: string;
  /** Checks each request's destination against the credential's allowed hosts (runner/destinations.ts). */
  destination: CredentialDestinationCheck;
}

/** Token-endpoint errors after which only a new consent helps: the grant or the client is no longer good. */
const PERMANENT_ERRORS = new Set([
  'invalid_grant',
  'invalid_client',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_scope',
]);

const ERROR_TEXT: Record<string, string> = {
  invalid_grant: 'access was revoked or expired',
  invalid_client: 'the service refused the client ID or client secret',
  unauthorized_client: 'the service does not let this client use this kind of access',
  unsupported_grant_type: 'the service does not support this kind of access',
  invalid_scope: 'the service refused the requested scopes',
  access_denied: 'access was denied on the service’s consent screen',
  server_error: 'the service had an internal error',
  temporarily_unavailable: 'the service is temporarily unavailable',
};

/** A token request that failed: an OAuth2 error code, whether it is for good, and a sentence for people. */
export class TokenRequestError extends Error {
  override name = 'TokenRequestError';
  constructor(
    /** RFC 6749 §5.2 code (or `network`, `bad_response`): recorded in the audit log. */
    readonly code: string,
    /** Only a new consent (Reconnect) can help: the credential is marked "needs reconnect". */
    readonly permanent: boolean,
    message: string,
  ) {
    super(message);
  }
}

export function describeOAuthError(code: string): string {
  return ERROR_TEXT[code] ?? `the service answered "${code}"`;
}

function tokenError(error: OAuth2TokenError): TokenRequestError {
  // Only the code is kept: a description is the service's text and might quote what it was sent.
  const code = /^[\x20-\x7e]{1,64}$/.test(error.error) ? error.error : 'invalid_response';
  return new TokenRequestError(code, PERMANENT_ERRORS.has(code), describeOAuthError(code));
}

export function endpointsOf(
  svc: Services,
  client: Pick<OAuth2Client, 'integration' | 'definition' | 'publicFields'>,
): OAuth2Endpoints {
  return client.definition.oauth2.endpoints(client.publicFields, {
    baseUrl: (variant) => baseUrlFor(svc.runnerSettings, client.integration, variant),
  });
}

/** The server's description of the authorization server, built from the type's endpoints (no discovery). */
function authorizationServer(endpoints: OAuth2Endpoints): oauth.AuthorizationServer {
  return {
    // The issuer is not configured: the state binds a response to one credential and its one token endpoint,
    // so an `iss` parameter (RFC 9207) is not compared (docs/decisions.md).
    issuer: new URL(endpoints.tokenUrl).origin,
    token_endpoint: endpoints.tokenUrl,
    ...(endpoints.authorizationUrl ? { authorization_endpoint: endpoints.authorizationUrl } : {}),
  };
}

function clientAuth(client: OAuth2Client): oauth.ClientAuth {
  return client.definition.oauth2.clientAuthentication === 'client_secret_post'
    ? oauth.ClientSecretPost(client.clientSecret)
    : oauth.ClientSecretBasic(client.clientSecret);
}

/**
 * oauth4webapi's fetch, through the runner's outbound path: the guard (no private addresses unless allowed),
 * plain http:// only to hosts LATCHKEY_OUTBOUND_ALLOW lists, and the credential's allowed hosts.
 */
function guardedFetch(svc: Services, client: OAuth2Client) {
  const options = outboundOptions(svc, client.integration);
  return async (url: string, init: oauth.CustomFetchOptions<string, unknown>): Promise<Response> => {
    const request: OutgoingRequest = {
      method: init.method as OutgoingRequest['method'],
      url,
      headers: { ...init.headers },
      ...(init.body === undefined || init.body === null ? {} : { body: String(init.body) }),
    };
    const response = await sendOutbound(request, client.destination, { ...options, maxRedirects: 0 });
    return toFetchResponse(response);
  };
}

function toFetchResponse(response: HttpResponse): Response {
  const empty = response.status === 204 || response.status === 304 || response.status < 200;
  return new Response(empty ? null : response.body, {
    status: response.status < 200 ? 502 : response.status,
    headers: response.headers,
  });
}

function requestOptions(svc: Services, client: OAuth2Client) {
  const endpoint = new URL(endpointsOf(svc, client).tokenUrl);
  return {
    [oauth.customFetch]: guardedFetch(svc, client),
    // http:// is refused by the outbound path unless LATCHKEY_OUTBOUND_ALLOW lists the host (tests, local use).
    ...(endpoint.protocol === 'http:' ? { [oauth.allowInsecureRequests]: true } : {}),
  };
}

/** The type's own reading of a token answer (Slack), or the standard one. */
async function readTokenAnswer(
  client: OAuth2Client,
  response: Response,
  standard: (response: Response) => Promise<oauth.TokenEndpointResponse>,
  secrets: readonly string[],
): Promise<OAuth2TokenResponse> {
  const declaration = client.definition.oauth2;
  if (declaration.readTokenResponse) {
    const body = await response.text();
    const headers: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      headers[name] = value;
    });
    if (response.status >= 500)
      throw new TokenRequestError('server_error', false, describeOAuthError('server_error'));
    const read = declaration.readTokenResponse({ status: response.status, headers, body });
    if ('error' in read) throw tokenError(read);
    return read;
  }
  try {
    const answer = await standard(response);
    return {
      accessToken: answer.access_token,
      tokenType: answer.token_type,
      refreshToken: answer.refresh_token,
      expiresIn: answer.expires_in,
      scope: answer.scope,
      raw: { ...answer },
    };
  } catch (error) {
    throw asTokenRequestError(error, secrets);
  }
}

/** oauth4webapi's and the outbound path's failures, as permanent or transient token-request errors. */
function asTokenRequestError(error: unknown, secrets: readonly string[]): Error {
  if (error instanceof TokenRequestError) return error;
  if (error instanceof oauth.ResponseBodyError) {
    if (error.status >= 500)
      return new TokenRequestError('server_error', false, describeOAuthError('server_error'));
    return tokenError({ error: error.error });
  }
  if (error instanceof oauth.WWWAuthenticateChallengeError)
    return new TokenRequestError('invalid_client', true, describeOAuthError('invalid_client'));
  if (error instanceof oauth.OperationProcessingError || error instanceof oauth.UnsupportedOperationError) {
    const status = (error.cause as { status?: unknown } | undefined)?.status;
    if (typeof status === 'number' && status >= 500)
      return new TokenRequestError('server_error', false, describeOAuthError('server_error'));
    return new TokenRequestError(
      'invalid_response',
      false,
      'the service’s token endpoint gave an answer that is not a valid OAuth2 token response',
    );
  }
  // The outbound path's own errors (refused destination, timeout, unreachable) say what happened, never a value.
  if (error instanceof Error) {
    const failure = new TokenRequestError('network', false, scrubSecrets(error.message, secrets));
    failure.cause = error.name;
    return failure;
  }
  return new TokenRequestError('network', false, 'the token request failed');
}

/** The consent screen's URL: the standard parameters, state, S256 PKCE challenge and the type's extras. */
export async function authorizationUrl(
  svc: Services,
  client: Pick<OAuth2Client, 'integration' | 'definition' | 'publicFields'>,
  request: { state: string; codeVerifier: string; redirectUri: string },
): Promise<string> {
  const declaration = client.definition.oauth2;
  const endpoints = endpointsOf(svc, client);
  if (!endpoints.authorizationUrl) throw new Error(`${client.definition.type} has no authorization URL`);
  const url = new URL(endpoints.authorizationUrl);
  const params = url.searchParams;
  params.set('response_type', 'code');
  params.set('client_id', client.publicFields.clientId ?? '');
  params.set('redirect_uri', request.redirectUri);
  const scopes = requestedScopes(declaration, client.publicFields);
  if (scopes.length > 0) params.set('scope', scopes.join(declaration.scopeSeparator ?? ' '));
  params.set('state', request.state);
  if (declaration.pkce !== false) {
    params.set('code_challenge', await oauth.calculatePKCECodeChallenge(request.codeVerifier));
    params.set('code_challenge_method', 'S256');
  }
  for (const [name, value] of Object.entries(declaration.authorizeParameters ?? {})) params.set(name, value);
  return url.toString();
}

export const newCodeVerifier = () => oauth.generateRandomCodeVerifier();

/**
 * Reads the callback's parameters (the state already matched): the code, or the provider's error as a
 * TokenRequestError (`access_denied`, …).
 */
export function callbackParameters(
  svc: Services,
  client: Pick<OAuth2Client, 'integration' | 'definition' | 'publicFields'>,
  query: URLSearchParams,
  state: string,
): URLSearchParams {
  const params = new URLSearchParams(query);
  // Not compared (see authorizationServer): left out so that oauth4webapi does not compare it with a guess.
  params.delete('iss');
  try {
    return oauth.validateAuthResponse(
      authorizationServer(endpointsOf(svc, client)),
      { client_id: client.publicFields.clientId ?? '' },
      params,
      state,
    );
  } catch (error) {
    if (error instanceof oauth.AuthorizationResponseError) throw tokenError({ error: error.error });
    throw new TokenRequestError(
      'invalid_request',
      false,
      'the service’s answer to the consent screen is not valid',
    );
  }
}

export async function exchangeCode(
  svc: Services,
  client: OAuth2Client,
  request: { callback: URLSearchParams; codeVerifier: string; redirectUri: string },
): Promise<OAuth2TokenResponse> {
  const as = authorizationServer(endpointsOf(svc, client));
  const oauthClient = { client_id: client.publicFields.clientId ?? '' };
  const secrets = [client.clientSecret];
  let response: Response;
  try {
    response = await oauth.authorizationCodeGrantRequest(
      as,
      oauthClient,
      clientAuth(client),
      request.callback,
      request.redirectUri,
      client.definition.oauth2.pkce === false ? oauth.nopkce : request.codeVerifier,
      requestOptions(svc, client),
    );
  } catch (error) {
    throw asTokenRequestError(error, secrets);
  }
  return readTokenAnswer(
    client,
    response,
    (r) => oauth.processAuthorizationCodeResponse(as, oauthClient, r),
    secrets,
  );
}

/** A new access token: with the refresh token, or (client-credentials types) with the client's own. */
export async function requestNewToken(
  svc: Services,
  client: OAuth2Client,
  refreshToken: string | undefined,
): Promise<OAuth2TokenResponse> {
  const as = authorizationServer(endpointsOf(svc, client));
  const oauthClient = { client_id: client.publicFields.clientId ?? '' };
  const secrets = [client.clientSecret, ...(refreshToken ? [refreshToken] : [])];
  const options = requestOptions(svc, client);
  const declaration = client.definition.oauth2;
  let response: Response;
  try {
    if (declaration.grant === 'clientCredentials') {
      const scopes = requestedScopes(declaration, client.publicFields);
      const parameters: Record<string, string> = scopes.length
        ? { scope: scopes.join(declaration.scopeSeparator ?? ' ') }
        : {};
      response = await oauth.clientCredentialsGrantRequest(
        as,
        oauthClient,
        clientAuth(client),
        parameters,
        options,
      );
    } else if (refreshToken) {
      response = await oauth.refreshTokenGrantRequest(
        as,
        oauthClient,
        clientAuth(client),
        refreshToken,
        options,
      );
    } else {
      // No refresh token was issued: only a new consent gives a new access token.
      throw new TokenRequestError(
        'invalid_grant',
        true,
        'the access token expired and the service gave no refresh token',
      );
    }
  } catch (error) {
    throw asTokenRequestError(error, secrets);
  }
  const process =
    declaration.grant === 'clientCredentials'
      ? (r: Response) => oauth.processClientCredentialsResponse(as, oauthClient, r)
      : (r: Response) => oauth.processRefreshTokenResponse(as, oauthClient, r);
  return readTokenAnswer(client, response, process, secrets);
}
