/**
 * `latchkey import n8n --workspace ID --as EMAIL --file EXPORT [--n8n-key-file P | --n8n-key-env V] [--dry-run]`
 * (docs/import.md): an n8n credentials export into a workspace, created by a member, as `secrets.create` would.
 *
 * The file is checked and read whole (size first, from `stat`), decrypted and mapped before the database is
 * opened, so a file that cannot be read writes nothing. The n8n key is read from a file or a variable, never from
 * the command line (it would stay in the shell's history and in `ps`), and is never printed.
 */
import { readFileSync, statSync } from 'node:fs';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { plural } from '@latchkey/core/words';
import { createServices } from '../app.js';
import type { Config } from '../config.js';
import type { LocalKeyProvider } from '../crypto/index.js';
import { type DatabaseHandle, databaseTarget, openDatabase } from '../db/connect.js';
import { withDbScope } from '../db/scope.js';
import { NotFoundError } from '../errors.js';
import {
  type ImportReport,
  type ImportRow,
  importN8n,
  N8N_EXPORT_MAX_BYTES,
  N8nExportError,
  parseN8nExport,
} from '../import/n8n.js';

export const IMPORT_USAGE = `  import n8n --workspace ID --as EMAIL --file EXPORT.json [--n8n-key-file PATH | --n8n-key-env VAR] [--dry-run]
      Imports an n8n credentials export (n8n export:credentials --all [--decrypted]) into a workspace, each
      credential created by the member with that email, validated and encrypted like one saved in the app.
      An encrypted export needs the n8n instance's encryption key, read from a file or an environment
      variable (never printed). Prints what was imported and what was skipped, and why; --dry-run writes
      nothing. Running it again imports nothing twice. Exits 0 when every credential of a supported type is
      in the workspace, 1 otherwise. See docs/import.md.`;

export class ImportUsageError extends Error {}

const FLAGS = {
  workspace: { type: 'string' },
  as: { type: 'string' },
  file: { type: 'string' },
  'n8n-key-file': { type: 'string' },
  'n8n-key-env': { type: 'string' },
  'dry-run': { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

interface Flags {
  workspace: string;
  as: string;
  file: string;
  keyFile?: string;
  keyEnv?: string;
  dryRun: boolean;
}

function parseImportFlags(args: string[]): Flags {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args, options: FLAGS, strict: true, allowPositionals: false }));
  } catch (error) {
    // Never echoed: a stray argument may be something pasted by mistake (a key).
    const code = (error as { code?: unknown }).code;
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL' || code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      throw new ImportUsageError(
        'import n8n takes only --workspace, --as, --file, --n8n-key-file, --n8n-key-env and --dry-run',
      );
    }
    throw new ImportUsageError(
      'import n8n: every flag but --dry-run needs a value (--workspace ID --as EMAIL --file PATH)',
    );
  }
  const text = (name: keyof typeof FLAGS) => {
    const value = values[name];
    if (value === '') throw new ImportUsageError(`--${name} needs a value`);
    return typeof value === 'string' ? value : undefined;
  };
  const workspace = text('workspace');
  const as = text('as');
  const file = text('file');
  for (const [name, value] of [
    ['workspace', workspace],
    ['as', as],
    ['file', file],
  ] as const) {
    if (value === undefined) throw new ImportUsageError(`import n8n needs --${name}`);
  }
  const keyFile = text('n8n-key-file');
  const keyEnv = text('n8n-key-env');
  if (keyFile !== undefined && keyEnv !== undefined) {
    throw new ImportUsageError('Give the n8n key with either --n8n-key-file or --n8n-key-env, not both');
  }
  return {
    workspace: workspace as string,
    as: as as string,
    file: file as string,
    ...(keyFile === undefined ? {} : { keyFile }),
    ...(keyEnv === undefined ? {} : { keyEnv }),
    dryRun: values['dry-run'] === true,
  };
}

/** A refusal that writes nothing: the message says why; exit code 1. */
export class ImportRefused extends Error {}

/** The n8n key from its file or variable (trimmed: a key file usually ends with a newline). Never printed. */
function n8nKey(flags: Flags, env: NodeJS.ProcessEnv): string | undefined {
  if (flags.keyFile !== undefined) {
    let key: string;
    try {
      key = readFileSync(flags.keyFile, 'utf8').trim();
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      throw new ImportRefused(`Cannot read the n8n key file ${flags.keyFile}${code ? ` (${code})` : ''}`);
    }
    if (!key) throw new ImportRefused(`The n8n key file ${flags.keyFile} is empty`);
    return key;
  }
  if (flags.keyEnv !== undefined) {
    const key = env[flags.keyEnv]?.trim();
    if (!key) throw new ImportRefused(`The environment variable ${flags.keyEnv} (--n8n-key-env) is not set`);
    return key;
  }
  return undefined;
}

/** The export file's text: refused before it is read when it is not a file or larger than the limit. */
function exportText(file: string): string {
  let size: number;
  try {
    const stat = statSync(file);
    if (!stat.isFile()) throw new ImportRefused(`${file} is not a file`);
    size = stat.size;
  } catch (error) {
    if (error instanceof ImportRefused) throw error;
    const code = (error as { code?: unknown }).code;
    throw new ImportRefused(`Cannot read ${file}${code ? ` (${code})` : ''}`);
  }
  if (size > N8N_EXPORT_MAX_BYTES) {
    throw new ImportRefused(
      `${file} is ${megabytes(size)}; an n8n credentials export is read up to ${megabytes(N8N_EXPORT_MAX_BYTES)}. Nothing was imported`,
    );
  }
  return readFileSync(file, 'utf8');
}

