// The server side of the HTTP-level bench, in a process of its own (forked by run.mjs), so that the load
// generator does not share its event loop. It serves, on 127.0.0.1:
//   - the real product: buildHttpServer (cookies, CSRF checks, session check, tRPC, zod input validation);
//   - the baseline, a bare Fastify app whose routes do the same database work as the procedures: the session
//     check (the product's own statement, with the membership of the workspace the input names; workflows.run:
//     the workflow's workspace) and then the same domain function in the row-level-security scope that check
//     gives (db/scope.ts) — with no tRPC, no zod, no input guard, no cookie plugin and no product hooks.
// Configuration comes in BENCH_CONFIG (JSON); it answers over IPC. It counts the statements it sends (the
// `statements` message reads and resets the count), so run.mjs can report statements per request.
import Fastify from 'fastify';
import { sql } from 'kysely';
import { inScope, masterKeyFrom, openTarget, ownerOf, readProcStatus, server } from './lib.mjs';

const config = JSON.parse(process.env.BENCH_CONFIG);
const counts = { statements: 0, scope: 0 };
const database = await openTarget(config.target, config.experiment, {
  onQuery(text) {
    counts.statements += 1;
    // The driver's own scope statements (set or clear the session's scope); `begin; select set_config…`
    // opens a scoped transaction in the same round trip and is counted as a statement only.
    if (text.startsWith('select set_config(')) counts.scope += 1;
  },
});
const tables = ownerOf(database);
const svc = await server.app.createServices({
  database,
  keyProvider: masterKeyFrom(config.masterKey),
  runnerSettings: server.config.readConfig(process.env).runnerSettings,
});
const actor = { userId: config.userId };
const scope = (workspaceId) => ({ workspaceId, userId: actor.userId });

// Touch the big workspace the way the product does, so the memory figure covers it.
await inScope(scope(config.bigWorkspaceId), async () => {
  await server.secrets.listSecrets(svc, actor, { workspaceId: config.bigWorkspaceId, limit: 50 });
  await server.secrets.selectableSecrets(svc, actor, {
    workspaceId: config.bigWorkspaceId,
    nodeType: 'sendgrid',
  });
});

const product = await server.http.buildHttpServer(svc, { logger: false });
await product.listen({ host: '127.0.0.1', port: 0 });

const bare = Fastify({ logger: false, bodyLimit: 1024 * 1024 });
// The baseline: each bare route checks the session cookie with the product's own statement (callerForSession:
// the session, and membership of the workspace the request names, in one round trip) and then calls the
// domain function in the scope that check gives — the same database work as the procedure, without tRPC, zod,
// the input guard, the cookie plugin or the product's hooks.
const sessionOf = (request) => /(?:^|;\s*)latchkey_session=([^;]+)/.exec(request.headers.cookie ?? '')?.[1];
const checked = (named, fn) => async (request, reply) => {
  const token = sessionOf(request);
  const caller = token ? await server.identity.callerForSession(svc, token, named(request)) : undefined;
  if (!caller) return reply.code(401).send({ error: 'not signed in' });
  const actor = { userId: caller.user.id };
  return inScope({ workspaceId: caller.workspaceId, userId: actor.userId }, () => fn(request, actor));
};
const bodyWorkspace = (request) => ({ workspaceId: request.body.workspaceId });
const queryWorkspace = (request) => ({ workspaceId: request.query.workspaceId });
bare.post(
  '/bare/secrets.create',
  checked(bodyWorkspace, (request, actor) => server.secrets.createSecret(svc, actor, request.body)),
);
bare.get(
  '/bare/secrets.list',
  checked(queryWorkspace, (request, actor) =>
    server.secrets.listSecrets(svc, actor, {
      workspaceId: request.query.workspaceId,
      limit: Number(request.query.limit),
    }),
  ),
);
bare.get(
  '/bare/secrets.selectable',
  checked(queryWorkspace, (request, actor) =>
    server.secrets.selectableSecrets(svc, actor, {
      workspaceId: request.query.workspaceId,
      nodeType: request.query.nodeType,
    }),
  ),
);
bare.post(
  '/bare/secrets.delete',
  checked(bodyWorkspace, (request, actor) => server.secrets.deleteSecret(svc, actor, request.body)),
);
bare.post(
  '/bare/workflows.run',
  checked(
    (request) => ({ workflowId: request.body.workflowId }),
    (request, actor) => server.runner.runWorkflow(svc, actor, request.body),
  ),
);
await bare.listen({ host: '127.0.0.1', port: 0 });

const port = (app) => app.server.address().port;

// The bench went away (crashed, interrupted): do not outlive it.
process.on('disconnect', () => process.exit(1));

process.on('message', async (message) => {
  try {
    if (message.type === 'deletePool') {
      // Secrets for secrets.delete to consume, one per request (never used by a node), made by the database
      // itself so that building them does not weigh on this process's memory; then fresh statistics, as
      // autovacuum would have after a bulk load.
      const { rows } = await sql`
        insert into secrets (id, workspace_id, name, integration_id, node_type, credential_type, public_fields,
                             ciphertext, key_version, created_by, updated_at)
        select gen_random_uuid()::text, ${config.deleteWorkspaceId}, ${`Disposable ${message.label} `} || g,
               'sendgrid', 'sendgrid', 'sendgridApiKey', '{}'::jsonb, decode(repeat('ab', 96), 'hex'), 1,
               ${config.userId}, now()
        from generate_series(1, ${message.count}::integer) g
        returning id`.execute(tables);
      await sql`analyze secrets`.execute(tables);
      process.send({ type: 'deletePool', ids: rows.map((r) => r.id) });
    } else if (message.type === 'statements') {
      process.send({ type: 'statements', ...counts });
      counts.statements = 0;
      counts.scope = 0;
    } else if (message.type === 'memory') {
      process.send({ type: 'memory', ...readProcStatus() });
    } else if (message.type === 'count') {
      const { rows } = await sql`select count(*)::integer as n from secrets`.execute(tables);
      process.send({ type: 'count', n: rows[0].n });
    } else if (message.type === 'close') {
      await product.close();
      await bare.close();
      await database.close();
      process.send({ type: 'closed' });
      process.exit(0);
    }
  } catch (error) {
    process.send({ type: 'error', message: String(error?.stack ?? error) });
  }
});

process.send({
  type: 'ready',
  productUrl: `http://127.0.0.1:${port(product)}`,
  bareUrl: `http://127.0.0.1:${port(bare)}`,
  ...readProcStatus(),
});
