#!/usr/bin/env node
// Load test (issue 6, item 14; docs/reliability.md): starts the built server on 127.0.0.1 with a fresh
// embedded (PGlite) data directory — and, when DATABASE_URL or TEST_DATABASE_URL is set, again on a fresh
// PostgreSQL schema (that URL is the tables' owner, a superuser; the server connects as a restricted login
// role made from it, as row-level security requires: docs/operations.md "PostgreSQL roles") — then drives it
// with autocannon for a bounded time: 50 connections mixing secrets.list, secrets.selectable, secrets.create,
// secrets.replace, secrets.delete and workflows.run across several workspaces. Checks: zero 5xx, no result from another workspace, server memory (RSS) flat
// after warm-up. Then the flood case (issue 12, item 2): sign-up and sign-in requests from many (forwarded)
// client addresses at once, while one loop loads the start page and another runs a workflow; their p99 before
// and during the flood are reported. Writes the results to docs/reliability.md. Only loopback traffic.
//
//   pnpm load                      # 60 s per backend, then a 20 s flood
//   pnpm load --seconds 20         # shorter
//   node scripts/load.mjs --seconds 10 --backend pglite --no-write
//   node scripts/load.mjs --flood-only --flood-seconds 20 --backend pglite --no-write
//   node scripts/load.mjs --seconds 30 --no-write --node-flags=--optimize-for-size   # V8 flags for the server
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const serverMain = path.join(root, 'packages/server/dist/main.js');
const serverRoles = path.join(root, 'packages/server/dist/db/roles.js');
/** The restricted login role the server connects as on PostgreSQL (the tests' and the bench's too). */
const LOGIN_ROLE = 'latchkey_test_app';
const reliabilityDoc = path.join(root, 'docs/reliability.md');
const webDist = path.join(root, 'packages/web/dist');

const USAGE =
  'Usage: node scripts/load.mjs [--seconds N (60)] [--connections N (50)] [--workspaces N (6)] [--backend auto|pglite|postgres|both] [--flood-seconds N (20)] [--flooders N (10)] [--flood-only] [--no-write] [--node-flags="FLAGS" (for the server process, to measure V8 settings)]';
const BACKENDS = ['auto', 'pglite', 'postgres', 'both'];

/** Node's parser refuses unknown flags and a flag without its value, naming the flag; the values are checked here. */
function readOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      seconds: { type: 'string', default: '60' },
      connections: { type: 'string', default: '50' },
      workspaces: { type: 'string', default: '6' },
      backend: { type: 'string', default: 'auto' },
      'flood-seconds': { type: 'string', default: '20' },
      flooders: { type: 'string', default: '10' },
      'flood-only': { type: 'boolean', default: false },
      'no-write': { type: 'boolean', default: false },
      'node-flags': { type: 'string', default: '' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const count = (flag) => {
    const n = Number(values[flag]);
    if (!Number.isInteger(n) || n < 1 || n > 3600)
      throw new Error(`--${flag} must be a whole number from 1 to 3600`);
    return n;
  };
  if (!BACKENDS.includes(values.backend)) throw new Error('--backend: auto, pglite, postgres or both');
  return {
    seconds: count('seconds'),
    connections: count('connections'),
    workspaces: count('workspaces'),
    backend: values.backend,
    write: !values['no-write'],
    floodSeconds: count('flood-seconds'),
    flooders: count('flooders'),
    floodOnly: values['flood-only'],
    nodeFlags: values['node-flags'].split(' ').filter(Boolean),
  };
}

const freePort = () =>
  new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A tiny loopback service the workflows' HTTP Request nodes call. */
