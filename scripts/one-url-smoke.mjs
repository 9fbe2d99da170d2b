#!/usr/bin/env node
// The API contract smoke test (../shared/contract/api-smoke.mjs, what CI runs against the README's start
// command on the embedded default) once more against the built server in PostgreSQL's one-URL mode: only
// DATABASE_URL, the superuser's, on an empty database of its own (created here, dropped afterwards).
// Usage: TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test node scripts/one-url-smoke.mjs [smoke.mjs]
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const smoke = resolve(process.argv[2] ?? join(root, '../shared/contract/api-smoke.mjs'));
const main = join(root, 'packages/server/dist/main.js');
const superuserUrl = process.env.TEST_DATABASE_URL;
if (!superuserUrl) throw new Error('TEST_DATABASE_URL (a PostgreSQL superuser) is required');
for (const [what, path] of [
  ['the API contract smoke test', smoke],
  ['the server build', main],
])
  if (!existsSync(path)) throw new Error(`${what} is missing: ${path}`);

// pg is the server's dependency; the repository root has none of its own.
const pg = createRequire(join(root, 'packages/server/package.json'))('pg');
async function superuser(statement) {
  const client = new pg.Client({ connectionString: superuserUrl });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

const database = `latchkey_smoke_${process.pid}_${randomBytes(3).toString('hex')}`;
const url = new URL(superuserUrl);
url.pathname = `/${database}`;
const dirs = [
  mkdtempSync(join(tmpdir(), 'latchkey-one-url-')),
  mkdtempSync(join(tmpdir(), 'latchkey-one-url-key-')),
];
// Only DATABASE_URL: nothing of another mode may leak in from this environment.
const env = Object.fromEntries(
  Object.entries(process.env).filter(([name]) => name !== 'DATABASE_URL' && !name.startsWith('LATCHKEY_')),
);
Object.assign(env, {
  NODE_ENV: 'test',
  HOST: '127.0.0.1',
  PORT: '0',
  LOG_LEVEL: 'warn',
  DATABASE_URL: url.toString(),
  LATCHKEY_MASTER_KEY: randomBytes(32).toString('base64'),
  LATCHKEY_DATA_DIR: join(dirs[0], 'data'),
  LATCHKEY_KEY_DIR: dirs[1],
});

await superuser(`create database ${database}`);
const child = spawn(process.execPath, [main], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
let output = '';
let status = 1;
try {
  const listening = await new Promise((ready, fail) => {
    const timer = setTimeout(() => fail(new Error(`not listening within 60 s:\n${output}`)), 60_000);
    const read = (chunk) => {
      output += chunk.toString();
      const match = /Latchkey listening on (http:\/\/\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        ready(match[1]);
      }
    };
    child.stdout.on('data', read);
    child.stderr.on('data', read);
    child.once('exit', (code) => fail(new Error(`the server exited with ${code}:\n${output}`)));
  });
  const mode = /^Database mode: .*$/m.exec(output)?.[0] ?? '(no database mode line)';
  console.log(mode);
  if (!mode.startsWith('Database mode: one-URL')) throw new Error(`expected the one-URL mode, got: ${mode}`);
  status = spawnSync(process.execPath, [smoke, listening], { stdio: 'inherit' }).status ?? 1;
} finally {
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((done) => child.once('exit', done));
    child.kill('SIGTERM');
    await exited;
  }
  await superuser(`drop database if exists ${database} with (force)`);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}
process.exit(status);
