import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { Backend } from './environment';

export const webRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const repoRoot = resolve(webRoot, '../..');
const serverMain = join(repoRoot, 'packages/server/dist/main.js');
const webDist = join(webRoot, 'dist');

export interface RunningServer {
  url: string;
  log: () => string;
  stop: () => Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/**
 * Starts the real built server (packages/server/dist/main.js) serving the built app, on a fresh data dir.
 * `env` adds configuration, e.g. LATCHKEY_BASE_URL_SENDGRID pointing at a local fake.
 */
export async function startServer(
  backend: Backend,
  env: Record<string, string> = {},
): Promise<RunningServer> {
  for (const [what, path] of [
    ['the server build', serverMain],
    ['the web build', join(webDist, 'index.html')],
  ] as const)
    if (!existsSync(path))
      throw new Error(
        `${what} is missing (${path}). Build first: cd ${repoRoot} && pnpm exec turbo run build`,
      );

  const dataDir = mkdtempSync(join(tmpdir(), 'latchkey-web-e2e-data-'));
  const keyDir = mkdtempSync(join(tmpdir(), 'latchkey-web-e2e-key-'));
  const port = await freePort();
  let output = '';
  const child: ChildProcess = spawn(process.execPath, [serverMain], {
    cwd: repoRoot,
    env: {
      ...process.env,
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: String(port),
      LATCHKEY_DATA_DIR: join(dataDir, 'data'),
      LATCHKEY_KEY_DIR: keyDir,
      LATCHKEY_WEB_DIR: webDist,
      LOG_LEVEL: 'warn',
      ...env,
      ...backend.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });

  const cleanup = async () => {
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(keyDir, { recursive: true, force: true });
    await dropSchema(backend);
  };
  const exited = new Promise<void>((done) => child.once('exit', () => done()));

  const url = await new Promise<string>((ready, fail) => {
    const timer = setTimeout(
      () => fail(new Error(`the server did not start within 90 s:\n${output.slice(-3000)}`)),
      90_000,
    );
    const check = () => {
      const match = /Latchkey listening on (http:\/\/\S+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        ready(match[1]);
      }
    };
    child.stdout?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`the server exited with code ${code} before listening:\n${output.slice(-3000)}`));
    });
  }).catch(async (error: unknown) => {
    child.kill('SIGKILL');
    await exited;
    await cleanup();
    throw error;
  });

  const health = await fetch(`${url}/healthz`);
  if (health.status !== 200) throw new Error(`GET /healthz answered ${health.status}`);
  // The suite runs in the database mode it was planned for, or it fails saying which one it got.
  const mode = /^Database mode: .*$/m.exec(output)?.[0];
  if (!mode?.startsWith(backend.mode)) {
    child.kill('SIGKILL');
    await exited;
    await cleanup();
    throw new Error(`expected "${backend.mode} …", the server said: ${mode ?? '(no database mode line)'}`);
  }

  return {
    url,
    log: () => output,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(killer);
      }
      await cleanup();
    },
  };
}

/** A PostgreSQL run leaves nothing behind: its fresh schema is dropped once the server has stopped. */
async function dropSchema(backend: Backend): Promise<void> {
  const url = backend.env.LATCHKEY_OWNER_DATABASE_URL ?? backend.env.DATABASE_URL;
  const schema = backend.env.LATCHKEY_DATABASE_SCHEMA;
  if (!url || !schema) return;
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`unexpected schema name ${schema}`);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`drop schema if exists ${schema} cascade`);
  } finally {
    await client.end();
  }
}
