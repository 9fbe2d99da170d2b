import {
  basicAuthorization,
  bearerAuthorization,
  defineCredentialType,
  endpointField,
  field,
  isConnectionHeader,
  oauth2Fields,
  withHeader,
} from '@latchkey/core';

/** RFC 9110 token: the characters a header name may use. */
export const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Hop-by-hop and framing headers a credential must never set. */
export const isForbiddenCredentialHeader = isConnectionHeader;

/**
 * The hosts an HTTP Request credential may be sent to. The server applies the credential to no other host
 * (default deny), so a workflow edit by anyone who may select it cannot send it anywhere else. Forms require the
 * list; the API also accepts a credential without one (clients written before the list existed), which is then
 * stored and sent nowhere until its creator, an owner or an admin adds hosts (docs/decisions.md).
 */
const allowedDomains = field
  .text({
    label: 'Allowed domains',
    help: 'Required: this credential will only ever be sent to these hosts. Comma-separated domain names; subdomains are included.',
    placeholder: 'api.example.com',
    formatHint: 'Domain names only, like `api.example.com, auth.example.com`: no `https://`, path or port.',
    valueCheck: 'domainList',
    pattern: /^[A-Za-z0-9.-]+(\s*,\s*[A-Za-z0-9.-]+)*$/,
    patternMessage: 'List domain names separated by commas, like `api.example.com, auth.example.com`.',
    example: 'api.example.com',
    requiredInForms: true,
  })
  .optional();

/** The listed hosts; none for a credential saved before the list was required (it is then sent nowhere). */
function allowedHosts(publicFields: Record<string, string>): string[] {
  return (publicFields.allowedDomains ?? '')
    .split(',')
    .map((d) => d.trim())
    .filter(Boolean);
}

export const httpBearerToken = defineCredentialType({
  type: 'httpBearerToken',
  displayName: 'Bearer token',
  description: 'Sent as "Authorization: Bearer <token>" (RFC 6750).',
  fields: {
    token: field.secret({
      label: 'Token',
      placeholder: 'your-api-token',
      pattern: /^[A-Za-z0-9._~+/-]+=*$/,
      formatHint: 'Letters, digits and `. _ ~ + / -`, optionally ending in `=`.',
      patternMessage:
        'A bearer token has only letters, digits and `. _ ~ + / -`, optionally ending in `=`: no spaces, and no `Bearer` prefix.',
      example: 'fake-bearer-token',
    }),
    allowedDomains,
  },
  allowedHosts,
  authenticate: (credential, request) =>
    withHeader(request, 'Authorization', bearerAuthorization(credential.token)),
});

export const httpBasicAuth = defineCredentialType({
  type: 'httpBasicAuth',
  displayName: 'Basic auth',
  description: 'A user name and password sent as "Authorization: Basic …" (RFC 7617).',
  fields: {
    username: field.text({
      label: 'User name',
      placeholder: 'api-user',
      example: 'fake-user',
      check: (value) => (value.includes(':') ? 'A Basic auth user name cannot contain `:`.' : undefined),
    }),
    password: field.secret({ label: 'Password', example: 'fake-password' }),
    allowedDomains,
  },
  allowedHosts,
  authenticate: (credential, request) =>
    withHeader(request, 'Authorization', basicAuthorization(credential.username, credential.password)),
});

export const httpHeaderAuth = defineCredentialType({
  type: 'httpHeaderAuth',
  displayName: 'Header auth',
  description: 'A custom header carrying the secret, e.g. X-API-Key.',
  fields: {
    headerName: field.text({
      label: 'Header name',
      placeholder: 'X-API-Key',
      example: 'X-Fake-Api-Key',
      pattern: HEADER_NAME,
      patternMessage:
        'A header name has only letters, digits and symbols such as `-` and `_` (no spaces or colon), like `X-API-Key`.',
      check: (value) =>
        isForbiddenCredentialHeader(value)
          ? 'This header controls the connection and cannot carry a credential.'
          : undefined,
    }),
    headerValue: field.secret({ label: 'Header value', example: 'fake-header-value' }),
    allowedDomains,
  },
  allowedHosts,
  authenticate: (credential, request) => withHeader(request, credential.headerName, credential.headerValue),
});

export const httpQueryAuth = defineCredentialType({
  type: 'httpQueryAuth',
  displayName: 'Query parameter auth',
  description: 'A query parameter carrying the secret, e.g. ?api_key=… (for APIs that accept nothing else).',
  fields: {
    paramName: field.text({
      label: 'Parameter name',
      placeholder: 'api_key',
      example: 'api_key',
      pattern: /^[A-Za-z0-9._~-]+$/,
      patternMessage: 'A parameter name has only letters, digits and `. _ ~ -` (no spaces), like `api_key`.',
    }),
    paramValue: field.secret({ label: 'Parameter value', example: 'fake-query-value' }),
    allowedDomains,
  },
  allowedHosts,
  authenticate: (credential, request) => ({
    ...request,
    query: { ...request.query, [credential.paramName]: credential.paramValue },
  }),
});

const oauth2Endpoints = {
  authorizationUrl: endpointField('Authorization URL', 'https://auth.example.com/oauth/authorize'),
  tokenUrl: endpointField('Token URL', 'https://auth.example.com/oauth/token'),
};

/** The endpoints typed into the form. */
const endpointsFromForm = (publicFields: Record<string, string>) => ({
  authorizationUrl: publicFields.authorizationUrl,
  tokenUrl: publicFields.tokenUrl ?? '',
});

/**
 * Any OAuth2 API, connected through its consent screen (authorization code with PKCE). The token endpoint
 * receives the client secret, so its host must be one of the allowed domains, like every host the access token
 * is sent to.
 */
export const httpOAuth2AuthorizationCode = defineCredentialType({
  type: 'httpOAuth2AuthorizationCode',
  displayName: 'OAuth2 (authorization code)',
  description: 'Connect through the service’s consent screen; the access token is refreshed automatically.',
  fields: {
    ...oauth2Fields,
    authorizationUrl: oauth2Endpoints.authorizationUrl,
    tokenUrl: oauth2Endpoints.tokenUrl,
    allowedDomains,
  },
  allowedHosts,
  oauth2: { grant: 'authorizationCode', endpoints: endpointsFromForm },
});

/** Any OAuth2 API that gives a client its own token (client credentials: no user, no consent screen). */
export const httpOAuth2ClientCredentials = defineCredentialType({
  type: 'httpOAuth2ClientCredentials',
  displayName: 'OAuth2 (client credentials)',
  description: 'A token for the client itself, fetched when saved and again before it expires.',
  fields: { ...oauth2Fields, tokenUrl: oauth2Endpoints.tokenUrl, allowedDomains },
  allowedHosts,
  oauth2: { grant: 'clientCredentials', endpoints: endpointsFromForm },
});
