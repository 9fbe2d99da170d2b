import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { createTRPCClient, httpLink, TRPCClientError } from '@trpc/client';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { buildHttpServer } from '../http/server.js';
import type { SignInLimits, SignUpLimits } from '../identity/rate-limit.js';
import type { Services } from '../services.js';
import type { AppRouter } from '../trpc/router.js';
import { SESSION_COOKIE } from '../trpc/trpc.js';
import { createTestApp, type TestApp } from './harness.js';

/** Everything that came back over the wire or went to the log, for tests that scan for leaks. */
export interface Recorded {
  /** Every raw response body text, in order (tRPC calls and raw requests alike). */
  responses: string[];
  /** Every raw `Set-Cookie` header value received. */
  setCookies: string[];
  /** Every log line the server wrote (JSON text, one per entry). */
  logs: string[];
}

export interface HttpTestServer {
  server: FastifyInstance;
  /** Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash). */
  url: string;
  recorded: Recorded;
  /** A new browser-like client with its own cookie jar. */
  client(): HttpClient;
  /** A raw request through the same recording (bodies, cookies) as the clients, without a cookie jar. */
  fetch(path: string, init?: RequestInit): Promise<RawResponse>;
  /** Stops the HTTP server (the database stays open). */
  close(): Promise<void>;
}

export interface RawResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

export type TrpcClient = ReturnType<typeof createTRPCClient<AppRouter>>;

export interface HttpClient {
  trpc: TrpcClient;
  /** Cookies this client holds (name → value), updated from every response's Set-Cookie headers. */
  jar: Map<string, string>;
  /** The current session token from the jar. */
  sessionToken(): string | undefined;
  /** Sets or clears the session cookie by hand (to replay an old token). */
  setSessionToken(token: string | undefined): void;
  /** A raw request that sends and updates this client's cookie jar. */
  fetch(path: string, init?: RequestInit): Promise<RawResponse>;
}

/** A Writable that keeps each log line pino writes. */
function lineCollector(into: string[]): Writable {
  let pending = '';
  return new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) if (line) into.push(line);
      callback();
    },
    final(callback) {
      if (pending) into.push(pending);
      callback();
    },
  });
}

function updateJar(jar: Map<string, string>, setCookies: string[]): void {
  for (const header of setCookies) {
    const [pair = '', ...attributes] = header.split(';');
    const eq = pair.indexOf('=');
    if (eq < 1) continue;
    const name = pair.slice(0, eq).trim();
    const value = decodeURIComponent(pair.slice(eq + 1).trim());
    const expires = attributes.map((a) => a.trim()).find((a) => a.toLowerCase().startsWith('expires='));
    const maxAge = attributes.map((a) => a.trim()).find((a) => a.toLowerCase().startsWith('max-age='));
    const expired =
      (expires !== undefined && Date.parse(expires.slice('expires='.length)) <= Date.now()) ||
      (maxAge !== undefined && Number(maxAge.slice('max-age='.length)) <= 0);
    if (!value || expired) jar.delete(name);
    else jar.set(name, value);
  }
}

