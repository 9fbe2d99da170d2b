/**
 * The plumbing of every plugin's fake service (each plugin's `src/fake-<id>.ts`, exported as
 * `@latchkey/integration-<id>/fake`): a small real HTTP server on 127.0.0.1 that records exactly what it
 * received and answers through the plugin's handlers. Each can be told to misbehave (401, never answer,
 * redirect, echo the credential back, send an oversized body) to exercise the runner's failure paths.
 * Node only, and no vitest: the server's tests and the browser suite use the fakes too.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { HttpResponse, OutgoingRequest } from '../http.js';

export interface RecordedRequest {
  method: string;
  /** Path without the query string, as received (percent-encoding kept). */
  path: string;
  query: Record<string, string | string[]>;
  headers: IncomingHttpHeaders;
  body: string;
}

export type FakeBehaviour =
  /** Answers as the real service does for a valid credential. */
  | { kind: 'normal' }
  /** Answers as the real service does for a bad credential (SendGrid 401 JSON, Mailgun 401 `Forbidden`, Slack 200 ok:false). */
  | { kind: 'unauthorized' }
  /** Reads the request and never answers. */
  | { kind: 'timeout' }
  /** Answers 302 (or `status`) to `location`; with `fromPath`, only requests to that path are redirected. */
  | { kind: 'redirect'; location: string; status?: number; fromPath?: string }
  /**
   * Sends back everything it received that could be a credential (Authorization, the bearer token, the Basic
   * `user:password`, every header and query value, the path) in the body AND in response headers, shaped so
   * that each plugin's error parser reads it (`errors[].message`, `message`, `error`). Status 400 by default.
   */
  | { kind: 'echo'; status?: number }
  /** Answers 200 with a body of `bytes` bytes. */
  | { kind: 'oversized'; bytes: number }
  /** Starts a 200 answer and drops the connection before the announced body is complete. */
  | { kind: 'hangup' };

export type FakeHandler = (req: RecordedRequest, res: ServerResponse, fake: FakeService) => void;

export function answerJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

export function answerText(
  res: ServerResponse,
  status: number,
  body: string,
  contentType = 'text/plain',
): void {
  res.writeHead(status, { 'content-type': contentType });
  res.end(body);
}

/** What a request carried that could be a credential, for the echo behaviour. */
export function credentialMaterial(req: RecordedRequest): {
  authorization: string;
  token: string;
  basic: string;
} {
  const authorization = String(req.headers.authorization ?? '');
  const token = authorization.replace(/^(Bearer|Basic)\s+/i, '');
  const basic = /^Basic\s+/i.test(authorization) ? Buffer.from(token, 'base64').toString('utf8') : '';
  return { authorization, token: basic ? (basic.split(':').slice(1).join(':') ?? '') : token, basic };
}

/**
 * The echo behaviour: everything the request carried that could be a credential, in the body and in response
 * headers. A fake whose service puts the secret elsewhere (Slack's webhook path) passes its own `echo`.
 */
export function echoCredentials(req: RecordedRequest, res: ServerResponse, status: number): void {
  const { authorization, token, basic } = credentialMaterial(req);
  const everything = [
    authorization,
    // The bare credential of the Authorization header (base64 of user:password for Basic), without its scheme.
    authorization.replace(/^\S+\s+/, ''),
    token,
    basic,
    req.path,
    ...Object.values(req.query).flat(),
    ...Object.entries(req.headers)
      .filter(([name]) => !['host', 'content-length', 'content-type', 'connection'].includes(name))
      .map(([, value]) => String(value)),
  ]
    .filter(Boolean)
    .join(' ');
  const headerSafe = (value: string) => value.replace(/[^\x20-\x7e]/g, '?');
  res.writeHead(status, {
    'content-type': 'application/json',
    'x-echo-authorization': headerSafe(authorization),
    'x-echo-token': headerSafe(token),
    'x-echo-everything': headerSafe(everything),
    'www-authenticate': `Bearer error="invalid_token", error_description="${headerSafe(token)}"`,
  });
  res.end(
    JSON.stringify({
      ok: false,
      error: `invalid_auth ${everything}`,
      message: `Forbidden: ${everything}`,
      errors: [
        { message: `The provided authorization grant is invalid: ${everything}`, field: null, help: null },
      ],
      received: { authorization, token, basic, path: req.path, query: req.query, headers: req.headers },
    }),
  );
}

