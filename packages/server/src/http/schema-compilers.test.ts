import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestHttpApp } from '../testing/http-harness.js';
import { buildHttpServer } from './server.js';

// Issue 15 (start-up): Fastify's schema compilers are loaded the first time a route declares a schema rather
// than when the server is built; a route that declares one still validates its input and shapes its answer.

let t: Awaited<ReturnType<typeof startTestHttpApp>>;
beforeAll(async () => {
  t = await startTestHttpApp();
});
afterAll(() => t.close());

it('validates and serializes a route declared with a schema', async () => {
  const server = await buildHttpServer(t.app.svc, {});
  server.get(
    '/schema-check',
    {
      schema: {
        querystring: {
          type: 'object',
          required: ['count'],
          properties: { count: { type: 'integer' } },
        },
        response: { 200: { type: 'object', properties: { count: { type: 'integer' } } } },
      },
    },
    async (request) => ({ count: (request.query as { count: number }).count, extra: 'not in the schema' }),
  );
  try {
    expect((await server.inject({ url: '/schema-check?count=many' })).statusCode).toBe(400);
    const good = await server.inject({ url: '/schema-check?count=2' });
    expect(good.statusCode).toBe(200);
    expect(good.json()).toEqual({ count: 2 });
  } finally {
    await server.close();
  }
});