function cookieHeader(jar: Map<string, string>): string | undefined {
  if (jar.size === 0) return undefined;
  return [...jar].map(([name, value]) => `${name}=${encodeURIComponent(value)}`).join('; ');
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const GENEROUS_SIGN_UP_LIMITS: SignUpLimits = { perAddress: 100_000, total: 100_000, windowMs: 60_000 };

/**
 * Starts a real Fastify server for `svc` on an ephemeral port of 127.0.0.1, logging at trace level into
 * `recorded.logs`. `logger` replaces the default `{ level: 'trace' }` options (the stream is always added).
 */
export async function startHttpServer(
  svc: Services,
  options: {
    logger?: Exclude<FastifyServerOptions['logger'], boolean | undefined>;
    trustProxy?: false | string | readonly string[];
    secureCookies?: boolean;
    signInLimits?: SignInLimits;
    /** Default: generous (every test's users sign up from 127.0.0.1); pass limits to test throttling. */
    signUpLimits?: SignUpLimits;
  } = {},
): Promise<HttpTestServer> {
  const recorded: Recorded = { responses: [], setCookies: [], logs: [] };
  const stream = lineCollector(recorded.logs);
  const server = await buildHttpServer(svc, {
    logger: { level: 'trace', ...options.logger, stream },
    trustProxy: options.trustProxy,
    secureCookies: options.secureCookies,
    ...(options.signInLimits ? { signInLimits: options.signInLimits } : {}),
    signUpLimits: options.signUpLimits ?? GENEROUS_SIGN_UP_LIMITS,
  });
  await server.listen({ host: '127.0.0.1', port: 0 });
  const address = server.server.address();
  if (!address || typeof address === 'string') throw new Error('The test server has no TCP address');
  const url = `http://127.0.0.1:${address.port}`;

  async function send(
    path: string,
    init: RequestInit,
    jar: Map<string, string> | undefined,
  ): Promise<RawResponse> {
    const headers = new Headers(init.headers);
    const cookie = jar ? cookieHeader(jar) : undefined;
    if (cookie && !headers.has('cookie')) headers.set('cookie', cookie);
    const response = await fetch(path.startsWith('http') ? path : `${url}${path}`, { ...init, headers });
    const text = await response.text();
    recorded.responses.push(text);
    const setCookies = response.headers.getSetCookie();
    recorded.setCookies.push(...setCookies);
    if (jar) updateJar(jar, setCookies);
    return { status: response.status, headers: response.headers, text, json: parseJson(text) };
  }

  return {
    server,
    url,
    recorded,
    client() {
      const jar = new Map<string, string>();
      const trpc = createTRPCClient<AppRouter>({
        links: [
          httpLink({
            url: `${url}/trpc`,
            // Goes through `send` so the cookie jar and the recording see every call; hands tRPC a fresh Response.
            fetch: async (input, init) => {
              const raw = await send(String(input), (init ?? {}) as RequestInit, jar);
              return new Response(raw.text, { status: raw.status, headers: raw.headers });
            },
          }),
        ],
      });
      return {
        trpc,
        jar,
        sessionToken: () => jar.get(SESSION_COOKIE),
        setSessionToken(token) {
          if (token === undefined) jar.delete(SESSION_COOKIE);
          else jar.set(SESSION_COOKIE, token);
        },
        fetch: (path, init = {}) => send(path, init, jar),
      };
    },
    fetch: (path, init = {}) => send(path, init, undefined),
    close: () => server.close(),
  };
}

/** A fresh test database and services behind a real HTTP server. */
export async function startTestHttpApp(): Promise<{
  app: TestApp;
  http: HttpTestServer;
  close(): Promise<void>;
}> {
  const app = await createTestApp();
  const http = await startHttpServer(app.svc);
  return {
    app,
    http,
    async close() {
      await http.close();
      await app.close();
    },
  };
}

let counter = 0;

/** Signs up a new user over HTTP; returns the signed-in client, the user and their personal workspace id. */
export async function signUpOverHttp(http: HttpTestServer, name = 'Test User') {
  counter += 1;
  const client = http.client();
  const email = `http-user-${counter}-${randomBytes(3).toString('hex')}@example.test`;
  const password = 'correct horse battery staple';
  const { user } = await client.trpc.auth.signUp.mutate({ email, password, name });
  if (!user) throw new Error('sign-up of a fresh email did not sign in');
  const me = await client.trpc.auth.me.query();
  const workspaceId = me?.workspaces[0]?.id;
  if (!workspaceId) throw new Error('sign-up created no personal workspace');
  return { client, user, email, password, workspaceId };
}

/** Awaits a call that must fail, and returns its TRPCClientError (typed with the router's error shape). */
export async function trpcError(call: Promise<unknown>): Promise<TRPCClientError<AppRouter>> {
  try {
    await call;
  } catch (error) {
    if (error instanceof TRPCClientError) return error as TRPCClientError<AppRouter>;
    throw error;
  }
  throw new Error('Expected the call to fail, but it succeeded');
}

/** POSTs a JSON (or any) body to a tRPC procedure, the way a non-tRPC client would. */
export function postProcedure(
  target: Pick<HttpClient, 'fetch'> | Pick<HttpTestServer, 'fetch'>,
  procedure: string,
  body: string,
  headers: Record<string, string> = { 'content-type': 'application/json' },
): Promise<RawResponse> {
  return target.fetch(`/trpc/${procedure}`, { method: 'POST', headers, body });
}
