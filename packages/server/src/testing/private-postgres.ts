/**
 * A private PostgreSQL cluster for one test file, for tests that stop, crash and restart the database server
 * (src/faults/pg-restart.test.ts): the shared server on 127.0.0.1:5432 is used by other test files at the same
 * time and must never be touched.
 *
 * Made with the Debian binaries (initdb, pg_ctl) in a temporary directory, listening on 127.0.0.1 only, on a
 * free port, with its Unix socket inside its data directory and fsync on (a crash must behave like a crash).
 * initdb and the server refuse to run as root: as root (CI), every command runs as the `postgres` OS user
 * through `runuser`, in a directory that user owns.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const POSTGRES_BIN_DIR = process.env.LATCHKEY_TEST_PG_BIN_DIR || '/usr/lib/postgresql/15/bin';

export type StopMode = 'smart' | 'fast' | 'immediate';

export interface PrivatePostgres {
  /** Superuser URL of the cluster's `postgres` database (trust authentication, 127.0.0.1 only). */
  url: string;
  port: number;
  dataDir: string;
  /** `pg_ctl stop -m <mode>` (default fast); `immediate` is a crash: no checkpoint, recovery at the next start. */
  stop(mode?: StopMode): Promise<void>;
  /** `pg_ctl start`, waiting until it accepts connections (after crash recovery, if there was a crash). */
  start(): Promise<void>;
  /** The end of the server log, for a failing test's message. */
  logTail(lines?: number): string;
  /** Stops the server (if running) and deletes every file of the cluster. Safe to call more than once. */
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (address && typeof address === 'object' ? resolve(address.port) : reject()));
    });
  });
}

/** uid and gid of the `postgres` OS user, or a message saying why there is none. */
function postgresUser(): { uid: number; gid: number } {
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new Error(
      'Running as root, but there is no `postgres` OS user to run initdb and pg_ctl as (PostgreSQL refuses ' +
        'to run as root). Install the PostgreSQL server package (apt-get install postgresql-15), which creates it.',
    );
  }
}

/** Creates, configures and starts a private cluster. Cleans up everything it made if any step fails. */
export async function startPrivatePostgres(binDir = POSTGRES_BIN_DIR): Promise<PrivatePostgres> {
  for (const tool of ['initdb', 'pg_ctl', 'postgres']) {
    if (!existsSync(path.join(binDir, tool))) {
      throw new Error(
        `${path.join(binDir, tool)} is missing: the PostgreSQL restart test starts a private cluster with the ` +
          'PostgreSQL 15 server binaries (apt-get install postgresql-15, or set LATCHKEY_TEST_PG_BIN_DIR).',
      );
    }
  }
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? postgresUser() : undefined;
  const base = mkdtempSync(path.join(tmpdir(), 'latchkey-pg-'));
  const dataDir = path.join(base, 'data');
  const logFile = path.join(base, 'server.log');
  if (owner) chownSync(base, owner.uid, owner.gid);

  // As root, run the PostgreSQL tools as `postgres`; otherwise as ourselves.
  const command = (tool: string, args: string[]) =>
    owner
      ? { file: 'runuser', args: ['-u', 'postgres', '--', path.join(binDir, tool), ...args] }
      : { file: path.join(binDir, tool), args };
  const pgCtl = async (args: string[], timeoutMs = 60_000) => {
    const { file, args: full } = command('pg_ctl', ['-D', dataDir, ...args]);
    try {
      await run(file, full, { timeout: timeoutMs });
    } catch (error) {
      const output = (error as { stderr?: string; stdout?: string }).stderr || (error as Error).message;
      throw new Error(
        `pg_ctl ${args.join(' ')} failed: ${output.trim()}\n--- server log ---\n${logTail(30)}`,
      );
    }
  };
  const logTail = (lines = 30) => {
    try {
      return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no server log)';
    }
  };

  let running = false;
  let exitGuard: (() => void) | undefined;
  const destroy = async () => {
    if (running) {
      await pgCtl(['stop', '-m', 'immediate', '-w']).catch(() => {});
      running = false;
    }
    if (exitGuard) process.off('exit', exitGuard);
    rmSync(base, { recursive: true, force: true });
  };

  try {
    const init = command('initdb', [
      '-D',
      dataDir,
      '-U',
      'postgres',
      '--auth=trust',
      '--encoding=UTF8',
      '--locale=C',
    ]);
    await run(init.file, init.args, { timeout: 120_000 }).catch(
      (error: { stderr?: string; message: string }) => {
        throw new Error(`initdb failed: ${(error.stderr || error.message).trim()}`);
      },
    );
    let port = 0;
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      // Appended: later settings win, so a retry with another port simply overrides the previous one.
      appendFileSync(
        path.join(dataDir, 'postgresql.conf'),
        [
          '',
          `listen_addresses = '127.0.0.1'`,
          `port = ${port}`,
          `unix_socket_directories = '${dataDir}'`,
          'fsync = on',
          'synchronous_commit = on',
          'full_page_writes = on',
          'max_connections = 50',
          'shared_buffers = 32MB',
          '',
        ].join('\n'),
      );
      try {
        await pgCtl(['start', '-w', '-t', '60', '-l', logFile]);
        break;
      } catch (error) {
        // Another process may have taken the port between our probe and the start.
        if (attempt >= 3) throw error;
      }
    }
    running = true;
    // Should the test process die without cleaning up, do not leave a server running behind it.
    exitGuard = () => {
      const { file, args } = command('pg_ctl', ['-D', dataDir, 'stop', '-m', 'immediate', '-w']);
      spawnSync(file, args, { timeout: 10_000 });
      rmSync(base, { recursive: true, force: true });
    };
    process.on('exit', exitGuard);

    return {
      url: `postgres://postgres@127.0.0.1:${port}/postgres`,
      port,
      dataDir,
      async stop(mode = 'fast') {
        await pgCtl(['stop', '-m', mode, '-w', '-t', '60']);
        running = false;
      },
      async start() {
        await pgCtl(['start', '-w', '-t', '60', '-l', logFile]);
        running = true;
      },
      logTail,
      close: destroy,
    };
  } catch (error) {
    await destroy();
    throw error;
  }
}