const megabytes = (bytes: number) => `${(bytes / (1024 * 1024)).toFixed(bytes < 1024 * 1024 ? 2 : 1)} MB`;

interface ImportIo {
  env: NodeJS.ProcessEnv;
  out(line: string): void;
  err(line: string): void;
  database?: DatabaseHandle;
  keyProvider?: LocalKeyProvider;
}

/** `latchkey import n8n …`; returns the exit code. */
export async function importCommand(
  args: string[],
  io: ImportIo,
  open: {
    config: (env: NodeJS.ProcessEnv) => Config;
    provider: (config: Config) => LocalKeyProvider;
    requireEmbeddedStore: (config: Config) => void;
  },
): Promise<number> {
  const flags = parseImportFlags(args);
  // Everything about the file first: a file that cannot be imported whole opens no database and writes nothing.
  const key = n8nKey(flags, io.env);
  let credentials: ReturnType<typeof parseN8nExport>;
  try {
    credentials = parseN8nExport(exportText(flags.file), key);
  } catch (error) {
    if (error instanceof N8nExportError) {
      const hint =
        error.code === 'key-needed'
          ? ': give it with --n8n-key-file PATH or --n8n-key-env VAR (N8N_ENCRYPTION_KEY, or encryptionKey in ~/.n8n/config). Nothing was imported'
          : '';
      throw new ImportRefused(`${error.message}${hint}`);
    }
    throw error;
  }
  const config = open.config(io.env);
  const provider = io.keyProvider ?? open.provider(config);
  let database = io.database;
  if (!database) open.requireEmbeddedStore(config);
  database ??= await openDatabase(databaseTarget(config, 'application', 2));
  try {
    const svc = await createServices({
      database,
      keyProvider: provider,
      runnerSettings: config.runnerSettings,
      dataKeyMaxEncryptions: config.dataKeyMaxEncryptions,
      warn: (message) => io.err(`warning: ${message}`),
    });
    const email = flags.as.trim().toLowerCase();
    const user = await svc.db
      .selectFrom('users')
      .select(['id', 'email'])
      .where('email', '=', email)
      .executeTakeFirst();
    const notMember = new ImportRefused(
      `${email} is not a member of workspace ${flags.workspace} (or there is no such account or workspace). Nothing was imported`,
    );
    if (!user) throw notMember;
    io.out(
      `Importing ${plural(credentials.length, 'n8n credential')} from ${flags.file} into workspace ${flags.workspace} as ${user.email}` +
        (flags.dryRun ? ' (dry run: nothing is written)' : ''),
    );
    let report: ImportReport;
    try {
      report = await withDbScope({ workspaceId: flags.workspace, userId: user.id }, () =>
        importN8n(
          svc,
          { userId: user.id },
          { workspaceId: flags.workspace, credentials, dryRun: flags.dryRun },
        ),
      );
    } catch (error) {
      if (error instanceof NotFoundError) throw notMember;
      throw error;
    }
    printReport(report, io);
    return report.complete ? 0 : 1;
  } finally {
    if (!io.database) await database.close();
  }
}

const OUTCOME: Record<ImportRow['outcome'], string> = {
  imported: 'imported',
  'would-import': 'would import',
  'already-imported': 'already imported',
  skipped: 'skipped',
};

function printReport(report: ImportReport, io: ImportIo): void {
  const table = [
    ['RESULT', 'N8N ID', 'N8N TYPE', 'AS', 'NAME', 'WHY / TO DO'],
    ...report.rows.map((r) => [
      OUTCOME[r.outcome],
      r.sourceId,
      r.n8nType,
      r.credentialType ?? '-',
      r.name,
      r.reason ?? (r.outcome === 'already-imported' ? 'Imported by an earlier run' : ''),
    ]),
  ];
  const widths = table[0]?.slice(0, -1).map((_, i) => Math.max(...table.map((row) => row[i]?.length ?? 0)));
  for (const row of table) {
    io.out(
      `  ${row
        .map((cell, i) => (i < row.length - 1 ? cell.padEnd(widths?.[i] ?? 0) : cell))
        .join('  ')
        .trimEnd()}`,
    );
  }
  const count = (outcome: ImportRow['outcome']) => report.rows.filter((r) => r.outcome === outcome).length;
  const skipped = report.rows.filter((r) => r.outcome === 'skipped');
  const unsupported = skipped.filter((r) => r.skip === 'unsupported').length;
  const needsDomains = report.rows.filter((r) => r.needsAllowedDomains).length;
  io.out(
    `${report.dryRun ? `Would import ${count('would-import')}` : `Imported ${count('imported')}`}, ` +
      `already imported ${count('already-imported')}, skipped ${skipped.length}` +
      (unsupported ? ` (${unsupported} of an unsupported type)` : '') +
      '.' +
      (needsDomains
        ? ` ${plural(needsDomains, 'HTTP Request credential')} ${report.dryRun ? 'would need' : needsDomains === 1 ? 'needs' : 'need'} allowed domains before use.`
        : ''),
  );
  if (!report.complete) {
    io.out('Not everything could be imported: fix what the table names and run the same command again.');
  }
}
