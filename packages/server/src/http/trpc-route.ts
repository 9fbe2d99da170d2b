import type { AnyRouter } from '@trpc/server';
import { type FastifyTRPCPluginOptions, fastifyRequestHandler } from '@trpc/server/adapters/fastify';
import { resolveResponse } from '@trpc/server/http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

type TrpcOptions<TRouter extends AnyRouter> = FastifyTRPCPluginOptions<TRouter>['trpcOptions'];

/**
 * What tRPC's `resolveResponse` reads of a request (`url`, `method`, `headers.get`/`has`, `signal`, `json()`
 * for a POST body), over the Fastify request itself. tRPC's own adapter builds a full fetch `Request` (every
 * header copied into a `Headers`, the body as a stream) for each call, a large share of a request's CPU time
 * (docs/performance.md, "Where an HTTP request's time goes").
 */
function fetchLikeRequest(request: FastifyRequest, url: string, signal: AbortSignal): Request {
  const headers = request.raw.headers;
  const header = (name: string): string | null => {
    const value = headers[name.toLowerCase()];
    if (value === undefined) return null;
    return Array.isArray(value) ? value.join(', ') : value;
  };
  const body = request.body as string | undefined;
  return {
    url,
    method: request.raw.method,
    headers: { get: header, has: (name: string) => header(name) !== null },
    signal,
    json: async () => JSON.parse(body ?? ''),
    text: async () => body ?? '',
  } as unknown as Request;
}

/**
 * The tRPC endpoint (`prefix/:path`), as tRPC's Fastify plugin serves it — the same content-type parsers
 * (JSON and multipart bodies reach tRPC as they came), the same `resolveResponse` (procedures, batching, error
 * shapes, status codes, `responseMeta`, `onError`) — with a lighter request object for GET calls and POST
 * calls with a JSON body, and a JSON answer sent as one buffer with its length instead of piped from a
 * stream. Any other request (another method, a multipart body, a streamed answer) takes tRPC's own handler.
 */
export function trpcRoute<TRouter extends AnyRouter>(trpcOptions: TrpcOptions<TRouter>) {
  return async (app: FastifyInstance) => {
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
      done(null, body);
    });
    app.removeContentTypeParser('multipart/form-data');
    app.addContentTypeParser('multipart/form-data', {}, (_request, body, done) => {
      done(null, body);
    });
    app.all('/:path', async (request: FastifyRequest, reply: FastifyReply) => {
      const path = (request.params as { path: string }).path;
      const method = request.raw.method;
      const url = `http://localhost${request.raw.url ?? '/'}`;
      const light =
        (method === 'GET' || (method === 'POST' && typeof request.body === 'string')) && URL.canParse(url);
      if (!light) {
        await fastifyRequestHandler({ ...trpcOptions, req: request, res: reply, path });
        return;
      }
      // As tRPC's adapter: the call's signal aborts when the client goes away before the answer is sent.
      const abort = new AbortController();
      reply.raw.once('close', () => {
        if (!reply.raw.writableEnded) abort.abort();
      });
      const response = await resolveResponse({
        ...trpcOptions,
        req: fetchLikeRequest(request, url, abort.signal),
        path,
        error: null,
        createContext: async (inner) =>
          trpcOptions.createContext?.({ ...inner, req: request, res: reply } as never),
        onError: (o) => trpcOptions.onError?.({ ...o, req: request }),
      } as Parameters<typeof resolveResponse>[0]);
      if (
        response.headers.get('content-type') !== 'application/json' ||
        response.headers.has('transfer-encoding')
      ) {
        await reply.send(response);
        return;
      }
      reply.code(response.status);
      for (const [name, value] of response.headers) reply.header(name, value);
      // A buffer: Fastify sends it as it is, with the content type tRPC gave (a string would gain a charset).
      await reply.send(Buffer.from(await response.arrayBuffer()));
    });
  };
}
