import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import { Kysely } from 'kysely';
import { PGliteDialect } from 'kysely-pglite-dialect';
import { migrateToLatest, migrations } from './migrations.js';

// A fresh PGlite data directory is never initialized inside the server: initdb grows the process's
// WebAssembly memory to ~800 MB, which never shrinks. It is copied from a template the build made, or made by
// initdb in a short-lived child process (docs/performance.md "Memory and start-up of the embedded default").

const require = createRequire(import.meta.url);
/** PGlite's CommonJS entry (dist/index.cjs), which the child process loads. */
const pgliteEntry = require.resolve('@electric-sql/pglite');
const pgliteVersion: string = JSON.parse(
  readFileSync(path.join(path.dirname(pgliteEntry), '..', 'package.json'), 'utf8'),
).version;

/** Names the migrations a template carries: migrations are never edited once made, only added. */
const migrationsTag = createHash('sha256')
  .update(Object.keys(migrations).join('\n'))
  .digest('hex')
  .slice(0, 12);

/** The server package's directory: the nearest above this file (src/db, dist/db or the bundle in dist/). */
function packageDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

/**
 * Where `pnpm build` puts an initialized and migrated data directory for the installed PGlite version and
 * this set of migrations. The same path from the sources, the compiled modules and the bundle, so tests
 * running the sources use the built template.
 */
export const TEMPLATE_DIR = path.join(
  packageDir(),
  'dist',
  `pglite-template-${pgliteVersion}-${migrationsTag}`,
);

/**
 * PGlite's start parameters plus memory settings for one embedded session (docs/performance.md): PostgreSQL's
 * defaults (shared_buffers 128 MB, room for 100 connections) sit in the server's WebAssembly memory, while the
 * data files are read through the operating system's page cache anyway.
 */
export const PGLITE_START_PARAMS: readonly string[] = [
  ...PGlite.defaultStartParams,
  ...['shared_buffers=16MB', 'max_connections=8', 'autovacuum_worker_slots=1']
    .concat(['max_wal_senders=0', 'max_replication_slots=0'])
    .flatMap((setting) => ['-c', setting]),
];

const INITDB = `const { PGlite } = require(process.argv[1]);
PGlite.create(process.argv[2]).then((db) => db.close()).catch((error) => {
  console.error(error?.message ?? error);
  process.exit(1);
});`;

/** Runs PGlite's initdb into `dir` in a child process (its memory goes when it exits). */
async function initdbInChild(dir: string): Promise<void> {
  await promisify(execFile)(process.execPath, ['-e', INITDB, pgliteEntry, dir]);
}

const isDatabase = (dir: string) => existsSync(path.join(dir, 'PG_VERSION'));

/** Builds `dir` next to it and renames it into place, so a crash half-way leaves no half-made directory. */
async function fill(dir: string, make: (into: string) => Promise<void>): Promise<void> {
  const inPlace = existsSync(dir);
  const staging = inPlace ? dir : `${dir}.initializing-${process.pid}`;
  try {
    await make(staging);
    if (!inPlace) renameSync(staging, dir);
  } catch (error) {
    const leftovers = inPlace ? readdirSync(dir).map((entry) => path.join(dir, entry)) : [staging];
    for (const entry of leftovers) rmSync(entry, { recursive: true, force: true });
    throw error;
  }
}

export type DataDirOrigin = 'existing' | 'template' | 'initdb';

/**
 * Makes `dataDir` a PGlite data directory when it is not one yet: a copy of `templateDir` when the build made
 * one, else initdb in a child process. An existing directory must be empty (e.g. a volume's mount point).
 */
export async function prepareDataDir(dataDir: string, templateDir = TEMPLATE_DIR): Promise<DataDirOrigin> {
  const dir = path.resolve(dataDir);
  if (isDatabase(dir)) return 'existing';
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new Error(
      `LATCHKEY_DATA_DIR ${dir} is not empty and holds no PGlite database (no PG_VERSION): ` +
        'point it at a new or empty directory',
    );
  }
  mkdirSync(path.dirname(dir), { recursive: true });
  const origin = isDatabase(templateDir) ? 'template' : 'initdb';
  await fill(dir, async (into) => {
    if (origin === 'template') cpSync(templateDir, into, { recursive: true });
    else await initdbInChild(into);
  });
  return origin;
}

/**
 * Applies every migration to the database in `dir` (as PGlite's superuser, as the server migrates it): the
 * schema, the `latchkey_app` role, its grants and the row-level-security policies — nothing per installation
 * (no key, no user, no secret: those come with the first start and its first sign-up).
 */
async function migrateDir(dir: string): Promise<void> {
  const client = await PGlite.create({ dataDir: dir, startParams: [...PGLITE_START_PARAMS] });
  const db = new Kysely<unknown>({ dialect: new PGliteDialect(client) });
  try {
    await migrateToLatest(db);
  } finally {
    await db.destroy();
  }
}

/**
 * The build's step (src/pglite-template.ts): the template for this PGlite version and these migrations,
 * unless it exists — initdb in a child process, then the migrations, so a fresh start only copies it. A start
 * still migrates forward what its template lacks (`migrateToLatest` on every start).
 */
export async function writeTemplate(templateDir = TEMPLATE_DIR): Promise<void> {
  if (isDatabase(templateDir)) return;
  const parent = path.dirname(templateDir);
  mkdirSync(parent, { recursive: true });
  for (const entry of readdirSync(parent)) {
    if (entry.startsWith('pglite-template-'))
      rmSync(path.join(parent, entry), { recursive: true, force: true });
  }
  await fill(templateDir, async (into) => {
    await initdbInChild(into);
    await migrateDir(into);
  });
}