async function startSink() {
  let calls = 0;
  const server = http.createServer((req, res) => {
    calls += 1;
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    calls: () => calls,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

function rssMb(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
    return Number.isFinite(kb) ? kb / 1024 : undefined;
  } catch {
    return undefined;
  }
}

async function startServer(backend, nodeFlags = []) {
  const temp = mkdtempSync(path.join(tmpdir(), 'latchkey-load-'));
  const port = await freePort();
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: 'warn',
    LATCHKEY_DATA_DIR: path.join(temp, 'data'),
    LATCHKEY_KEY_DIR: path.join(temp, 'keys'),
    // The built web app when there is one: the flood case measures the start page.
    LATCHKEY_WEB_DIR: existsSync(path.join(webDist, 'index.html')) ? webDist : path.join(temp, 'no-web'),
    // The flood case sends X-Forwarded-For from many made-up client addresses, as if through a proxy on
    // loopback: the worst case for per-address throttles (a distributed flood).
    LATCHKEY_TRUST_PROXY: '127.0.0.1',
    LATCHKEY_MASTER_KEY: randomBytes(32).toString('base64'),
    // The workflows call the loopback sink above, nothing else.
    LATCHKEY_OUTBOUND_ALLOW: '127.0.0.1',
  };
  let schema;
  if (backend.kind === 'postgres') {
    schema = `load_${randomBytes(5).toString('hex')}`;
    // The server refuses a superuser DATABASE_URL: it connects as a member of latchkey_app, and migrates the
    // schema with the owner's URL.
    const { ensureLoginRole } = await import(pathToFileURL(serverRoles).href);
    env.DATABASE_URL = await ensureLoginRole(backend.url, LOGIN_ROLE);
    env.LATCHKEY_OWNER_DATABASE_URL = backend.url;
    env.LATCHKEY_DATABASE_SCHEMA = schema;
  }
  const child = spawn(process.execPath, [...nodeFlags, serverMain], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d) => {
    output += d;
  });
  child.stderr.on('data', (d) => {
    output += d;
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode}):\n${output}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`the server did not answer /healthz within 60 s:\n${output}`);
    await sleep(200);
  }
  return {
    url,
    pid: child.pid,
    output: () => output,
    async stop() {
      child.kill('SIGTERM');
      const exited = await Promise.race([
        new Promise((resolve) => child.once('exit', () => resolve(true))),
        sleep(15_000).then(() => false),
      ]);
      if (!exited) child.kill('SIGKILL');
      rmSync(temp, { recursive: true, force: true });
      if (schema) {
        const require = createRequire(path.join(root, 'packages/server/package.json'));
        const pg = require('pg');
        const client = new pg.Client({ connectionString: backend.url });
        await client.connect();
        await client.query(`drop schema if exists ${schema} cascade`);
        await client.end();
      }
    },
  };
}

