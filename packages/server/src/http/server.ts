import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Readable } from 'node:stream';
import fastifyCookie from '@fastify/cookie';
import fastifyStatic from '@fastify/static';
import { TRPCError } from '@trpc/server';
import type { FastifyTRPCPluginOptions } from '@trpc/server/adapters/fastify';
import { getHTTPStatusCodeFromError } from '@trpc/server/http';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { sql } from 'kysely';
import { z } from 'zod';
import { exportAuditLog } from '../audit/audit.js';
import { DomainError, NotFoundError } from '../errors.js';
import { callerForSession } from '../identity/identity.js';
import {
  DEFAULT_SIGN_IN_LIMITS,
  DEFAULT_SIGN_UP_LIMITS,
  type SignInLimits,
  type SignUpLimits,
} from '../identity/rate-limit.js';
import { RetryLaterError } from '../identity/retry-later.js';
import { completeConsent } from '../oauth/connections.js';
import type { Services } from '../services.js';
import { auditFilter } from '../trpc/inputs.js';
import { type AppRouter, appRouter } from '../trpc/router.js';
import { createContextFactory, isSecureRequest, sessionTokenOf } from '../trpc/trpc.js';
import { trpcRoute } from './trpc-route.js';

export interface HttpServerOptions {
  /** Built web app to serve at `/` (skipped when the folder does not exist). */
  webDir?: string | undefined;
  logger?: FastifyServerOptions['logger'];
  /**
   * The proxies (addresses or CIDRs, config.ts `parseTrustProxy`) whose X-Forwarded-* headers are believed;
   * a request from any other peer is taken at its socket address.
   */
  trustProxy?: false | string | readonly string[] | undefined;
  secureCookies?: boolean;
  /** Sign-in limits (the configuration's `signInLimits`); the defaults of identity/rate-limit.ts when not given. */
  signInLimits?: SignInLimits;
  /** Sign-up limits (the configuration's `signUpLimits`); the defaults of identity/rate-limit.ts when not given. */
  signUpLimits?: SignUpLimits;
}

/** Calls one batched request may hold (the web client's batch link uses the same limit). */
export const MAX_BATCH_SIZE = 10;
/** Room for MAX_BATCH_SIZE procedure names (each at most 64 characters) and their commas. */
export const MAX_BATCH_PATH_LENGTH = MAX_BATCH_SIZE * 65;

/**
 * The procedures of a tRPC batch request (`/trpc/a,b,c?batch=1`), or undefined for a single call. Batching
 * would let one request carry many password hashes past the per-request throttles, so `auth.*` is limited to
 * one per batch (below).
 */
function batchedProcedures(request: { query: unknown; params: unknown }): string[] | undefined {
  const batch = (request.query as { batch?: unknown } | undefined)?.batch;
  const procedures = (request.params as { path?: unknown } | undefined)?.path;
  if (batch !== '1' || typeof procedures !== 'string') return undefined;
  return procedures.split(',');
}

const STATUS_CODE: Record<number, string> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_SUPPORTED',
  408: 'TIMEOUT',
  409: 'CONFLICT',
  411: 'BAD_REQUEST',
  413: 'PAYLOAD_TOO_LARGE',
  414: 'BAD_REQUEST',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  429: 'TOO_MANY_REQUESTS',
  500: 'INTERNAL_SERVER_ERROR',
};

/**
 * An error answered outside tRPC, in the same shape as tRPC's (`error.message`, `error.data.code`,
 * `error.data.httpStatus`), with a fixed message that never quotes the request.
 */
/** The export route's query: `audit.list`'s filters (`actions` repeated or comma-separated) and a format. */
const auditExportQuery = auditFilter.extend({ format: z.enum(['jsonl', 'csv']).optional() }).strict();

function exportQueryInput(query: Record<string, string | string[] | undefined>): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(query ?? {})) {
    if (value === undefined) continue;
    if (name === 'actions')
      input[name] = (Array.isArray(value) ? value : [value]).flatMap((v) => v.split(',')).filter(Boolean);
    else input[name] = Array.isArray(value) ? value : value === '' ? undefined : value;
  }
  return input;
}

