import { field } from './fields.js';
import { bearerAuthorization, type HttpResponse, type OutgoingRequest, withHeader } from './http.js';

/**
 * OAuth2 credential types (docs/integrations.md, "An OAuth2 credential type").
 *
 * The user types only the client's settings (client id and secret, scopes, and for generic types the URLs) into
 * an ordinary schema-built form. The tokens are never fields: the server obtains them from the authorization
 * server, stores them encrypted in the same envelope as the client secret, refreshes them, and applies the
 * access token with `applyToken`. The protocol itself (state, PKCE, token requests, error parsing) is the
 * server's, on a spec-compliant client library; a type only declares what differs between services.
 */

export type OAuth2Grant = 'authorizationCode' | 'clientCredentials';

/** How the client authenticates at the token endpoint (RFC 6749 §2.3.1). */
export type OAuth2ClientAuthentication = 'client_secret_basic' | 'client_secret_post';

export interface OAuth2Endpoints {
  /** Where the browser is sent for consent (authorization-code types only). */
  authorizationUrl?: string;
  /** Where the server exchanges codes and refreshes tokens. */
  tokenUrl: string;
}

/** The token the server holds for a connection, as `applyToken` sees it. */
export interface OAuth2Token {
  accessToken: string;
}

/** A token endpoint's successful answer, read into the fields the server keeps. */
export interface OAuth2TokenResponse extends OAuth2Token {
  /** As the token endpoint named it ("bearer", or Slack's "bot"); not kept. */
  tokenType: string;
  refreshToken?: string | undefined;
  /** Seconds until the access token expires, when the endpoint says. */
  expiresIn?: number | undefined;
  /** The granted scopes, when the endpoint says (space- or comma-separated, as the service writes them). */
  scope?: string | undefined;
  /** The whole answer, for `account` (never stored, never shown: it holds the tokens). */
  raw: Record<string, unknown>;
}

/** A token endpoint's refusal: an RFC 6749 §5.2 error code (or the service's own) and its description. */
export interface OAuth2TokenError {
  error: string;
  description?: string | undefined;
}

export interface OAuth2Declaration {
  grant: OAuth2Grant;
  /**
   * The endpoints, from the credential's public fields (generic types put the URLs in the form) or from the
   * integration's base URLs (so tests point them at a local server with `LATCHKEY_BASE_URL_…`).
   */
  endpoints(
    publicFields: Record<string, string>,
    ctx: { baseUrl(variant?: string): string },
  ): OAuth2Endpoints;
  /** Scopes asked for when the user's form leaves its `scopes` field empty. */
  defaultScopes?: readonly string[];
  /** How the service joins scopes in the authorization request: RFC 6749 says space; Slack uses commas. */
  scopeSeparator?: ' ' | ',';
  /** Proof Key for Code Exchange (RFC 7636, S256). On unless a type turns it off. */
  pkce?: boolean;
  /** Default `client_secret_basic`. */
  clientAuthentication?: OAuth2ClientAuthentication;
  /** Extra parameters of the authorization request (e.g. Google's `access_type=offline`). */
  authorizeParameters?: Readonly<Record<string, string>>;
  /** Applies the access token to a request. Default: `Authorization: Bearer <token>`. */
  applyToken?(token: OAuth2Token, request: OutgoingRequest): OutgoingRequest;
  /** What to show as "Connected as …", read from the token endpoint's answer. */
  account?(response: OAuth2TokenResponse): string | undefined;
  /**
   * For a token endpoint that does not speak RFC 6749 §5 (Slack answers 200 `{ok:false, error}`): reads its
   * answer. Left out, the server reads it as the standard says.
   */
  readTokenResponse?(response: HttpResponse): OAuth2TokenResponse | OAuth2TokenError;
  /**
   * The service's own "this access token expired" answer, besides HTTP 401 (Slack: 200 `{ok:false,
   * error:"token_expired"}`): the server then refreshes once and sends the request once more.
   */
  isTokenRejected?(response: HttpResponse): boolean;
}

/** `Authorization: Bearer <access token>`: what RFC 6750 says and what most services take. */
export function applyOAuth2Token(
  declaration: OAuth2Declaration,
  token: OAuth2Token,
  request: OutgoingRequest,
) {
  return declaration.applyToken
    ? declaration.applyToken(token, request)
    : withHeader(request, 'Authorization', bearerAuthorization(token.accessToken));
}

/** The scopes a connection asks for: the form's `scopes` field (spaces or commas), else the type's defaults. */
export function requestedScopes(
  declaration: OAuth2Declaration,
  publicFields: Record<string, string>,
): string[] {
  const typed = (publicFields.scopes ?? '')
    .split(/[\s,]+/)
    .map((scope) => scope.trim())
    .filter(Boolean);
  return typed.length > 0 ? typed : [...(declaration.defaultScopes ?? [])];
}

const SCOPE_LIST = /^[\x21\x23-\x5b\x5d-\x7e]+([\s,]+[\x21\x23-\x5b\x5d-\x7e]+)*$/;

/**
 * The fields every OAuth2 credential type's form shares: the client id (shown), the client secret (encrypted,
 * never shown again) and the scopes. Spread them into `fields` and add what the type needs.
 */
export const oauth2Fields = {
  clientId: field.text({
    label: 'Client ID',
    help: 'From the app you registered with the service.',
    placeholder: 'your-client-id',
    example: 'fake-client-id',
  }),
  clientSecret: field.secret({
    label: 'Client secret',
    help: 'From the same app. Encrypted, and never shown again after saving.',
    example: 'fake-client-secret',
  }),
  scopes: field
    .text({
      label: 'Scopes',
      help: 'Space- or comma-separated. Leave empty for the defaults.',
      placeholder: 'read write',
      pattern: SCOPE_LIST,
      patternMessage:
        'Scopes are words separated by spaces or commas, like `read write`: no quotes or backslashes.',
      example: 'read',
    })
    .optional(),
};

/** The field a generic OAuth2 type's form holds one of its endpoints in: an absolute https:// URL. */
export function endpointField(label: string, placeholder: string) {
  return field.text({
    label,
    placeholder,
    example: placeholder,
    check: (value) => {
      let url: URL;
      try {
        url = new URL(value);
      } catch {
        return 'Must be a full URL, like `https://auth.example.com/oauth/token`.';
      }
      if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'Must be an `https://` URL.';
      if (url.username || url.password) return 'Must not contain a user name or password.';
      if (url.hash) return 'Must not contain a `#` fragment.';
      return undefined;
    },
  });
}

/**
 * Where the server keeps a connection's tokens among the decrypted fields of its envelope. A `$` can never
 * start a declared field's name (the registry wants camelCase), so a form can neither set nor clash with them.
 */
export const OAUTH2_TOKEN_FIELDS = {
  accessToken: '$accessToken',
  refreshToken: '$refreshToken',
} as const;

/** The access token among a connection's decrypted fields (empty when it has none yet). */
export function oauth2TokenOf(fields: Record<string, string>): OAuth2Token {
  return { accessToken: fields[OAUTH2_TOKEN_FIELDS.accessToken] ?? '' };
}