/** JSON call to a tRPC procedure with a session cookie; throws on a non-2xx answer. */
async function call(url, cookie, procedure, input, method = 'POST') {
  const target =
    method === 'GET'
      ? `${url}/trpc/${procedure}?input=${encodeURIComponent(JSON.stringify(input))}`
      : `${url}/trpc/${procedure}`;
  const response = await fetch(target, {
    method,
    headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) },
    ...(method === 'POST' ? { body: JSON.stringify(input) } : {}),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${procedure} answered ${response.status}: ${text.slice(0, 300)}`);
  const setCookie = response.headers.getSetCookie?.()[0];
  return { data: JSON.parse(text).result?.data, cookie: setCookie ? setCookie.split(';')[0] : cookie };
}

/** Workspaces, each with its own user, secrets and a workflow of two HTTP Request nodes calling the sink. */
async function setUp(url, count, sinkUrl) {
  const users = [];
  for (let i = 0; i < count; i++) {
    const tag = `w${i}`;
    const signUp = await call(url, undefined, 'auth.signUp', {
      email: `load-${i}-${randomBytes(3).toString('hex')}@example.test`,
      password: 'load test passphrase',
      name: `Load ${i}`,
    });
    const cookie = signUp.cookie;
    const me = await call(url, cookie, 'auth.me', undefined, 'GET');
    const workspaceId = me.data.workspaces[0].id;
    const secretIds = [];
    for (let k = 0; k < 5; k++) {
      const created = await call(url, cookie, 'secrets.create', {
        workspaceId,
        credentialType: 'httpBearerToken',
        name: `${tag}-base-${k}`,
        data: { token: `fake-load-token-${tag}-${k}`, allowedDomains: '127.0.0.1' },
      });
      secretIds.push(created.data.id);
    }
    const workflow = await call(url, cookie, 'workflows.create', { workspaceId, name: `${tag} flow` });
    for (let n = 0; n < 2; n++) {
      const node = await call(url, cookie, 'workflows.addNode', {
        workflowId: workflow.data.id,
        name: `${tag} call ${n}`,
        nodeType: 'httpRequest',
        params: { method: 'GET', url: `${sinkUrl}/${tag}/${n}` },
      });
      await call(url, cookie, 'workflows.updateNode', {
        workflowId: workflow.data.id,
        nodeId: node.data.id,
        secretId: secretIds[n],
      });
    }
    const check = await call(url, cookie, 'workflows.run', { workflowId: workflow.data.id });
    if (!check.data.ok)
      throw new Error(`the set-up workflow did not run: ${JSON.stringify(check.data).slice(0, 300)}`);
    users.push({ tag, cookie, workspaceId, workflowId: workflow.data.id });
  }
  return users;
}

function mean(values) {
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : 0;
}

async function runBackend(backend, options, sink) {
  console.log(`\n=== ${backend.label}: starting the server`);
  const server = await startServer(backend, options.nodeFlags);
  try {
    const users = await setUp(server.url, options.workspaces, sink.url);
    const summary = options.floodOnly
      ? { backend: backend.label, floodOnly: true, checks: {}, problems: [] }
      : await steadyLoad(backend, options, sink, server, users);
    console.log(`=== ${backend.label}: flood case, ${options.floodSeconds} s, ${options.flooders} flooders`);
    summary.flood = await floodCase(server, users, options);
    console.log(JSON.stringify(summary.flood, null, 2));
    summary.checks['flood: no 5xx'] = summary.flood.fivexx === 0;
    summary.checks['flood: start page and workflow answered'] =
      summary.flood.during.startPage.failed === 0 && summary.flood.during.run.failed === 0;
    return summary;
  } finally {
    await server.stop();
  }
}

/** The steady mixed load: autocannon over the workspaces' secrets and workflows. */
async function steadyLoad(backend, options, sink, server, users) {
  console.log(
    `=== ${backend.label}: ${users.length} workspaces ready; ${options.seconds} s at ${options.connections} connections`,
  );
  const stats = {
    kinds: { list: 0, selectable: 0, create: 0, replace: 0, delete: 0, run: 0 },
    crossWorkspace: 0,
    crossWorkspaceExamples: [],
    runsOk: 0,
    runsFailed: 0,
    unexpected: [],
  };
  let nextUser = 0;
  let counter = 0;
  const enc = (value) => encodeURIComponent(JSON.stringify(value));
  const json = (body) => {
    try {
      return JSON.parse(body);
    } catch {
      return undefined;
    }
  };
  const record = (kind, status, body) => {
    stats.kinds[kind] += 1;
    if (status >= 500 && stats.unexpected.length < 5)
      stats.unexpected.push(`${kind} ${status} ${body.slice(0, 200)}`);
  };
  const checkNames = (context, names) => {
    for (const name of names) {
      if (!name.startsWith(`${context.user.tag}-`)) {
        stats.crossWorkspace += 1;
        if (stats.crossWorkspaceExamples.length < 5)
          stats.crossWorkspaceExamples.push(`${context.user.tag} saw ${name}`);
      }
    }
  };
  const headersFor = (context) => ({ 'content-type': 'application/json', cookie: context.user.cookie });
  const requests = [
    {
      method: 'GET',
      setupRequest(req, context) {
        context.user = users[nextUser++ % users.length];
        return {
          ...req,
          method: 'GET',
          path: `/trpc/secrets.list?input=${enc({ workspaceId: context.user.workspaceId })}`,
          headers: headersFor(context),
        };
      },
      onResponse(status, body, context) {
        record('list', status, body);
        if (status === 200) checkNames(context, json(body)?.result?.data?.items?.map((s) => s.name) ?? []);
      },
    },
    {
      method: 'GET',
      setupRequest(req, context) {
        return {
          ...req,
          method: 'GET',
          path: `/trpc/secrets.selectable?input=${enc({ workspaceId: context.user.workspaceId, nodeType: 'httpRequest' })}`,
          headers: headersFor(context),
        };
      },
      onResponse(status, body, context) {
        record('selectable', status, body);
        if (status === 200) checkNames(context, json(body)?.result?.data?.map((s) => s.name) ?? []);
      },
    },
    {
      method: 'POST',
      setupRequest(req, context) {
        counter += 1;
        return {
          ...req,
          method: 'POST',
          path: '/trpc/secrets.create',
          headers: headersFor(context),
          body: JSON.stringify({
            workspaceId: context.user.workspaceId,
            credentialType: 'httpBearerToken',
            name: `${context.user.tag}-load-${counter}`,
            data: {
              token: `fake-load-${counter}-${randomBytes(4).toString('hex')}`,
              allowedDomains: '127.0.0.1',
            },
          }),
        };
      },
      onResponse(status, body, context) {
        record('create', status, body);
        const created = status === 200 ? json(body)?.result?.data : undefined;
        if (created) {
          context.created = created.id;
          checkNames(context, [created.name]);
        }
      },
    },
    {
      method: 'POST',
      setupRequest(req, context) {
        return {
          ...req,
          method: 'POST',
          path: '/trpc/secrets.replace',
          headers: headersFor(context),
          body: JSON.stringify({
            workspaceId: context.user.workspaceId,
            secretId: context.created ?? 'missing',
            data: { token: `fake-replaced-${randomBytes(4).toString('hex')}` },
          }),
        };
      },
      onResponse(status, body, context) {
        record('replace', status, body);
        const replaced = status === 200 ? json(body)?.result?.data : undefined;
        if (replaced) checkNames(context, [replaced.name]);
      },
    },
    {
      method: 'POST',
      setupRequest(req, context) {
        return {
          ...req,
          method: 'POST',
          path: '/trpc/secrets.delete',
          headers: headersFor(context),
          body: JSON.stringify({
            workspaceId: context.user.workspaceId,
            secretId: context.created ?? 'missing',
          }),
        };
      },
      onResponse(status, body) {
        record('delete', status, body);
      },
    },
    {
      method: 'POST',
      setupRequest(req, context) {
        return {
          ...req,
          method: 'POST',
          path: '/trpc/workflows.run',
          headers: headersFor(context),
          body: JSON.stringify({ workflowId: context.user.workflowId }),
        };
      },
      onResponse(status, body) {
        record('run', status, body);
        if (status === 200) {
          if (json(body)?.result?.data?.ok) stats.runsOk += 1;
          else stats.runsFailed += 1;
        }
      },
    },
  ];

  const sinkBefore = sink.calls();
  const samples = [];
  const started = Date.now();
  const sampler = setInterval(() => {
    const rss = rssMb(server.pid);
    if (rss !== undefined) samples.push({ t: (Date.now() - started) / 1000, rss });
  }, 1000);
  const result = await autocannon({
    url: server.url,
    connections: options.connections,
    duration: options.seconds,
    timeout: 30,
    requests,
  });
  clearInterval(sampler);

  // Memory: the samples after warm-up (the first 25 %, at least 5 s), first third against last third.
  const warmup = Math.max(5, options.seconds * 0.25);
  const steady = samples.filter((s) => s.t >= warmup).map((s) => s.rss);
  const third = Math.max(1, Math.floor(steady.length / 3));
  const early = mean(steady.slice(0, third));
  const late = mean(steady.slice(-third));
  const growth = late - early;
  const memoryFlat = steady.length >= 3 ? growth <= Math.max(30, early * 0.15) : true;

  // After the load: each workspace still lists only its own secrets.
  for (const user of users) {
    const list = await call(
      server.url,
      user.cookie,
      'secrets.list',
      { workspaceId: user.workspaceId, limit: 100 },
      'GET',
    );
    for (const item of list.data.items) {
      if (!item.name.startsWith(`${user.tag}-`)) stats.crossWorkspace += 1;
    }
  }

  const fivexx = result['5xx'];
  const checks = {
    'zero 5xx': fivexx === 0,
    'no cross-workspace result': stats.crossWorkspace === 0,
    'memory flat after warm-up': memoryFlat,
    'requests answered': result.requests.total > 0 && result.errors === 0 && result.timeouts === 0,
  };
  const summary = {
    backend: backend.label,
    seconds: options.seconds,
    connections: options.connections,
    workspaces: users.length,
    requests: result.requests.total,
    perSecond: Math.round(result.requests.average),
    latency: {
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      max: result.latency.max,
    },
    status: {
      '2xx': result['2xx'],
      '4xx': result['4xx'],
      '5xx': fivexx,
      errors: result.errors,
      timeouts: result.timeouts,
    },
    kinds: stats.kinds,
    runs: { ok: stats.runsOk, failed: stats.runsFailed },
    sinkCalls: sink.calls() - sinkBefore,
    crossWorkspace: stats.crossWorkspace,
    memory: {
      start: Math.round(samples[0]?.rss ?? 0),
      afterWarmup: Math.round(early),
      end: Math.round(late),
      max: Math.round(Math.max(...samples.map((s) => s.rss))),
      growth: Math.round(growth),
      samples: samples.length,
    },
    checks,
    problems: [...stats.unexpected, ...stats.crossWorkspaceExamples],
  };
  console.log(JSON.stringify(summary, null, 2));
  return summary;
}

function percentile(sorted, p) {
  if (!sorted.length) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Percentiles over every request, failed ones (timeouts, non-200 answers) included at the time they took. */
function latencySummary(samples) {
  const ms = samples.map((x) => x.ms).sort((a, b) => a - b);
  const round = (v) => (v === undefined ? undefined : Math.round(v));
  return {
    count: samples.length,
    failed: samples.filter((x) => !x.ok).length,
    p50: round(percentile(ms, 50)),
    p99: round(percentile(ms, 99)),
    max: round(ms.at(-1)),
  };
}

/** A made-up client address per request (TEST-NET and benchmarking ranges; only ever a header value). */
function floodAddress(i) {
  return `198.18.${(i >> 8) & 255}.${i & 255}`;
}

/**
 * The flood case: `flooders` loops send auth.signUp and auth.signIn (unknown emails, and a known one with a
 * wrong password) as fast as they are answered, each from a new forwarded address, for `floodSeconds`; one loop
 * loads the start page and one runs a workflow, one request at a time, before (baseline) and during the flood.
 * Every loop stops at its deadline; every request has a 30 s timeout.
 */
async function floodCase(server, users, options) {
  const user = users[0];
  const timed = async (request) => {
    const started = performance.now();
    try {
      const response = await request();
      const ok = response.status === 200;
      await response.arrayBuffer();
      return { ok, ms: performance.now() - started, status: response.status };
    } catch {
      return { ok: false, ms: performance.now() - started, status: 0 };
    }
  };
  const startPage = () => fetch(`${server.url}/`, { signal: AbortSignal.timeout(30_000) });
  const run = () =>
    fetch(`${server.url}/trpc/workflows.run`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', cookie: user.cookie },
      body: JSON.stringify({ workflowId: user.workflowId }),
      signal: AbortSignal.timeout(30_000),
    });
  const measure = async (seconds) => {
    const deadline = Date.now() + seconds * 1000;
    const pages = [];
    const runs = [];
    await Promise.all([
      (async () => {
        while (Date.now() < deadline) pages.push(await timed(startPage));
      })(),
      (async () => {
        while (Date.now() < deadline) runs.push(await timed(run));
      })(),
    ]);
    return { startPage: latencySummary(pages), run: latencySummary(runs) };
  };

  const baselineSeconds = Math.max(5, Math.round(options.floodSeconds / 2));
  const baseline = await measure(baselineSeconds);

  const answers = { signUp: {}, signIn: {} };
  let busy = 0;
  let fivexx = 0;
  let sent = 0;
  const knownEmail = `load-flood-known-${randomBytes(3).toString('hex')}@example.test`;
  await call(server.url, undefined, 'auth.signUp', {
    email: knownEmail,
    password: 'load test passphrase',
    name: 'Flood target',
  });
  const deadline = Date.now() + options.floodSeconds * 1000;
  const flooder = async (index) => {
    while (Date.now() < deadline) {
      sent += 1;
      const n = sent;
      const kind = n % 2 === 0 ? 'signUp' : 'signIn';
      const input =
        kind === 'signUp'
          ? {
              email: `flood-${n}-${randomBytes(3).toString('hex')}@example.test`,
              password: 'flood passphrase 1',
              name: 'Flood',
            }
          : { email: n % 3 === 0 ? knownEmail : `nobody-${n}@example.test`, password: `wrong guess ${n}` };
      try {
        const response = await fetch(`${server.url}/trpc/auth.${kind}`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-forwarded-for': floodAddress(index * 100_000 + n),
          },
          body: JSON.stringify(input),
          signal: AbortSignal.timeout(30_000),
        });
        const text = await response.text();
        answers[kind][response.status] = (answers[kind][response.status] ?? 0) + 1;
        if (response.status >= 500) fivexx += 1;
        if (response.status === 429 && text.includes('busy checking other passwords')) busy += 1;
      } catch (error) {
        const name = `error ${error.cause?.code ?? error.name}`;
        answers[kind][name] = (answers[kind][name] ?? 0) + 1;
      }
    }
  };
  const [during] = await Promise.all([
    measure(options.floodSeconds),
    ...Array.from({ length: options.flooders }, (_, i) => flooder(i)),
  ]);
  return {
    seconds: options.floodSeconds,
    baselineSeconds,
    flooders: options.flooders,
    requests: sent,
    answers,
    refusedBusy: busy,
    fivexx,
    baseline,
    during,
  };
}

function floodMarkdown(f) {
  const answers = (a) =>
    Object.entries(a)
      .map(([status, count]) => `${status} × ${count}`)
      .join(', ') || '—';
  const row = (name, m) =>
    `| ${name} | ${m.count} (${m.failed} failed) | ${m.p50 ?? '—'} / ${m.p99 ?? '—'} / ${m.max ?? '—'} ms |`;
  return [
    `Flood case: ${f.flooders} loops for ${f.seconds} s sent ${f.requests} sign-up/sign-in requests, each from a new forwarded address (sign-up: ${answers(f.answers.signUp)}; sign-in: ${answers(f.answers.signIn)}; refused because the hashing queue was full: ${f.refusedBusy}; 5xx: ${f.fivexx}).`,
    '',
    '| measured one request at a time | requests (failed: timeout after 30 s or not 200) | p50 / p99 / max (failed ones included) |',
    '|---|---|---|',
    row(`start page \`GET /\`, before the flood (${f.baselineSeconds} s)`, f.baseline.startPage),
    row('start page `GET /`, during the flood', f.during.startPage),
    row(`\`workflows.run\`, before the flood (${f.baselineSeconds} s)`, f.baseline.run),
    row('`workflows.run`, during the flood', f.during.run),
    '',
  ].join('\n');
}

