#!/usr/bin/env node
// `node packages/server/bench/profile-summary.mjs DIR` — the per-request breakdown of a `pnpm bench
// --profile=DIR` run (docs/performance.md, "Where an HTTP request's time goes"). run.mjs writes, per backend,
// the measured HTTP runs' times on the profile's clock (`windows-BACKEND.json`, with the server's pid); this
// reads the server's V8 CPU profile (`CPU.*.<pid>.*.cpuprofile`), takes the samples inside each run, and
// reports CPU microseconds per completed request by group, for the procedure and its bare route.
//
// A sample is charged to the function it was in (self time); a sample in native code or in Node's own
// modules (JSON.parse, a socket write, AsyncLocalStorage) is charged to the nearest caller in a package of
// ours or a dependency, so a write the database driver asks for counts as database, one Fastify asks for as
// framework. What no such caller claims stays "Node (http, net, streams)".
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const GROUPS = [
  ['logging', /\/(pino|pino-std-serializers|sonic-boom|thread-stream|abstract-logging)\//],
  ['validation', /\/(zod)\/|\/dist\/trpc\/input-guard\.js$|\/dist\/trpc\/inputs\.js$/],
  ['scope', /\/dist\/db\/scope\.js$|^node:async_hooks$|async_context_frame/],
  [
    'database',
    /\/(pg|pg-protocol|pg-pool|pg-types|pg-connection-string|postgres-array|postgres-date|postgres-interval|postgres-bytea|@electric-sql\/pglite|kysely|kysely-pglite-dialect)\/|\/dist\/db\/connect\.js$/,
  ],
  [
    'framework',
    /\/(fastify|@fastify\/[^/]+|find-my-way|avvio|light-my-request|@trpc\/server|cookie|fast-querystring|fast-decode-uri-component|ipaddr\.js|toad-cache|safe-regex2|rfdc|content-type|process-warning|fast-json-stringify)\/|\/dist\/(http\/server|trpc\/trpc|trpc\/router|trpc\/routers\/[^/]+)\.js$/,
  ],
  ['bare route', /\/bench\/http-server\.mjs$/],
  ['domain (secrets, runner, crypto)', /\/packages\/(server\/dist|core|integrations)\//],
];
const ORDER = [
  'framework',
  'validation',
  'logging',
  'scope',
  'database',
  'domain (secrets, runner, crypto)',
  'bare route',
  'Node (http, net, streams)',
  'GC',
  'V8 (program)',
];

function groupOf(url) {
  for (const [name, pattern] of GROUPS) if (pattern.test(url)) return name;
  return undefined;
}

function summarise(profile) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const cache = new Map();
  const groupOfNode = (id) => {
    if (cache.has(id)) return cache.get(id);
    const { callFrame } = byId.get(id);
    let group;
    if (callFrame.functionName === '(garbage collector)') group = 'GC';
    else if (callFrame.functionName === '(program)') group = 'V8 (program)';
    else if (callFrame.functionName === '(idle)') group = 'idle';
    else group = groupOf(callFrame.url);
    if (group === undefined) {
      const up = parent.get(id);
      group = up === undefined ? 'Node (http, net, streams)' : groupOfNode(up);
      if (group === 'idle' || group === 'V8 (program)' || group === 'GC') group = 'Node (http, net, streams)';
    }
    cache.set(id, group);
    return group;
  };
  // Sample i was taken at startTime + timeDeltas[0..i]; it stands for the time until the next one.
  const samples = [];
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    const next = profile.timeDeltas[i + 1] ?? 0;
    samples.push({ at: t, us: next, group: groupOfNode(profile.samples[i]) });
  }
  return samples;
}

const dir = process.argv[2];
if (!dir) {
  console.error(
    'Usage: node packages/server/bench/profile-summary.mjs DIR (the --profile=DIR of a bench run)',
  );
  process.exit(2);
}
const files = readdirSync(dir);
for (const windowsFile of files.filter((f) => /^windows-.*\.json$/.test(f)).sort()) {
  const { pid, windows } = JSON.parse(readFileSync(path.join(dir, windowsFile), 'utf8'));
  const profileFile = files.find((f) => f.endsWith('.cpuprofile') && f.includes(`.${pid}.`));
  if (!profileFile) {
    console.error(`${windowsFile}: no CPU profile of process ${pid} in ${dir}`);
    continue;
  }
  const samples = summarise(JSON.parse(readFileSync(path.join(dir, profileFile), 'utf8')));
  const backend = windowsFile.replace(/^windows-|\.json$/g, '');
  console.log(`\n### ${backend} (${profileFile})\n`);
  console.log(
    `| run | requests | CPU µs/request | ${ORDER.join(' | ')} | idle |\n|${'---|'.repeat(ORDER.length + 4)}`,
  );
  for (const w of windows) {
    const totals = Object.fromEntries([...ORDER, 'idle'].map((g) => [g, 0]));
    for (const s of samples) if (s.at >= w.startUs && s.at < w.endUs) totals[s.group] += s.us;
    const busy = ORDER.reduce((sum, g) => sum + totals[g], 0);
    const per = (us) => (us / Math.max(1, w.requests)).toFixed(0);
    console.log(
      `| ${w.name}, ${w.connections} conn, ${w.which === 'bare' ? 'bare' : 'procedure'} | ${w.requests} | ${per(busy)} | ${ORDER.map((g) => `${per(totals[g])} (${((100 * totals[g]) / Math.max(1, busy)).toFixed(0)} %)`).join(' | ')} | ${((100 * totals.idle) / Math.max(1, busy + totals.idle)).toFixed(0)} % |`,
    );
  }
}
