import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  postProcedure,
  type RawResponse,
  signUpOverHttp,
  startTestHttpApp,
} from '../testing/http-harness.js';
import { buildHttpServer } from './server.js';

// Issue 6, item 11 (and the HTTP side of item 9): body size limit, errors in one JSON shape that never quotes
// the request, hostile bytes in headers, and the security headers on the web app.

let t: Awaited<ReturnType<typeof startTestHttpApp>>;
let owner: Awaited<ReturnType<typeof signUpOverHttp>>;
beforeAll(async () => {
  t = await startTestHttpApp();
  owner = await signUpOverHttp(t.http, 'Hardening');
});
afterAll(() => t.close());

const MIB = 1024 * 1024;

function errorCode(response: RawResponse): unknown {
  return (response.json as { error?: { data?: { code?: unknown } } } | undefined)?.error?.data?.code;
}

/** A secrets.create body of exactly `bytes` bytes (the name padded with spaces inside the JSON). */
function bodyOfSize(workspaceId: string, bytes: number): string {
  const base = JSON.stringify({
    workspaceId,
    credentialType: 'slackBotToken',
    name: 'Sized',
    data: { token: 'xoxb-fake' },
  });
  const padded = `${base.slice(0, -1)}${' '.repeat(bytes - base.length)}}`;
  expect(Buffer.byteLength(padded)).toBe(bytes);
  return padded;
}

describe('request body size limit (1 MiB)', () => {
  it('accepts a body of exactly 1 MiB and refuses one byte more with 413 and a JSON error, storing nothing', async () => {
    const atLimit = await postProcedure(owner.client, 'secrets.create', bodyOfSize(owner.workspaceId, MIB));
    expect(atLimit.status).toBe(200);
    const over = await postProcedure(owner.client, 'secrets.create', bodyOfSize(owner.workspaceId, MIB + 1));
    expect(over.status).toBe(413);
    expect(errorCode(over)).toBe('PAYLOAD_TOO_LARGE');
    expect((over.json as { error: { message: string } }).error.message).toBe(
      'The request body is too large (the limit is 1 MiB)',
    );
    const listed = await owner.client.trpc.secrets.list.query({ workspaceId: owner.workspaceId });
    expect(listed.items.map((s) => s.name)).toEqual(['Sized']);
  });

  it('refuses a 20 MiB body without reading it all, and keeps serving', async () => {
    const started = Date.now();
    const response = await postProcedure(owner.client, 'secrets.create', 'x'.repeat(20 * MIB));
    expect(response.status).toBe(413);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((await t.http.fetch('/healthz')).status).toBe(200);
  });
});

describe('errors in one JSON shape that never quotes the request', () => {
  const MARK = 'QZXECHO';

  it.each([
    ['an unknown page', () => t.http.fetch(`/${MARK}<script>`), 404, 'NOT_FOUND'],
    ['an unknown API route', () => t.http.fetch(`/api/${MARK}`), 404, 'NOT_FOUND'],
    ['an unknown procedure', () => postProcedure(owner.client, `secrets.${MARK}`, '{}'), 404, 'NOT_FOUND'],
    [
      'an unknown nested procedure (GET)',
      () => owner.client.fetch(`/trpc/${MARK}.x?input=%7B%7D`),
      404,
      'NOT_FOUND',
    ],
    [
      'a strange content type',
      () => postProcedure(owner.client, 'secrets.create', '{}', { 'content-type': `text/${MARK}` }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    ],
    [
      'a cross-site request',
      () =>
        postProcedure(owner.client, 'secrets.create', '{}', {
          'content-type': 'application/json',
          'sec-fetch-site': 'cross-site',
        }),
      403,
      'FORBIDDEN',
    ],
    [
      'malformed JSON',
      () => postProcedure(owner.client, 'secrets.create', `{"name":"${MARK}`),
      400,
      'BAD_REQUEST',
    ],
    [
      'invalid UTF-8 in the body',
      () =>
        owner.client.fetch('/trpc/secrets.create', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: Buffer.concat([
            Buffer.from(`{"workspaceId":"${MARK}`),
            Buffer.from([0xff, 0xfe, 0xc0]),
            Buffer.from('"}'),
          ]),
        }),
      400,
      'BAD_REQUEST',
    ],
  ])('%s', async (_name, request, status, code) => {
    const response = await request();
    expect(response.status).toBe(status);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(errorCode(response)).toBe(code);
    expect(response.text).not.toContain(MARK);
  });
});