export function errorBody(status: number, message: string) {
  return { error: { message, data: { code: STATUS_CODE[status] ?? 'BAD_REQUEST', httpStatus: status } } };
}

const FIXED_MESSAGES: Record<number, string> = {
  400: 'The request is not valid',
  404: 'Not found',
  405: 'Method not allowed',
  413: 'The request body is too large (the limit is 1 MiB)',
  415: 'Unsupported content type',
};

/**
 * Log configuration: request URLs without their query string (tRPC queries carry their input there) or
 * fragment, an invite link's path without its token, and cookies, authorization headers, and any
 * `data`/`password`/`token` field redacted. The invite token itself travels in the link's fragment and the
 * acceptInvite body, which are never logged; the path rule covers links of the old `/invite/<token>` form.
 */
export function loggerOptions(level: string): Exclude<FastifyServerOptions['logger'], boolean | undefined> {
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
        // secrets.importN8n: an n8n export and its key.
        '*.credentials',
        '*.n8nKey',
      ],
      censor: '[redacted]',
    },
    serializers: {
      req: (req: { method: string; url: string; id: string }) => ({
        id: req.id,
        method: req.method,
        url: loggableUrl(req.url),
      }),
    },
  };
}

// Fastify loads its schema compilers (ajv, fast-json-stringify) when it is built, a tenth of the start-up, for
// routes that declare no schema (tRPC validates with zod): they are loaded the first time a route needs one.
const fastifyRequire = createRequire(createRequire(import.meta.url).resolve('fastify'));
const LAZY_SCHEMA_COMPILERS = {
  buildValidator: (...args: unknown[]) => fastifyRequire('@fastify/ajv-compiler')()(...args),
  buildSerializer: (...args: unknown[]) => fastifyRequire('@fastify/fast-json-stringify-compiler')()(...args),
};

/**
 * A request URL as the log may show it: the path only, nothing after `/invite/`, and any segment shaped like
 * one of our bearer tokens (32 random bytes in base64url: 43 characters) replaced, wherever a client put it.
 * Ids are UUIDs (36 characters) and procedure names hold dots, so neither is mistaken for a token.
 */
