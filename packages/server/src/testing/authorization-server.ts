/**
 * A real, standards-compliant OAuth2 authorization server on loopback for the tests: oidc-provider (certified),
 * with a consent step that approves on its own (or, `deny`, refuses with access_denied), refresh-token
 * rotation (a refresh token used twice revokes the grant: oidc-provider's reuse detection), client
 * credentials, and a small API that accepts only the access tokens the server issued and still considers
 * valid. Nothing here is a hand-made imitation of the protocol.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

export interface TestAuthorizationServer {
  /** e.g. `http://127.0.0.1:41234` */
  url: string;
  authorizationUrl: string;
  tokenUrl: string;
  /** A protected API: 200 `{ok:true, client}` for a valid access token, 401 otherwise. */
  apiUrl: string;
  /** The bearer token of every request the protected API received, in order (valid or not). */
  apiTokens: string[];
  clientId: string;
  clientSecret: string;
  /** Access-token lifetime (seconds) for the tokens issued from now on. */
  setAccessTokenTtl(seconds: number): void;
  /** The next consent is refused (`access_denied`). */
  denyNextConsent(): void;
  /** Token-endpoint requests the provider answered, by grant type. */
  tokenRequests: Record<string, number>;
  /** Answers the next N token requests with HTTP 503 (a transient outage). */
  failNextTokenRequests(count: number): void;
  /** Revokes one access token only (its grant and refresh token stay good). */
  revokeAccessToken(value: string): Promise<void>;
  /** Revokes every grant (the user removed the app at the provider). */
  revokeEverything(): Promise<void>;
  close(): Promise<void>;
}

const CLIENT_ID = 'latchkey-test-client';
// Obviously fake, and long enough for oidc-provider's checks.
const CLIENT_SECRET = 'fake-client-secret-for-tests-0123456789abcdef';
const ACCOUNT = 'fake-account-1';

/** Which kind of token the provider is issuing, for `tokenValue`. */
export type IssuedTokenKind = 'AccessToken' | 'RefreshToken' | 'ClientCredentials';

export async function startAuthorizationServer(options: {
  redirectUri: string;
  /** The client's secret (default: an obviously fake constant). The canary test passes a canary. */
  clientSecret?: string;
  /**
   * The value of every access, refresh and client-credentials token issued (default: oidc-provider's own random
   * ones). A value must be unique: the provider stores each token under it.
   */
  tokenValue?: (kind: IssuedTokenKind) => string;
}): Promise<TestAuthorizationServer> {
  const clientSecret = options.clientSecret ?? CLIENT_SECRET;
  const http = createServer();
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  let ttl = 3600;
  let deny = false;
  let failures = 0;
  const tokenRequests: Record<string, number> = {};
  const grants = new Set<string>();

  const provider = new Provider(url, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: clientSecret,
        redirect_uris: [options.redirectUri],
        grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: 'read write',
      },
    ],
    scopes: ['read', 'write'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
    },
    pkce: { required: () => true },
    rotateRefreshToken: true,
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    ttl: {
      AccessToken: () => ttl,
      ClientCredentials: () => ttl,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
      RefreshToken: 86_400,
      AuthorizationCode: 60,
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount: async (_ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
    cookies: { keys: ['fake-cookie-key-for-tests-only'] },
  });
  if (options.tokenValue) {
    const tokenValue = options.tokenValue;
    // An opaque token's value is its id: the models' own generator, wrapped (the only hook oidc-provider has;
    // the original still runs, for what it records about the token's format, and its random id is dropped).
    for (const kind of ['AccessToken', 'RefreshToken', 'ClientCredentials'] as const) {
      const model = provider[kind].prototype as unknown as { generateTokenId(): string };
      const generate = model.generateTokenId;
      model.generateTokenId = function (this: unknown) {
        generate.call(this);
        return tokenValue(kind);
      };
    }
  }
  const apiTokens: string[] = [];
  // Token requests the provider answered, by grant type (successes and refusals alike).
  const count = (ctx: { oidc?: { params?: Record<string, unknown> } }) => {
    const grantType = String(ctx.oidc?.params?.grant_type ?? '?');
    tokenRequests[grantType] = (tokenRequests[grantType] ?? 0) + 1;
  };
  provider.on('grant.success', count);
  provider.on('grant.error', count);
  const callback = provider.callback();

  async function interaction(req: IncomingMessage, res: ServerResponse) {
    const details = await provider.interactionDetails(req, res);
    if (deny) {
      deny = false;
      await provider.interactionFinished(req, res, {
        error: 'access_denied',
        error_description: 'The user refused',
      });
      return;
    }
    const params = details.params as { client_id: string; scope?: string };
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: ACCOUNT, clientId: params.client_id });
    if (!grant) throw new Error('no grant');
    if (params.scope) grant.addOIDCScope(params.scope);
    const grantId = await grant.save();
    grants.add(grantId);
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: ACCOUNT }, consent: { grantId } },
      { mergeWithLastSubmission: false },
    );
  }

  async function api(req: IncomingMessage, res: ServerResponse) {
    const header = req.headers.authorization ?? '';
    const token = header.startsWith('Bearer ') ? header.slice(7) : '';
    apiTokens.push(token);
    const found =
      (token && (await provider.AccessToken.find(token))) ||
      (token && (await provider.ClientCredentials.find(token)));
    const valid = found && !found.isExpired;
    res.writeHead(valid ? 200 : 401, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify(valid ? { ok: true, client: found.clientId } : { ok: false, error: 'invalid_token' }),
    );
  }

  http.on('request', (req, res) => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    if (path.startsWith('/interaction/')) {
      interaction(req, res).catch(() => {
        res.writeHead(500);
        res.end();
      });
      return;
    }
    if (path === '/api/whoami') {
      api(req, res).catch(() => {
        res.writeHead(500);
        res.end();
      });
      return;
    }
    if (path === '/token' && req.method === 'POST') {
      if (failures > 0) {
        failures -= 1;
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'temporarily_unavailable' }));
        return;
      }
    }
    callback(req, res);
  });

  return {
    url,
    authorizationUrl: `${url}/auth`,
    tokenUrl: `${url}/token`,
    apiUrl: `${url}/api/whoami`,
    clientId: CLIENT_ID,
    clientSecret,
    apiTokens,
    tokenRequests,
    setAccessTokenTtl(seconds) {
      ttl = seconds;
    },
    denyNextConsent() {
      deny = true;
    },
    failNextTokenRequests(count) {
      failures = count;
    },
    async revokeAccessToken(value) {
      const token = await provider.AccessToken.find(value);
      if (!token) throw new Error('no such access token');
      await token.destroy();
    },
    async revokeEverything() {
      for (const grantId of grants) {
        const grant = await provider.Grant.find(grantId);
        await grant?.destroy();
        for (const model of [provider.AccessToken, provider.RefreshToken]) {
          await (model as unknown as { revokeByGrantId(id: string): Promise<void> }).revokeByGrantId(grantId);
        }
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}