function markdown(summaries, command, startedAt) {
  const lines = [];
  lines.push(
    `Last run: ${startedAt.toISOString()} on Node ${process.version}, ${process.platform}/${process.arch}.`,
  );
  lines.push('');
  lines.push(`Command: \`${command}\``);
  lines.push('');
  for (const s of summaries) {
    const passed = Object.values(s.checks).every(Boolean);
    lines.push(`### ${s.backend} — ${passed ? 'PASSED' : 'FAILED'}`);
    lines.push('');
    if (s.floodOnly) {
      lines.push(floodMarkdown(s.flood));
      lines.push(
        `Checks: ${Object.entries(s.checks)
          .map(([name, ok]) => `${ok ? '✓' : '✗'} ${name}`)
          .join('; ')}.`,
      );
      lines.push('');
      continue;
    }
    lines.push('| measure | value |');
    lines.push('|---|---|');
    lines.push(`| duration, connections, workspaces | ${s.seconds} s, ${s.connections}, ${s.workspaces} |`);
    lines.push(`| requests (per second) | ${s.requests} (${s.perSecond}/s) |`);
    lines.push(
      `| by kind | list ${s.kinds.list}, selectable ${s.kinds.selectable}, create ${s.kinds.create}, replace ${s.kinds.replace}, delete ${s.kinds.delete}, run ${s.kinds.run} |`,
    );
    lines.push(
      `| answers | 2xx ${s.status['2xx']}, 4xx ${s.status['4xx']}, **5xx ${s.status['5xx']}**, connection errors ${s.status.errors}, timeouts ${s.status.timeouts} |`,
    );
    lines.push(
      `| latency p50 / p90 / p99 / max | ${s.latency.p50} / ${s.latency.p90} / ${s.latency.p99} / ${s.latency.max} ms |`,
    );
    lines.push(
      `| workflow runs ok / failed (loopback sink calls) | ${s.runs.ok} / ${s.runs.failed} (${s.sinkCalls}) |`,
    );
    lines.push(`| results from another workspace | **${s.crossWorkspace}** |`);
    lines.push(
      `| server RSS: start, after warm-up, end, max (growth) | ${s.memory.start}, ${s.memory.afterWarmup}, ${s.memory.end}, ${s.memory.max} MB (${s.memory.growth >= 0 ? '+' : ''}${s.memory.growth} MB, ${s.memory.samples} samples) |`,
    );
    lines.push(
      `| checks | ${Object.entries(s.checks)
        .map(([name, ok]) => `${ok ? '✓' : '✗'} ${name}`)
        .join('; ')} |`,
    );
    lines.push('');
    if (s.flood) lines.push(floodMarkdown(s.flood));
    if (s.problems.length) {
      lines.push('Problems seen:');
      for (const p of s.problems) lines.push(`- \`${p.replace(/`/g, "'")}\``);
      lines.push('');
    }
  }
  return lines.join('\n');
}

