#!/usr/bin/env node
// Runs every test of the repository: core and plugin unit tests, the server suite on PGlite and on
// PostgreSQL, the browser suite in headless Chromium, and the API contract smoke test against a server in
// PostgreSQL's one-URL mode. In CI (CI=true) a missing backend or browser
// is a failure, never a silent skip.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const ci = ['1', 'true'].includes(String(process.env.CI ?? '').toLowerCase());
const env = { ...process.env, TURBO_TELEMETRY_DISABLED: '1' };
const problems = [];

function reachable(host, port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: 1500 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

if (!env.TEST_DATABASE_URL && (await reachable('127.0.0.1', 5432))) {
  env.TEST_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';
  console.log(`PostgreSQL found on 127.0.0.1:5432: the server suite also runs on ${env.TEST_DATABASE_URL}`);
}
if (!env.TEST_DATABASE_URL) {
  problems.push(
    'PostgreSQL: set TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test) to run the server suite on PostgreSQL',
  );
}

const chromium = env.CHROMIUM_PATH || '/usr/bin/chromium';
if (existsSync(chromium)) env.CHROMIUM_PATH = chromium;
else
  problems.push(
    `Chromium: not found at ${chromium}; install it (apt-get install chromium) or set CHROMIUM_PATH`,
  );

// The API contract smoke test (which CI also runs against the README's start command, on the embedded default)
// runs once more in PostgreSQL's one-URL mode: a server given only DATABASE_URL. It lives beside the repository.
const smoke = fileURLToPath(new URL('../../shared/contract/api-smoke.mjs', import.meta.url));
const smokeOneUrl = Boolean(env.TEST_DATABASE_URL) && existsSync(smoke);
if (!existsSync(smoke)) problems.push(`API contract smoke test: not found at ${smoke}`);

if (problems.length) {
  const lines = problems.map((p) => `  - ${p}`).join('\n');
  if (ci || env.LATCHKEY_REQUIRE_ALL_SUITES === '1') {
    console.error(`Required test backends are missing (CI runs every suite, none may be skipped):\n${lines}`);
    process.exit(1);
  }
  console.warn(`\n*** SOME SUITES WILL BE SKIPPED on this machine ***\n${lines}\n`);
  env.LATCHKEY_TEST_ALLOW_SKIP = '1';
}

const run = (args) => spawnSync('pnpm', args, { stdio: 'inherit', env }).status ?? 1;
let status = run(['exec', 'biome', 'check', '.']);
if (status === 0) status = run(['exec', 'turbo', 'run', 'build', '--output-logs=errors-only']);
if (status === 0) status = run(['exec', 'turbo', 'run', 'test', '--concurrency=1']);
if (status === 0 && smokeOneUrl) {
  console.log('\nThe API contract smoke test in the one-URL mode (only DATABASE_URL):');
  const script = fileURLToPath(new URL('./one-url-smoke.mjs', import.meta.url));
  status = spawnSync(process.execPath, [script, smoke], { stdio: 'inherit', env }).status ?? 1;
}
if (status === 0 && problems.length)
  console.warn(`\nPassed, but with suites skipped:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
process.exit(status);