/** Sends raw bytes as an HTTP request and returns the raw response (status line, headers, body). */
function rawRequest(port: number, head: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    socket.setTimeout(10_000, () => {
      socket.destroy();
      reject(new Error('no answer within 10 s'));
    });
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text });
    });
    socket.write(head);
  });
}

describe('hostile bytes in headers (invalid UTF-8, control characters)', () => {
  const port = () => Number(new URL(t.http.url).port);
  const bad = Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x82]);

  it.each([
    ['cookie', 'latchkey_session='],
    ['content-type', 'application/json; charset='],
    ['sec-fetch-site', ''],
    ['x-forwarded-for', ''],
    ['authorization', 'Bearer '],
  ])(
    'a %s header with invalid UTF-8 gets a 4xx or an ordinary answer, never a 5xx or a hang',
    async (name, prefix) => {
      const body = '{"workspaceId":"x"}';
      const head = Buffer.concat([
        Buffer.from(`POST /trpc/secrets.list HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n`),
        Buffer.from(`content-type: application/json\r\ncontent-length: ${body.length}\r\n`),
        Buffer.from(`${name}: ${prefix}`),
        bad,
        Buffer.from(`\r\n\r\n${body}`),
      ]);
      const response = await rawRequest(port(), head);
      expect(response.status).toBeGreaterThanOrEqual(400);
      expect(response.status).toBeLessThan(500);
    },
  );

  it('a request line with invalid UTF-8 in the path gets a 4xx', async () => {
    const head = Buffer.concat([
      Buffer.from('GET /trpc/secrets.list?input='),
      bad,
      Buffer.from(' HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'),
    ]);
    const response = await rawRequest(port(), head);
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
  });

  it('keeps serving afterwards', async () => {
    expect((await t.http.fetch('/healthz')).status).toBe(200);
  });
});