function writeResults(text) {
  const start = '<!-- load-results:start -->';
  const end = '<!-- load-results:end -->';
  const current = existsSync(reliabilityDoc)
    ? readFileSync(reliabilityDoc, 'utf8')
    : `# Reliability\n\n${start}\n${end}\n`;
  const from = current.indexOf(start);
  const to = current.indexOf(end);
  const next =
    from >= 0 && to > from
      ? `${current.slice(0, from + start.length)}\n${text}\n${current.slice(to)}`
      : `${current.trimEnd()}\n\n## Latest load test results\n\n${start}\n${text}\n${end}\n`;
  writeFileSync(reliabilityDoc, next);
}

async function main() {
  const options = readOptions(process.argv.slice(2));
  if (!existsSync(serverMain)) {
    throw new Error('packages/server/dist/main.js is missing: run `pnpm build` first (`pnpm load` does).');
  }
  const pgUrl = process.env.DATABASE_URL || process.env.TEST_DATABASE_URL;
  const backends = [];
  if (options.backend !== 'postgres') backends.push({ kind: 'pglite', label: 'PGlite (embedded)' });
  if (options.backend === 'postgres' || options.backend === 'both' || (options.backend === 'auto' && pgUrl)) {
    if (!pgUrl) throw new Error('--backend postgres needs DATABASE_URL or TEST_DATABASE_URL');
    backends.push({ kind: 'postgres', label: 'PostgreSQL', url: pgUrl });
  }
  const startedAt = new Date();
  const sink = await startSink();
  const summaries = [];
  try {
    for (const backend of backends) summaries.push(await runBackend(backend, options, sink));
  } finally {
    await sink.close();
  }
  const args = process.argv.slice(2).join(' ');
  const base =
    process.env.npm_lifecycle_event === 'load' ? `pnpm load ${args}` : `node scripts/load.mjs ${args}`;
  let envPrefix = '';
  if (backends.some((b) => b.kind === 'postgres')) {
    const name = process.env.DATABASE_URL ? 'DATABASE_URL' : 'TEST_DATABASE_URL';
    const shown = new URL(pgUrl);
    if (shown.password) shown.password = '***';
    envPrefix = `${name}=${shown.toString()} `;
  }
  const text = markdown(summaries, `${envPrefix}${base}`.trim(), startedAt);
  if (options.write) {
    writeResults(text);
    console.log(`\nResults written to ${path.relative(root, reliabilityDoc)}`);
  }
  const failed = summaries.filter((s) => !Object.values(s.checks).every(Boolean));
  for (const s of summaries) {
    console.log(
      `${s.backend}: ${Object.entries(s.checks)
        .map(([name, ok]) => `${ok ? 'ok' : 'FAILED'} ${name}`)
        .join(', ')}`,
    );
  }
  process.exitCode = failed.length ? 1 : 0;
}

main().catch((error) => {
  console.error(`load test failed: ${error.message}`);
  process.exitCode = 1;
});