function loggableUrl(url: string): string {
  const path = url.split(/[?#]/)[0] ?? '';
  let decoded = path;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    // A malformed escape: judge the raw path.
  }
  if (/^\/+invite\//i.test(decoded)) return '/invite/[redacted]';
  return decoded
    .split('/')
    .map((segment) => (/^[A-Za-z0-9_-]{40,}$/.test(segment) ? '[redacted]' : segment))
    .join('/');
}

export async function buildHttpServer(
  svc: Services,
  options: HttpServerOptions = {},
): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? false,
    bodyLimit: 1024 * 1024,
    // A batch names its procedures in the path (`/trpc/a,b,c`): the default limit of 100 characters would
    // answer 414 to a full batch of long names, which the web client sends.
    routerOptions: { maxParamLength: MAX_BATCH_PATH_LENGTH },
    trustProxy: (options.trustProxy as string | string[] | false | undefined) ?? false,
    schemaController: { compilersFactory: LAZY_SCHEMA_COMPILERS },
  });
  await app.register(fastifyCookie);

  // CSRF: state-changing calls must be JSON (a cross-site form cannot send that without CORS) and must not
  // come from another site. Browsers label cross-site requests with Sec-Fetch-Site.
  app.addHook('onRequest', async (request, reply) => {
    // The routed path, not the raw URL: `/%74rpc/...` reaches the same route and must meet the same checks.
    const route = request.routeOptions.url ?? '';
    if (!route.startsWith('/trpc') && !route.startsWith('/api/')) return;
    if (request.headers['sec-fetch-site'] === 'cross-site') {
      return reply.code(403).send(errorBody(403, 'Cross-site requests are not accepted'));
    }
    if (request.method === 'POST') {
      const type = String(request.headers['content-type'] ?? '').toLowerCase();
      if (!type.startsWith('application/json')) {
        return reply.code(415).send(errorBody(415, 'Send state-changing requests as application/json'));
      }
    }
  });

  // One password-hashing call per request: a batch may hold at most one auth.* procedure and at most
  // MAX_BATCH_SIZE calls (tRPC's maxBatchSize below is the second line), refused before anything in it runs.
  // (A list of names longer than MAX_BATCH_PATH_LENGTH is answered 414 by Fastify before this hook.)
  app.addHook('preHandler', async (request, reply) => {
    if (!(request.routeOptions.url ?? '').startsWith('/trpc')) return;
    const procedures = batchedProcedures(request);
    if (!procedures) return;
    if (procedures.length > MAX_BATCH_SIZE) {
      return reply.code(400).send(errorBody(400, `A batch may hold at most ${MAX_BATCH_SIZE} calls`));
    }
    if (procedures.filter((name) => name.startsWith('auth.')).length > 1) {
      return reply
        .code(400)
        .send(
          errorBody(
            400,
            'A batch may hold at most one auth procedure: send sign-up and sign-in calls one per request',
          ),
        );
    }
  });

  // Errors raised before a handler runs (body too large, unreadable body…): the same JSON shape as tRPC's,
  // with fixed messages (Fastify's own can quote a header back).
  app.setErrorHandler((error: { statusCode?: number; name?: string }, request, reply) => {
    const status =
      error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status === 500) {
      request.log.error({ err: { type: error.name } }, 'request failed');
      return reply.code(500).send(errorBody(500, 'Something went wrong on our side; the error was logged'));
    }
    return reply.code(status).send(errorBody(status, FIXED_MESSAGES[status] ?? 'The request is not valid'));
  });

  const secureCookies = options.secureCookies ?? false;
  app.addHook('onSend', async (request, reply, payload) => {
    // HSTS only where https is in use: sent over plain http it would be ignored at best, and a development
    // server on localhost must not pin the browser to https.
    if (isSecureRequest(request, secureCookies)) {
      reply.header('Strict-Transport-Security', 'max-age=31536000');
    }
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

  // The audit log of a workspace as JSON lines (or CSV, `?format=csv`), for its owners, filtered like
  // `audit.list` (docs/operations.md "Audit export", docs/api.md).
  app.get<{ Params: { workspaceId: string }; Querystring: Record<string, string | string[] | undefined> }>(
    '/api/workspaces/:workspaceId/audit.jsonl',
    async (request, reply) => {
      reply.header('Cache-Control', 'no-store');
      const token = sessionTokenOf(request, secureCookies);
      const { workspaceId } = request.params;
      const plausibleId = workspaceId.length >= 1 && workspaceId.length <= 64;
      // Membership is verified with the session, before the export runs in the workspace's scope.
      const caller = token
        ? await callerForSession(svc, token, plausibleId ? { workspaceId } : {})
        : undefined;
      if (!caller) return reply.code(401).send(errorBody(401, 'Sign in to continue'));
      const { user } = caller;
      if (caller.workspaceId !== workspaceId) {
        return reply.code(404).send(errorBody(404, new NotFoundError('Workspace').message));
      }
      const query = auditExportQuery.safeParse(exportQueryInput(request.query));
      if (!query.success) {
        const body = errorBody(400, 'The export filters are not valid');
        const issues = query.error.issues.map((i) => ({ path: i.path.map(String), message: i.message }));
        return reply.code(400).send({ error: { ...body.error, data: { ...body.error.data, issues } } });
      }
      const format = query.data.format ?? 'jsonl';
      let lines: AsyncIterable<string>;
      try {
        lines = await exportAuditLog(svc, { userId: user.id }, { workspaceId, ...query.data, format });
      } catch (error) {
        if (error instanceof DomainError) {
          // A domain error's kind is a tRPC error code: the status is the one a tRPC call would answer.
          const status = getHTTPStatusCodeFromError(new TRPCError({ code: error.kind, cause: error }));
          return reply.code(status).send(errorBody(status, error.message));
        }
        throw error;
      }
      const fileName = `latchkey-audit-${workspaceId.replace(/[^A-Za-z0-9_-]/g, '_')}.${format}`;
      return reply
        .header(
          'Content-Type',
          format === 'csv'
            ? 'text/csv; charset=utf-8; header=present'
            : 'application/x-ndjson; charset=utf-8',
        )
        .header('Content-Disposition', `attachment; filename="${fileName}"`)
        .send(Readable.from(lines));
    },
  );

  // OAuth2 consent comes back here (oauth/connections.ts): the browser is sent on to the Integrations page with
  // what happened — never a token, code or state in the URL it lands on.
  app.get('/oauth/callback', async (request, reply) => {
    reply.header('Cache-Control', 'no-store');
    const token = sessionTokenOf(request, secureCookies);
    const caller = token ? await callerForSession(svc, token) : undefined;
    const query = new URLSearchParams(request.url.split('?')[1] ?? '');
    const outcome = await completeConsent(svc, caller?.user.id ?? null, query);
    const page = outcome.workspaceId ? `/w/${encodeURIComponent(outcome.workspaceId)}/integrations` : '/';
    const result = outcome.ok
      ? `connected=${encodeURIComponent(outcome.secretId)}`
      : `oauthError=${encodeURIComponent(!caller && outcome.error === 'wrong_user' ? 'signed_out' : outcome.error)}`;
    return reply.redirect(`${page}?${result}`, 302);
  });

  await app.register(
    trpcRoute({
      router: appRouter,
      createContext: createContextFactory(
        svc,
        options.secureCookies ?? false,
        options.signInLimits ?? DEFAULT_SIGN_IN_LIMITS,
        options.signUpLimits ?? DEFAULT_SIGN_UP_LIMITS,
      ),
      maxBatchSize: MAX_BATCH_SIZE,
      // A throttled call says when to come back.
      responseMeta({ errors }) {
        const waits = errors.flatMap((error) =>
          error.cause instanceof RetryLaterError ? [error.cause.retryAfterSeconds] : [],
        );
        return waits.length ? { headers: { 'Retry-After': String(Math.max(...waits)) } } : {};
      },
      onError({ error, path: procedure }) {
        // Only unexpected errors are logged, by procedure name and error class; never the input.
        if (error.code === 'INTERNAL_SERVER_ERROR') {
          app.log.error(
            { procedure, err: { type: error.cause?.name ?? error.name, message: error.cause?.message } },
            'procedure failed',
          );
        }
      },
    } satisfies FastifyTRPCPluginOptions<AppRouter>['trpcOptions']),
    { prefix: '/trpc' },
  );

  const webDir = options.webDir;
  if (webDir && existsSync(path.join(webDir, 'index.html'))) {
    await app.register(fastifyStatic, {
      root: webDir,
      prefix: '/',
      index: ['index.html'],
      // The web build writes `.br` and `.gz` beside each file (packages/web/vite.config.ts): sent with
      // Content-Encoding when the browser accepts one, always with `Vary: Accept-Encoding`.
      preCompressed: true,
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
  }
  const withWebApp = Boolean(webDir && existsSync(path.join(webDir, 'index.html')));
  app.setNotFoundHandler((request, reply) => {
    // Client-side routes fall back to the app shell.
    if (
      withWebApp &&
      request.method === 'GET' &&
      !request.url.startsWith('/trpc') &&
      !request.url.startsWith('/api/') &&
      !path.extname(request.url.split('?')[0] ?? '')
    ) {
      return reply.type('text/html').sendFile('index.html');
    }
    // Fastify's default answer would quote the requested URL back.
    return reply.code(404).send(errorBody(404, 'Not found'));
  });
  return app;
}
