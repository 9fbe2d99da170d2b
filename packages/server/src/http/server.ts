import { existsSync } from 'node:fs';
import path from 'node:path';
import fastifyCookie from '@fastify/cookie';
import fastifyStatic from '@fastify/static';
import { type FastifyTRPCPluginOptions, fastifyTRPCPlugin } from '@trpc/server/adapters/fastify';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { sql } from 'kysely';
import type { Services } from '../services.js';
import { type AppRouter, appRouter } from '../trpc/router.js';
import { createContextFactory } from '../trpc/trpc.js';

export interface HttpServerOptions {
  /** Built web app to serve at `/` (skipped when the folder does not exist). */
  webDir?: string | undefined;
  logger?: FastifyServerOptions['logger'];
  trustProxy?: boolean | string;
  secureCookies?: boolean;
}

/**
 * Log configuration: request URLs without their query string (tRPC queries carry their input there),
 * and cookies, authorization headers, and any `data`/`password`/`token` field redacted.
 */
export function loggerOptions(level: string): FastifyServerOptions['logger'] {
  return {
    level,
    redact: {
      paths: [
        'req.headers.cookie',
        'req.headers.authorization',
        'res.headers["set-cookie"]',
        '*.data',
        '*.password',
        '*.token',
        '*.apiKey',
      ],
      censor: '[redacted]',
    },
    serializers: {
      req: (req: { method: string; url: string; id: string }) => ({
        id: req.id,
        method: req.method,
        url: req.url.split('?')[0],
      }),
    },
  };
}

export async function buildHttpServer(
  svc: Services,
  options: HttpServerOptions = {},
): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: 1024 * 1024,
    trustProxy: options.trustProxy ?? false,
  });
  await app.register(fastifyCookie);

  // CSRF: state-changing calls must be JSON (a cross-site form cannot send that without CORS) and must not
  // come from another site. Browsers label cross-site requests with Sec-Fetch-Site.
  app.addHook('onRequest', async (request, reply) => {
    // The routed path, not the raw URL: `/%74rpc/...` reaches the same route and must meet the same checks.
    if (!request.routeOptions.url?.startsWith('/trpc')) return;
    if (request.headers['sec-fetch-site'] === 'cross-site') {
      return reply.code(403).send({ error: { message: 'Cross-site requests are not accepted' } });
    }
    if (request.method === 'POST') {
      const type = String(request.headers['content-type'] ?? '').toLowerCase();
      if (!type.startsWith('application/json')) {
        return reply
          .code(415)
          .send({ error: { message: 'Send state-changing requests as application/json' } });
      }
    }
  });

  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header('Referrer-Policy', 'no-referrer');
    reply.header('X-Frame-Options', 'DENY');
    reply.header(
      'Content-Security-Policy',
      "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    );
    return payload;
  });

  app.get('/healthz', async (_request, reply) => {
    await sql`select 1`.execute(svc.db);
    return reply.send({ ok: true });
  });

  await app.register(fastifyTRPCPlugin, {
    prefix: '/trpc',
    trpcOptions: {
      router: appRouter,
      createContext: createContextFactory(svc, options.secureCookies ?? false),
      onError({ error, path: procedure }) {
        // Only unexpected errors are logged, by procedure name and error class; never the input.
        if (error.code === 'INTERNAL_SERVER_ERROR') {
          app.log.error(
            { procedure, err: { type: error.cause?.name ?? error.name, message: error.cause?.message } },
            'procedure failed',
          );
        }
      },
    } satisfies FastifyTRPCPluginOptions<AppRouter>['trpcOptions'],
  });

  const webDir = options.webDir;
  if (webDir && existsSync(path.join(webDir, 'index.html'))) {
    await app.register(fastifyStatic, {
      root: webDir,
      prefix: '/',
      index: ['index.html'],
      cacheControl: false,
      // Built assets have content hashes in their names; the app shell must always be fetched fresh.
      setHeaders: (res, filePath) => {
        res.header(
          'Cache-Control',
          filePath.includes(`${path.sep}assets${path.sep}`)
            ? 'public, max-age=31536000, immutable'
            : 'no-cache',
        );
      },
    });
    // Client-side routes fall back to the app shell.
    app.setNotFoundHandler((request, reply) => {
      if (
        request.method === 'GET' &&
        !request.url.startsWith('/trpc') &&
        !path.extname(request.url.split('?')[0] ?? '')
      ) {
        return reply.type('text/html').sendFile('index.html');
      }
      return reply.code(404).send({ error: { message: 'Not found' } });
    });
  }
  return app;
}