export class FakeService {
  readonly requests: RecordedRequest[] = [];
  behaviour: FakeBehaviour = { kind: 'normal' };
  url = '';
  readonly #server: http.Server;
  readonly #sockets = new Set<Socket>();
  readonly #hanging = new Set<ServerResponse>();

  constructor(
    readonly name: string,
    private readonly handlers: {
      normal: FakeHandler;
      unauthorized: FakeHandler;
      echo?: (req: RecordedRequest, res: ServerResponse, status: number) => void;
    },
  ) {
    this.#server = http.createServer((req, res) => this.#handle(req, res));
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    const { port } = this.#server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
    return this;
  }

  get port(): number {
    return Number(new URL(this.url).port);
  }

  /** Sets how the fake answers from now on. */
  respond(behaviour: FakeBehaviour): this {
    this.behaviour = behaviour;
    return this;
  }

  /** Forgets recorded requests and answers normally again. */
  reset(): this {
    this.requests.length = 0;
    this.behaviour = { kind: 'normal' };
    return this;
  }

  /** The only request received since the last reset (fails loudly if there were none or several). */
  only(): RecordedRequest {
    if (this.requests.length !== 1) {
      throw new Error(`${this.name} fake received ${this.requests.length} requests, expected exactly 1`);
    }
    return this.requests[0] as RecordedRequest;
  }

  #handle(incoming: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      const url = new URL(incoming.url ?? '/', 'http://fake.invalid');
      const query: Record<string, string | string[]> = {};
      for (const [name, value] of url.searchParams) {
        const existing = query[name];
        query[name] =
          existing === undefined ? value : [...(Array.isArray(existing) ? existing : [existing]), value];
      }
      const recorded: RecordedRequest = {
        method: incoming.method ?? '',
        path: (incoming.url ?? '/').split('?')[0] ?? '/',
        query,
        headers: incoming.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      this.requests.push(recorded);
      const behaviour = this.behaviour;
      switch (behaviour.kind) {
        case 'timeout':
          this.#hanging.add(res);
          res.on('close', () => this.#hanging.delete(res));
          return;
        case 'redirect':
          if (behaviour.fromPath === undefined || behaviour.fromPath === recorded.path) {
            res.writeHead(behaviour.status ?? 302, {
              location: behaviour.location,
              'content-type': 'text/plain',
            });
            res.end('Found');
            return;
          }
          this.handlers.normal(recorded, res, this);
          return;
        case 'echo':
          (this.handlers.echo ?? echoCredentials)(recorded, res, behaviour.status ?? 400);
          return;
        case 'oversized': {
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          const chunk = Buffer.alloc(64 * 1024, 'x');
          let left = behaviour.bytes;
          const pump = () => {
            while (left > 0 && !res.destroyed) {
              const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
              left -= piece.length;
              if (!res.write(piece)) {
                res.once('drain', pump);
                return;
              }
            }
            res.end();
          };
          res.on('error', () => {});
          pump();
          return;
        }
        case 'hangup':
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
          res.write('{"ok":');
          setTimeout(() => res.socket?.destroy(), 10);
          return;
        case 'unauthorized':
          this.handlers.unauthorized(recorded, res, this);
          return;
        default:
          this.handlers.normal(recorded, res, this);
      }
    });
  }

  async close(): Promise<void> {
    for (const res of this.#hanging) res.destroy();
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/**
 * Performs a request over real HTTP, as the server's runner does minus its outbound guard and limits: for a
 * plugin's own tests against its fake, after the credential's `authenticate` has been applied.
 */
export async function performRequest(request: OutgoingRequest): Promise<HttpResponse> {
  const url = new URL(request.url);
  for (const [name, value] of Object.entries(request.query ?? {})) url.searchParams.append(name, value);
  const response = await fetch(url, {
    method: request.method,
    headers: request.headers,
    ...(request.body === undefined ? {} : { body: request.body }),
  });
  return {
    status: response.status,
    headers: Object.fromEntries(response.headers),
    body: await response.text(),
  };
}
