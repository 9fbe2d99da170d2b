/**
 * For the fault tests (src/faults): the BUILT server and CLI as real child processes (so a test can SIGKILL them),
 * how those children reach the database, and a small tRPC-over-HTTP client for a server in another process.
 *
 * Nothing here prints a secret value or a master key.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Kysely, PostgresDialect } from 'kysely';
import type pg from 'pg';
import type { MasterKey } from '../crypto/index.js';
import { loadPg } from '../db/pg-client.js';
import { ensureLoginRole } from '../db/roles.js';
import type { Database } from '../db/schema.js';
import { SESSION_COOKIE } from '../trpc/trpc.js';
import { TEST_LOGIN_ROLE } from './harness.js';

/** Where a server or CLI under test finds its data: a PostgreSQL server and a schema of its own on it. */
export interface ChildDatabase {
  /** The PostgreSQL superuser URL (TEST_DATABASE_URL, or a private cluster's). */
  url: string;
  schema: string;
}

/**
 * THE ONE PLACE that says how a server or CLI under test connects to PostgreSQL (both fault test files use it).
 * The server connects as the restricted test login role (a member of latchkey_app, as production requires) and
 * migrates a schema of its own with the superuser URL as the tables' owner. The tests' own reads and writes go through `openAdminDatabase` as the superuser, whom row-level security does
 * not bind, so they need no change.
 *
 * `applicationName` (PGAPPNAME, which `pg` reads) labels the child's sessions in pg_stat_activity, so a test can
 * watch its statements and wait for its sessions to end.
 */
export async function childDatabaseEnv(
  database: ChildDatabase,
  applicationName: string,
): Promise<NodeJS.ProcessEnv> {
  // The server connects as a restricted login role (row-level security binds it); the owner migrates.
  return {
    DATABASE_URL: await ensureLoginRole(database.url, TEST_LOGIN_ROLE),
    LATCHKEY_OWNER_DATABASE_URL: database.url,
    LATCHKEY_DATABASE_SCHEMA: database.schema,
    PGAPPNAME: applicationName,
  };
}

/** A fresh schema name for one group of fault tests on `url` (the server under test creates it). */
export function newChildDatabase(url: string | undefined): ChildDatabase {
  if (!url) throw new Error('TEST_DATABASE_URL is not set: the fault tests need PostgreSQL');
  return { url, schema: `f_${randomBytes(6).toString('hex')}` };
}

export interface AdminDatabase {
  /** Typed access to the schema, as the superuser (row-level security never hides a row from it). */
  db: Kysely<Database>;
  /** One dedicated connection for polling pg_stat_activity without waiting for the pool. */
  observer: pg.Client;
  /** Drops the schema and closes both connections. */
  drop(): Promise<void>;
}

/** The tests' own connection to a child's schema: seeding in bulk, reading the outcome, watching sessions. */
export async function openAdminDatabase(database: ChildDatabase): Promise<AdminDatabase> {
  const options = `-c search_path=${database.schema}`;
  const pg = await loadPg();
  const pool = new pg.Pool({
    connectionString: database.url,
    max: 2,
    options,
    application_name: 'latchkey-fault-admin',
  });
  pool.on('error', () => {});
  const observer = new pg.Client({
    connectionString: database.url,
    options,
    application_name: 'latchkey-fault-observer',
  });
  await observer.connect();
  await observer.query(`create schema if not exists ${database.schema}`);
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    observer,
    async drop() {
      await db.destroy();
      await observer.query(`drop schema if exists ${database.schema} cascade`);
      await observer.end();
    },
  };
}

export const masterKeyBase64 = (key: MasterKey) => key.key.export().toString('base64');

/**
 * The full environment of a child: nothing inherited from the test runner but PATH (no stray DATABASE_URL or
 * TEST_* variable can change what it connects to).
 */
export async function childEnv(
  database: ChildDatabase,
  applicationName: string,
  keys: { active: MasterKey; previous?: MasterKey[] },
  extra: NodeJS.ProcessEnv = {},
): Promise<NodeJS.ProcessEnv> {
  return {
    PATH: process.env.PATH,
    ...(await childDatabaseEnv(database, applicationName)),
    LATCHKEY_MASTER_KEY: masterKeyBase64(keys.active),
    ...(keys.previous?.length
      ? { LATCHKEY_PREVIOUS_MASTER_KEYS: keys.previous.map(masterKeyBase64).join(',') }
      : {}),
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

/** `dist/<file>` of this package; fails (never skips) with the command to run when the build is missing. */
export function builtEntry(file: 'main.js' | 'cli.js'): string {
  const entry = fileURLToPath(new URL(`../../dist/${file}`, import.meta.url));
  if (!existsSync(entry)) {
    throw new Error(
      `packages/server/dist/${file} is missing: the fault tests run the built server and CLI as real processes. ` +
        'Run `pnpm build` at the repository root first (`pnpm test` does it for you).',
    );
  }
  return entry;
}

export interface ChildRun {
  child: ChildProcess;
  pid: number;
  /** Every line the child wrote (stdout and stderr), in order. */
  lines: string[];
  /** Resolves when the process has ended (exit code, or the signal that ended it). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Whether the process is still running. */
  alive(): boolean;
  /** SIGKILL, by pid; resolves once the process is gone. */
  kill(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM (a clean shutdown), by pid; resolves once the process is gone. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Spawns `node <entry> ...args`; `onLine` sees each output line as it arrives (stdout and stderr). */
export function spawnNode(
  entry: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  onLine?: (line: string) => void,
): ChildRun {
  const child = spawn(process.execPath, [entry, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`could not start ${entry}`);
  const lines: string[] = [];
  let ended = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      ended = true;
      resolve({ code, signal });
    });
  });
  for (const stream of [child.stdout, child.stderr]) {
    let pending = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      pending += chunk;
      const parts = pending.split('\n');
      pending = parts.pop() ?? '';
      for (const line of parts) {
        if (lines.length < 5000) lines.push(line);
        onLine?.(line);
      }
    });
  }
  const pid = child.pid;
  return {
    child,
    pid,
    lines,
    exited,
    alive: () => !ended,
    async kill() {
      if (!ended) process.kill(pid, 'SIGKILL');
      return exited;
    },
    async stop() {
      if (!ended) process.kill(pid, 'SIGTERM');
      return exited;
    },
  };
}

