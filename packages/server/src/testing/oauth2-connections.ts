/**
 * OAuth2 connections for any test that needs a connected one: a real authorization server (oidc-provider,
 * authorization-server.ts) registered with the callback of a real HTTP server for the services under test, and
 * Connect → consent → callback as a user and their browser do it. Used by the OAuth2 suite itself and by the
 * suites that check that member removal, deletion, key rotation and the never-shown rules cover connections
 * exactly as they cover static secrets.
 *
 * The runner must be allowed to reach 127.0.0.1 (where the authorization server and its API listen):
 * `policy: parseOutboundAllow('127.0.0.1')` in the services' runner settings.
 */
import type { Services } from '../services.js';
import { SESSION_COOKIE } from '../trpc/trpc.js';
import { startAuthorizationServer, type TestAuthorizationServer } from './authorization-server.js';
import type { Caller } from './harness.js';
import { type HttpClient, type HttpTestServer, type RawResponse, startHttpServer } from './http-harness.js';

/** Who connects: a browser-like client over HTTP, or an in-process caller with its session (harness.ts). */
export type ConnectingUser = HttpClient | { caller: Caller; session: { token: string | undefined } };

export interface OAuth2TestEnv {
  as: TestAuthorizationServer;
  /** The HTTP server the provider sends the browser back to (`/oauth/callback`). */
  http: HttpTestServer;
  /** Form data of an `httpOAuth2AuthorizationCode` credential for `as` (allowed domain: 127.0.0.1). */
  formData(overrides?: Record<string, string>): Record<string, string>;
  /** The browser's part of a consent: follows the provider's redirects until it is sent back; the callback URL. */
  consentAt(authorizationUrl: string): Promise<string>;
  /** The callback (or any Latchkey URL), opened in `user`'s browser (their session cookie), not followed. */
  open(user: ConnectingUser, url: string): Promise<RawResponse>;
  /**
   * Connect → consent → callback as `user`: a connected connection (unless the provider refuses). Answers the
   * new connection's id, the consent URL, the callback URL, and where the browser landed.
   */
  connect(
    user: ConnectingUser,
    workspaceId: string,
    name: string,
    data?: Record<string, string>,
  ): Promise<{ secretId: string; authorizationUrl: string; callback: string; location: string }>;
  /** Stops the authorization server, and the HTTP server if this env started it. */
  close(): Promise<void>;
}

/**
 * Starts an authorization server for `svc`: on `options.http` when given (its callback), else on an HTTP server of
 * its own. Sets `svc.oauth.publicUrl` to that server, so the redirect URI Latchkey sends is the one registered.
 */
export async function startOAuth2TestEnv(
  svc: Services,
  options: {
    http?: HttpTestServer;
    authorizationServer?: Omit<Parameters<typeof startAuthorizationServer>[0], 'redirectUri'>;
  } = {},
): Promise<OAuth2TestEnv> {
  const http = options.http ?? (await startHttpServer(svc));
  svc.oauth.publicUrl = http.url;
  const as = await startAuthorizationServer({
    ...options.authorizationServer,
    redirectUri: `${http.url}/oauth/callback`,
  });

  const formData = (overrides: Record<string, string> = {}) => ({
    clientId: as.clientId,
    clientSecret: as.clientSecret,
    scopes: 'read',
    authorizationUrl: as.authorizationUrl,
    tokenUrl: as.tokenUrl,
    allowedDomains: '127.0.0.1',
    ...overrides,
  });

  async function consentAt(authorizationUrl: string): Promise<string> {
    const jar = new Map<string, string>();
    let url = authorizationUrl;
    for (let hop = 0; hop < 12; hop++) {
      const cookie = [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
      const response = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
      for (const line of response.headers.getSetCookie()) {
        const [pair] = line.split(';');
        const [name, ...value] = (pair ?? '').split('=');
        if (name) jar.set(name.trim(), value.join('='));
      }
      const location = response.headers.get('location');
      if (!location) throw new Error(`the consent stopped at HTTP ${response.status}`);
      const next = new URL(location, url).toString();
      if (next.startsWith(`${http.url}/`)) return next;
      url = next;
    }
    throw new Error('too many redirects during the consent');
  }

  function open(user: ConnectingUser, url: string): Promise<RawResponse> {
    const path = url.startsWith(http.url) ? url.slice(http.url.length) : url;
    if ('trpc' in user) return user.fetch(path, { redirect: 'manual' });
    const token = user.session.token;
    return http.fetch(path, {
      redirect: 'manual',
      headers: token ? { cookie: `${SESSION_COOKIE}=${encodeURIComponent(token)}` } : {},
    });
  }

  async function connect(
    user: ConnectingUser,
    workspaceId: string,
    name: string,
    data: Record<string, string> = formData(),
  ) {
    const input = { workspaceId, credentialType: 'httpOAuth2AuthorizationCode', name, data };
    const started =
      'trpc' in user
        ? await user.trpc.secrets.connect.mutate(input)
        : await user.caller.secrets.connect(input);
    const callback = await consentAt(started.authorizationUrl);
    const landed = await open(user, callback);
    return { ...started, callback, location: landed.headers.get('location') ?? '' };
  }

  return {
    as,
    http,
    formData,
    consentAt,
    open,
    connect,
    async close() {
      await as.close();
      if (!options.http) await http.close();
    },
  };
}
