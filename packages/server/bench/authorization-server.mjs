// The OAuth2 authorization server of the bench's OAuth2 rows (run.mjs, measureOAuth2): a token endpoint on
// 127.0.0.1 that answers the two grants a Latchkey connection sends — the authorization code with its PKCE
// verifier (RFC 6749 §4.1.3, RFC 7636) and the refresh token (§6, rotated: a spent refresh token is refused
// with invalid_grant) — for one client authenticated with client_secret_basic. Its consent screen is
// `authorize(url)`: it reads the authorization URL Latchkey built, as a browser would open it, and answers the
// callback's parameters (code and state) without an HTTP round trip. Small on purpose: what the bench measures
// is Latchkey's side of a refresh (oauth4webapi, the outbound path, the token write), not a provider's; the
// tests use a certified provider (src/testing/authorization-server.ts, oidc-provider, not in dist/).
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { performance } from 'node:perf_hooks';

const CLIENT_ID = 'latchkey-bench-client';
// Obviously fake.
const CLIENT_SECRET = 'fake-client-secret-for-bench-0123456789abcdef';
const newToken = (prefix) => `${prefix}-${randomBytes(24).toString('base64url')}`;
const sha256Url = (value) => createHash('sha256').update(value).digest('base64url');

function sameText(a, b) {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The client of an `Authorization: Basic` header (RFC 6749 §2.3.1: form-urlencoded id and secret). */
function basicClient(header) {
  if (!header?.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  const unform = (text) => decodeURIComponent(text.replace(/\+/g, ' '));
  return { id: unform(decoded.slice(0, colon)), secret: unform(decoded.slice(colon + 1)) };
}

/**
 * Starts the token endpoint. `redirectUri` is the one Latchkey sends (its `/oauth/callback`); `expiresIn` the
 * lifetime (seconds) of the access tokens it issues.
 */
export async function startBenchAuthorizationServer({ redirectUri, expiresIn = 3600, scope = 'read' }) {
  /** code → what the consent bound it to (one use, like a real code). */
  const codes = new Map();
  /** The refresh tokens still good (each is spent by its use). */
  const refreshTokens = new Set();
  const tokenRequests = { authorization_code: 0, refresh_token: 0, refused: 0 };
  /** Time the endpoint spent on each successful refresh_token request, from its first byte to its answer (ms). */
  const refreshHandlingMs = [];

  const issue = () => {
    const refreshToken = newToken('fake-refresh');
    refreshTokens.add(refreshToken);
    return {
      access_token: newToken('fake-access'),
      token_type: 'Bearer',
      expires_in: expiresIn,
      refresh_token: refreshToken,
      scope,
    };
  };

  function answer(params, authorization) {
    const client = basicClient(authorization);
    if (!client || client.id !== CLIENT_ID || !sameText(client.secret, CLIENT_SECRET))
      return [401, { error: 'invalid_client' }];
    const grantType = params.get('grant_type');
    if (grantType === 'authorization_code') {
      const bound = codes.get(params.get('code') ?? '');
      codes.delete(params.get('code') ?? '');
      const verifier = params.get('code_verifier') ?? '';
      if (
        !bound ||
        params.get('redirect_uri') !== bound.redirectUri ||
        sha256Url(verifier) !== bound.challenge
      )
        return [400, { error: 'invalid_grant' }];
      return [200, issue()];
    }
    if (grantType === 'refresh_token') {
      const presented = params.get('refresh_token') ?? '';
      if (!refreshTokens.delete(presented)) return [400, { error: 'invalid_grant' }];
      return [200, issue()];
    }
    return [400, { error: 'unsupported_grant_type' }];
  }

  const server = http.createServer((req, res) => {
    const started = performance.now();
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0];
      let status = 404;
      let body = { error: 'not_found' };
      let params;
      if (req.method === 'POST' && path === '/token') {
        params = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
        [status, body] = answer(params, req.headers.authorization);
        if (status === 200) tokenRequests[params.get('grant_type')] += 1;
        else tokenRequests.refused += 1;
      }
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body));
      if (status === 200 && params?.get('grant_type') === 'refresh_token')
        refreshHandlingMs.push(performance.now() - started);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;

  return {
    url,
    tokenUrl: `${url}/token`,
    authorizationUrl: `${url}/authorize`,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    tokenRequests,
    refreshHandlingMs,
    /**
     * The consent screen, approving: checks the authorization request Latchkey built (this client, the
     * registered redirect URI, an S256 challenge) and answers the callback's query (`code`, `state`).
     */
    authorize(authorizationUrl) {
      const asked = new URL(authorizationUrl).searchParams;
      if (asked.get('response_type') !== 'code' || asked.get('client_id') !== CLIENT_ID)
        throw new Error('the bench authorization server was asked for another client or response type');
      if (asked.get('redirect_uri') !== redirectUri)
        throw new Error(`unexpected redirect_uri ${asked.get('redirect_uri')} (registered: ${redirectUri})`);
      if (asked.get('code_challenge_method') !== 'S256' || !asked.get('code_challenge'))
        throw new Error('the authorization request has no S256 PKCE challenge');
      const code = newToken('fake-code');
      codes.set(code, { redirectUri, challenge: asked.get('code_challenge') });
      return new URLSearchParams({ code, state: asked.get('state') ?? '' });
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