describe('security headers on the web app', () => {
  function expectSecurityHeaders(response: RawResponse) {
    const csp = response.headers.get('content-security-policy') ?? '';
    const directives = new Map(
      csp.split(';').map((d) => {
        const [name = '', ...values] = d.trim().split(/\s+/);
        return [name, values] as const;
      }),
    );
    expect(directives.get('script-src')).toEqual(["'self'"]);
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(directives.get('frame-ancestors')).toEqual(["'none'"]);
    expect(directives.get('default-src')).toEqual(["'self'"]);
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    expect(response.headers.get('x-frame-options')).toBe('DENY');
  }

  async function serve(
    webDir: string,
  ): Promise<{ fetch(p: string): Promise<RawResponse>; close(): Promise<void> }> {
    const server = await buildHttpServer(t.app.svc, { webDir });
    await server.listen({ host: '127.0.0.1', port: 0 });
    const address = server.server.address() as net.AddressInfo;
    return {
      async fetch(p: string) {
        const response = await fetch(`http://127.0.0.1:${address.port}${p}`);
        const text = await response.text();
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        return { status: response.status, headers: response.headers, text, json };
      },
      close: () => server.close(),
    };
  }

  it('on the app shell, its assets, client-side routes and API answers (a stand-in build)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-web-'));
    try {
      mkdirSync(path.join(dir, 'assets'));
      writeFileSync(
        path.join(dir, 'index.html'),
        '<!doctype html><html><head><script type="module" src="/assets/app.js"></script></head><body></body></html>',
      );
      writeFileSync(path.join(dir, 'assets', 'app.js'), 'console.log(1)');
      const web = await serve(dir);
      try {
        for (const p of [
          '/',
          '/assets/app.js',
          '/workspaces/some/secrets',
          '/healthz',
          '/trpc/integrations.list',
        ]) {
          const response = await web.fetch(p);
          expect(response.status, p).toBe(200);
          expectSecurityHeaders(response);
        }
        expect((await web.fetch('/workspaces/some/secrets')).text).toContain('<!doctype html>');
        const missing = await web.fetch('/assets/missing.js');
        expect(missing.status).toBe(404);
        expectSecurityHeaders(missing);
      } finally {
        await web.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const built = fileURLToPath(new URL('../../../web/dist', import.meta.url));
  it('on the real built web app: headers, and no inline script the CSP would block', async () => {
    // `pnpm test` builds the web app first: a missing build is a failure, never a silent skip.
    if (!existsSync(path.join(built, 'index.html')))
      throw new Error(`${built} is missing: run \`pnpm build\``);
    const web = await serve(built);
    try {
      const shell = await web.fetch('/');
      expect(shell.status).toBe(200);
      expect(shell.headers.get('content-type')).toMatch(/^text\/html/);
      expectSecurityHeaders(shell);
      const scripts = [...shell.text.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
      expect(scripts.length).toBeGreaterThan(0);
      for (const [, attributes, content] of scripts) {
        expect(attributes).toMatch(/\bsrc=/);
        expect(content?.trim()).toBe('');
      }
      expect(shell.text).not.toMatch(/\son[a-z]+\s*=/i); // no inline event handlers either
    } finally {
      await web.close();
    }
  });

  describe('precompressed assets of the real build', () => {
    let server: Awaited<ReturnType<typeof buildHttpServer>>;
    let port = 0;
    let shellHtml = '';
    beforeAll(async () => {
      if (!existsSync(path.join(built, 'index.html')))
        throw new Error(`${built} is missing: run \`pnpm build\``);
      shellHtml = readFileSync(path.join(built, 'index.html'), 'utf8');
      server = await buildHttpServer(t.app.svc, { webDir: built });
      await server.listen({ host: '127.0.0.1', port: 0 });
      port = (server.server.address() as net.AddressInfo).port;
    });
    afterAll(() => server?.close());

    /** A GET with exactly the Accept-Encoding given (fetch would send its own and decode): the raw bytes. */
    function rawGet(p: string, acceptEncoding?: string) {
      return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>(
        (done, fail) => {
          const headers = acceptEncoding === undefined ? {} : { 'accept-encoding': acceptEncoding };
          http
            .get({ host: '127.0.0.1', port, path: p, headers }, (response) => {
              const chunks: Buffer[] = [];
              response.on('data', (chunk: Buffer) => chunks.push(chunk));
              response.on('end', () =>
                done({
                  status: response.statusCode ?? 0,
                  headers: response.headers,
                  body: Buffer.concat(chunks),
                }),
              );
            })
            .on('error', fail);
        },
      );
    }

    const decoders: Record<string, (body: Buffer) => Buffer> = {
      br: brotliDecompressSync,
      gzip: gunzipSync,
      none: (body) => body,
    };
    const cases = [
      { accept: 'br', encoding: 'br' },
      { accept: 'gzip, deflate, br', encoding: 'br' },
      { accept: 'gzip', encoding: 'gzip' },
      { accept: 'br;q=0, gzip', encoding: 'gzip' },
      { accept: undefined, encoding: 'none' },
      { accept: 'identity', encoding: 'none' },
    ] as const;

    it.each(cases)('a hashed script with Accept-Encoding $accept is sent as $encoding', async (c) => {
      const src = /<script[^>]*\bsrc="(\/assets\/[^"]+\.js)"/.exec(shellHtml)?.[1];
      expect(src).toBeDefined();
      const original = readFileSync(path.join(built, String(src)));
      const response = await rawGet(String(src), c.accept);
      expect(response.status).toBe(200);
      expect(response.headers['content-encoding']).toBe(c.encoding === 'none' ? undefined : c.encoding);
      expect(response.headers.vary?.toLowerCase()).toContain('accept-encoding');
      expect(response.headers['content-type']).toMatch(/^(text|application)\/javascript/);
      expect(response.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      if (c.encoding !== 'none') expect(response.body.length).toBeLessThan(original.length / 2);
      expect(decoders[c.encoding]?.(response.body).equals(original)).toBe(true);
    });

    it.each(['/', '/w/some-workspace/secrets'])(
      'the app shell at %s, compressed, keeps its headers',
      async (p) => {
        for (const c of cases) {
          const response = await rawGet(p, c.accept);
          expect(response.status, `${p} ${c.accept}`).toBe(200);
          expect(response.headers['content-encoding']).toBe(c.encoding === 'none' ? undefined : c.encoding);
          expect(response.headers.vary?.toLowerCase()).toContain('accept-encoding');
          expect(response.headers['content-type']).toMatch(/^text\/html/);
          expect(response.headers['cache-control']).toBe('no-cache');
          expectSecurityHeaders({
            status: response.status,
            headers: new Headers(response.headers as Record<string, string>),
            text: '',
            json: undefined,
          });
          expect(decoders[c.encoding]?.(response.body).toString('utf8')).toBe(shellHtml);
        }
      },
    );

    it('a missing asset is still a 404, whatever the encoding', async () => {
      for (const c of cases) expect((await rawGet('/assets/missing-0000.js', c.accept)).status).toBe(404);
    });
  });

  it('without a web app, on /healthz and on a 404', async () => {
    for (const p of ['/healthz', '/nothing-here']) expectSecurityHeaders(await t.http.fetch(p));
  });
});