export interface ServerProcess extends ChildRun {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  url: string;
}

/** Starts the built server (`dist/main.js`) and waits for it to say where it listens. */
export async function startServerProcess(env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<ServerProcess> {
  const entry = builtEntry('main.js');
  let announce!: (url: string) => void;
  const announced = new Promise<string>((resolve) => {
    announce = resolve;
  });
  const run = spawnNode(entry, [], { PORT: '0', HOST: '127.0.0.1', ...env }, (line) => {
    const match = /Latchkey listening on (http:\/\/\S+)/.exec(line);
    if (match?.[1]) announce(match[1]);
  });
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    announced,
    run.exited.then(() => 'exited' as const),
    new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  if (outcome === 'exited' || outcome === 'timeout') {
    await run.kill();
    throw new Error(
      `The server (dist/main.js) did not start (${outcome}). Its output:\n${run.lines.slice(-30).join('\n')}`,
    );
  }
  return { ...run, url: outcome.replace(/\/$/, '') };
}

/** One answer of a server in another process, as it came over the wire. */
export interface Answer {
  status: number;
  text: string;
  json: unknown;
}

/** The data of a successful tRPC answer (plain JSON, no transformer), or an error naming the status. */
export function dataOf<T>(answer: Answer): T {
  const body = answer.json as { result?: { data?: T } } | undefined;
  if (answer.status !== 200 || !body?.result) {
    throw new Error(`expected a successful answer, got HTTP ${answer.status}: ${answer.text.slice(0, 300)}`);
  }
  return body.result.data as T;
}

/**
 * A tRPC-over-HTTP client for a server in another process, holding one session cookie like a browser (or
 * starting from a session token made in-process: sessions live in the database).
 */
export class RemoteClient {
  constructor(
    readonly baseUrl: string,
    public sessionToken?: string,
  ) {}

  mutate(procedure: string, input: unknown, timeoutMs = 15_000): Promise<Answer> {
    return this.send(`/trpc/${procedure}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(input ?? null),
      signal: AbortSignal.timeout(timeoutMs),
    });
  }

  query(procedure: string, input: unknown, timeoutMs = 15_000): Promise<Answer> {
    const query = input === undefined ? '' : `?input=${encodeURIComponent(JSON.stringify(input))}`;
    return this.send(`/trpc/${procedure}${query}`, { signal: AbortSignal.timeout(timeoutMs) });
  }

  private async send(path: string, init: RequestInit): Promise<Answer> {
    const headers = new Headers(init.headers);
    if (this.sessionToken)
      headers.set('cookie', `${SESSION_COOKIE}=${encodeURIComponent(this.sessionToken)}`);
    const response = await fetch(`${this.baseUrl}${path}`, { ...init, headers });
    const text = await response.text();
    for (const cookie of response.headers.getSetCookie()) {
      const [pair = ''] = cookie.split(';');
      if (pair.startsWith(`${SESSION_COOKIE}=`)) {
        const value = decodeURIComponent(pair.slice(SESSION_COOKIE.length + 1));
        this.sessionToken = value || undefined;
      }
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, text, json };
  }
}

/** Polls `check` every `intervalMs` until it returns a value (not undefined), or fails after `timeoutMs`. */
export async function pollUntil<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 20_000,
  intervalMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** Resolves once no session labelled `applicationName` is left on the server (a killed child's backends end). */
export async function waitForSessionsToEnd(admin: pg.Client, applicationName: string, timeoutMs = 20_000) {
  await pollUntil(
    `the sessions of ${applicationName} to end`,
    async () => {
      const { rows } = await admin.query<{ n: string }>(
        'select count(*)::text as n from pg_stat_activity where application_name = $1',
        [applicationName],
      );
      return Number(rows[0]?.n) === 0 ? true : undefined;
    },
    timeoutMs,
  );
}

/** A person signed up over HTTP (scrypt at production cost, in the server process), with their personal workspace. */
export async function signUpRemote(baseUrl: string, name: string) {
  const client = new RemoteClient(baseUrl);
  const email = `fault-${randomBytes(4).toString('hex')}@example.test`;
  const { user } = dataOf<{ user: { id: string } }>(
    await client.mutate('auth.signUp', { email, password: 'correct horse battery staple', name }, 30_000),
  );
  const me = dataOf<{ workspaces: { id: string }[] }>(await client.query('auth.me', undefined));
  const workspaceId = me.workspaces[0]?.id;
  if (!workspaceId) throw new Error('sign-up created no personal workspace');
  return { client, userId: user.id, email, workspaceId };
}
