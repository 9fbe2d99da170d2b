/**
 * Importing an n8n credentials export (docs/import.md): `n8n export:credentials --all [--decrypted]`.
 *
 * Two steps, so that a file that cannot be read whole writes nothing:
 *   1. `parseN8nExport` / `readN8nExport`: the JSON array, every element decrypted when the export is
 *      encrypted (a wrong key refuses the file), each mapped to one of our credential types (`N8N_MAPPINGS`);
 *   2. `importN8n`: each credential validated and stored exactly like `secrets.create` (`createSecret`: the
 *      registry's schema, the envelope, one statement — one transaction — per credential with its
 *      `secret.imported` audit event), created by the acting member. The credential's n8n id is remembered on the
 *      secret, so running the import again imports nothing twice.
 * Nothing here ever puts a credential value into a message: reasons name the field, never its value, and a file
 * that is not JSON is refused without quoting it (JSON.parse's own message quotes the input).
 */
import { createDecipheriv, createHash } from 'node:crypto';
import { asClause, hasControlCharacters } from '@latchkey/core';
import { membershipOf } from '../access/membership.js';
import { ConflictError, DomainError, InvalidInputError } from '../errors.js';
import {
  AlreadyImportedError,
  createSecret,
  importSourceOf,
  type SecretImport,
  validCredential,
} from '../secrets/write.js';
import type { Actor, Services } from '../services.js';

/** The largest export read (an export of thousands of credentials is a few MB). */
export const N8N_EXPORT_MAX_BYTES = 10 * 1024 * 1024;
/** The most credentials one import takes. */
export const N8N_EXPORT_MAX_CREDENTIALS = 5000;

/** The export as a whole cannot be imported (not JSON, not an export, encrypted without the right key): nothing is written. */
export class N8nExportError extends Error {
  override name = 'N8nExportError';
  constructor(
    readonly code: 'not-json' | 'not-an-export' | 'too-large' | 'key-needed' | 'wrong-key',
    message: string,
  ) {
    super(message);
  }
}

/** One element of the export, its `data` decrypted. */
export interface N8nCredential {
  id: string;
  name: string;
  type: string;
  data: Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------------------------
// Reading the export

/** The text of an export file: the JSON array, each element decrypted with `key` when it is encrypted. */
export function parseN8nExport(text: string, key?: string): N8nCredential[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // Never JSON.parse's message: it quotes the text around the error, which may be a credential.
    throw new N8nExportError(
      'not-json',
      'The file is not valid JSON (truncated, or not an n8n credentials export): nothing was imported',
    );
  }
  return readN8nExport(json, key);
}

/** An export already parsed (the web UI reads the file in the browser): checked, and decrypted with `key`. */
export function readN8nExport(json: unknown, key?: string): N8nCredential[] {
  if (!Array.isArray(json)) {
    throw new N8nExportError(
      'not-an-export',
      'This is not an n8n credentials export (expected a JSON array, as `n8n export:credentials --all` writes)',
    );
  }
  if (json.length > N8N_EXPORT_MAX_CREDENTIALS) {
    throw new N8nExportError(
      'too-large',
      `The export holds ${json.length} credentials; at most ${N8N_EXPORT_MAX_CREDENTIALS} are imported at once`,
    );
  }
  const elements = json.map((element, index) => exportElement(element, index));
  const encrypted = elements.filter((e) => typeof e.data === 'string');
  if (encrypted.length > 0 && !key) {
    throw new N8nExportError(
      'key-needed',
      `The export is encrypted (${encrypted.length} of ${elements.length} credentials): it needs the n8n instance's encryption key`,
    );
  }
  return elements.map((e) => ({
    id: e.id,
    name: e.name,
    type: e.type,
    data: typeof e.data === 'string' ? decryptOrRefuse(e, e.data, key as string) : e.data,
  }));
}

interface ExportElement {
  id: string;
  name: string;
  type: string;
  data: string | Record<string, unknown>;
}

function exportElement(element: unknown, index: number): ExportElement {
  const refuse = (what: string) =>
    new N8nExportError(
      'not-an-export',
      `Element ${index + 1} of the export is not an n8n credential (${what}): nothing was imported`,
    );
  if (!isPlainObject(element)) throw refuse('not an object');
  const { id, name, type, data } = element;
  if (typeof id !== 'string' || id === '' || id.length > 64 || hasControlCharacters(id))
    throw refuse('no usable id');
  if (typeof name !== 'string') throw refuse('no name');
  if (typeof type !== 'string' || !/^[A-Za-z0-9_.-]{1,100}$/.test(type)) throw refuse('no usable type');
  if (typeof data !== 'string' && !isPlainObject(data)) throw refuse('no data');
  return { id, name, type, data };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function decryptOrRefuse(element: ExportElement, data: string, key: string): Record<string, unknown> {
  const decrypted = decryptN8nData(data, key);
  if (decrypted === undefined) {
    throw new N8nExportError(
      'wrong-key',
      `The n8n encryption key does not decrypt credential '${printable(element.name)}' (n8n id ${element.id}): ` +
        'wrong key (N8N_ENCRYPTION_KEY, or encryptionKey in ~/.n8n/config of the instance that exported it). ' +
        'Nothing was imported',
    );
  }
  return decrypted;
}

/**
 * The CryptoJS / OpenSSL passphrase format n8n encrypts credential data with: base64 of "Salted__", an 8-byte salt
 * and AES-256-CBC ciphertext (PKCS#7); key and IV from the passphrase and salt by EVP_BytesToKey (MD5, one
 * iteration). There is no MAC: a wrong key usually fails the padding check but can yield garbage, so anything but
 * a JSON object is a wrong key too. Answers the object, or undefined for a wrong key (or a damaged value).
 */
export function decryptN8nData(data: string, passphrase: string): Record<string, unknown> | undefined {
  const raw = Buffer.from(data, 'base64');
  if (raw.length < 32 || (raw.length - 16) % 16 !== 0 || raw.toString('latin1', 0, 8) !== 'Salted__') {
    return undefined;
  }
  const { key, iv } = evpBytesToKey(Buffer.from(passphrase, 'utf8'), raw.subarray(8, 16));
  let plain: Buffer | undefined;
  try {
    const decipher = createDecipheriv('aes-256-cbc', key, iv);
    plain = Buffer.concat([decipher.update(raw.subarray(16)), decipher.final()]);
    const parsed: unknown = JSON.parse(plain.toString('utf8'));
    return isPlainObject(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  } finally {
    key.fill(0);
    iv.fill(0);
    plain?.fill(0);
  }
}

/** OpenSSL's EVP_BytesToKey with MD5 and one iteration: 32 bytes of key, then 16 of IV. */
export function evpBytesToKey(passphrase: Buffer, salt: Buffer): { key: Buffer; iv: Buffer } {
  const blocks: Buffer[] = [];
  let previous: Buffer = Buffer.alloc(0);
  while (blocks.length * 16 < 48) {
    previous = createHash('md5').update(previous).update(passphrase).update(salt).digest();
    blocks.push(previous);
  }
  const all = Buffer.concat(blocks);
  const result = { key: Buffer.from(all.subarray(0, 32)), iv: Buffer.from(all.subarray(32, 48)) };
  all.fill(0);
  for (const block of blocks) block.fill(0);
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// The mapping (docs/import.md has the same table)

/** How one n8n type becomes one of ours. `fields`: our field → the n8n field it is read from. */
export interface N8nMapping {
  n8nType: string;
  credentialType: string;
  fields: Record<string, string>;
  /** n8n values that are not taken as they are (Mailgun's API host → our region). */
  convert?: Record<string, (value: unknown) => unknown>;
  /** HTTP credentials: n8n's allowed domains become ours; without them the credential needs allowed domains. */
  allowedDomains?: boolean;
  /** For an n8n type with variants (Twilio's `authType`): whether this mapping is the one for `data`. */
  when?: (data: Record<string, unknown>) => boolean;
}

const MAILGUN_REGIONS: Record<string, string> = { 'api.mailgun.net': 'us', 'api.eu.mailgun.net': 'eu' };

export const N8N_MAPPINGS: readonly N8nMapping[] = [
  { n8nType: 'sendGridApi', credentialType: 'sendgridApiKey', fields: { apiKey: 'apiKey' } },
  {
    n8nType: 'mailgunApi',
    credentialType: 'mailgunApiKey',
    fields: { apiKey: 'apiKey', domain: 'emailDomain', region: 'apiDomain' },
    // n8n's default API host is the US one.
    convert: {
      region: (value) =>
        value === undefined || value === '' ? 'us' : (MAILGUN_REGIONS[String(value)] ?? 'unknown'),
    },
  },
  { n8nType: 'slackApi', credentialType: 'slackBotToken', fields: { token: 'accessToken' } },
  {
    n8nType: 'httpHeaderAuth',
    credentialType: 'httpHeaderAuth',
    fields: { headerName: 'name', headerValue: 'value' },
    allowedDomains: true,
  },
  {
    n8nType: 'httpBearerAuth',
    credentialType: 'httpBearerToken',
    fields: { token: 'token' },
    allowedDomains: true,
  },
  {
    n8nType: 'httpBasicAuth',
    credentialType: 'httpBasicAuth',
    fields: { username: 'user', password: 'password' },
    allowedDomains: true,
  },
  {
    n8nType: 'httpQueryAuth',
    credentialType: 'httpQueryAuth',
    fields: { paramName: 'name', paramValue: 'value' },
    allowedDomains: true,
  },
  {
    n8nType: 'twilioApi',
    credentialType: 'twilioApiCredentials',
    fields: { accountSid: 'accountSid', authToken: 'authToken' },
    when: (data) => data.authType === undefined || data.authType === 'authToken',
  },
  {
    n8nType: 'twilioApi',
    credentialType: 'twilioApiKey',
    fields: { accountSid: 'accountSid', apiKeySid: 'apiKeySid', apiKeySecret: 'apiKeySecret' },
    when: (data) => data.authType === 'apiKey',
  },
];

/** The mapping for an n8n credential: by its type, and for a type with variants, by its data. */
const mappingOf = (credential: N8nCredential) =>
  N8N_MAPPINGS.find((m) => m.n8nType === credential.type && (m.when?.(credential.data) ?? true));

/**
 * n8n's allowed domains (newer versions): `allowedHttpRequestDomains` "domains" with a comma-separated
 * `allowedDomains`. Our list means "these hosts and their subdomains", so a leading `*.` is dropped. Anything else
 * ("all", "none", missing) gives none: the credential is imported as needing allowed domains, sent nowhere.
 */
function n8nAllowedDomains(data: Record<string, unknown>): string | undefined {
  const mode = data.allowedHttpRequestDomains;
  if (mode !== undefined && mode !== 'domains') return undefined;
  if (typeof data.allowedDomains !== 'string') return undefined;
  const domains = data.allowedDomains
    .split(',')
    .map((d) => d.trim().replace(/^\*\./, ''))
    .filter(Boolean);
  return domains.length ? domains.join(', ') : undefined;
}

// ---------------------------------------------------------------------------------------------------------------
// Importing

export interface ImportRow {
  /** The credential's n8n id and name, and its n8n type. */
  sourceId: string;
  name: string;
  n8nType: string;
  /** Ours, when the type is supported. */
  credentialType?: string;
  /** `would-import`: a dry run. `already-imported`: an earlier run brought it in (its secret still exists). */
  outcome: 'imported' | 'would-import' | 'already-imported' | 'skipped';
  /** Why it was skipped. */
  skip?: 'unsupported' | 'invalid' | 'name-clash' | 'failed';
  /** What a person reads: the reason for a skip, or what is still to do (allowed domains). Never a value. */
  reason?: string;
  /** An HTTP credential imported without allowed domains: sent nowhere until someone adds them. */
  needsAllowedDomains?: boolean;
  secretId?: string;
}

export interface ImportReport {
  rows: ImportRow[];
  dryRun: boolean;
  /**
   * Every credential of a supported type is in the workspace now (imported by this run or an earlier one), or
   * would be (dry run). Unsupported types do not count against it: nothing can be done about them here.
   */
  complete: boolean;
}

type Prepared =
  | { row: ImportRow; skipped: true }
  | {
      row: ImportRow;
      skipped: false;
      credentialType: string;
      data: Record<string, unknown>;
      mapping: N8nMapping;
    };

function prepare(credential: N8nCredential): Prepared {
  const row: ImportRow = {
    sourceId: credential.id,
    name: printable(credential.name),
    n8nType: credential.type,
    outcome: 'skipped',
  };
  const mapping = mappingOf(credential);
  if (!mapping) {
    const variant = N8N_MAPPINGS.some((m) => m.n8nType === credential.type);
    return {
      row: {
        ...row,
        skip: 'unsupported',
        reason: variant
          ? `Unsupported variant of n8n type ${credential.type}`
          : `Unsupported n8n type ${credential.type}`,
      },
      skipped: true,
    };
  }
  row.credentialType = mapping.credentialType;
  const nameProblem = nameIssue(credential.name);
  if (nameProblem)
    return { row: { ...row, skip: 'invalid', reason: `Invalid name: ${nameProblem}` }, skipped: true };
  const data: Record<string, unknown> = {};
  for (const [ours, theirs] of Object.entries(mapping.fields)) {
    const value = credential.data[theirs];
    const convert = mapping.convert?.[ours];
    const converted = convert ? convert(value) : value;
    if (converted !== undefined) data[ours] = converted;
  }
  if (mapping.allowedDomains) {
    const domains = n8nAllowedDomains(credential.data);
    if (domains) data.allowedDomains = domains;
    else row.needsAllowedDomains = true;
  }
  return {
    row: { ...row, name: credential.name.trim() },
    skipped: false,
    credentialType: mapping.credentialType,
    data,
    mapping,
  };
}

/** The rules of a secret's name (as `secrets.create`'s input): 1 to 120 characters, no control characters. */
function nameIssue(name: string): string | undefined {
  const trimmed = name.trim();
  if (trimmed.length === 0) return 'empty';
  if (trimmed.length > 120) return 'longer than 120 characters';
  if (hasControlCharacters(trimmed)) return 'contains control characters';
  return undefined;
}

/** A name as it may be printed (a name that failed the rules can still be shown, shortened and cleaned). */
function printable(name: string): string {
  let shown = '';
  for (const c of name.trim()) shown += hasControlCharacters(c) ? '?' : c;
  return shown.length > 80 ? `${shown.slice(0, 79)}…` : shown;
}

/** Field issues of our schema as the n8n fields a person sees in n8n ("accessToken: …"): never the value. */
function invalidReason(error: InvalidInputError, mapping: N8nMapping): string {
  const n8nField = (ours: string) =>
    ours === 'allowedDomains' ? 'allowedDomains' : (mapping.fields[ours] ?? ours);
  const issues = error.issues.map((issue) => {
    const path = issue.path[0] === 'data' ? issue.path.slice(1) : issue.path;
    const ours = String(path[0] ?? '');
    if (ours === 'region') {
      return 'apiDomain: must be api.mailgun.net (US) or api.eu.mailgun.net (EU)';
    }
    return `${ours ? n8nField(ours) : '(credential)'}: ${asClause(issue.message)}`;
  });
  return `Invalid value: ${issues.join('; ')}`;
}

/**
 * Imports the credentials of an n8n export into a workspace, created by `actor` (who must be a member), in the
 * request's database scope (the caller sets it: the tRPC middleware, or the CLI). With `dryRun` nothing is
 * written: each credential is validated and checked against the names and import sources already there, and the
 * report says what a real run would do.
 */
export async function importN8n(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; credentials: readonly N8nCredential[]; dryRun: boolean },
): Promise<ImportReport> {
  const { workspaceId, dryRun } = input;
  // A stranger learns "not found", before anything about the file.
  await membershipOf(svc.db, workspaceId, actor.userId);
  const existing = await svc.db
    .selectFrom('secrets')
    .select(['credential_type', 'name', 'import_source'])
    .where('workspace_id', '=', workspaceId)
    .execute();
  const sources = new Set(existing.map((s) => s.import_source).filter((s) => s !== null));
  const names = new Set(existing.map((s) => `${s.credential_type}\u0000${s.name}`));
  const rows: ImportRow[] = [];
  for (const credential of input.credentials) {
    const prepared = prepare(credential);
    const { row } = prepared;
    rows.push(row);
    if (prepared.skipped) continue;
    const imported: SecretImport = { source: 'n8n', sourceId: credential.id, sourceType: credential.type };
    if (sources.has(importSourceOf(imported))) {
      row.outcome = 'already-imported';
      row.needsAllowedDomains = undefined;
      continue;
    }
    const secret = { workspaceId, credentialType: prepared.credentialType, name: row.name };
    try {
      if (dryRun) {
        await validCredential(svc, actor, workspaceId, prepared.credentialType, prepared.data);
        const key = `${prepared.credentialType}\u0000${row.name}`;
        if (names.has(key)) throw new ConflictError('name clash');
        names.add(key);
        row.outcome = 'would-import';
      } else {
        const meta = await createSecret(svc, actor, { ...secret, data: prepared.data }, imported);
        row.outcome = 'imported';
        row.secretId = meta.id;
      }
      sources.add(importSourceOf(imported));
      if (row.needsAllowedDomains) {
        row.reason =
          'Needs allowed domains: it is sent nowhere until its creator, an owner or an admin adds them';
      }
    } catch (error) {
      row.needsAllowedDomains = undefined;
      if (
        error instanceof AlreadyImportedError ||
        // A run racing this one inserted the same credential first: its name clashes too, and either
        // constraint may be the one reported.
        (error instanceof ConflictError && !dryRun && (await isImported(svc, workspaceId, imported)))
      ) {
        row.outcome = 'already-imported';
      } else if (error instanceof InvalidInputError) {
        Object.assign(row, { skip: 'invalid', reason: invalidReason(error, prepared.mapping) });
      } else if (error instanceof ConflictError) {
        const display =
          svc.registry.credentialType(prepared.credentialType)?.definition.displayName ??
          prepared.credentialType;
        Object.assign(row, {
          skip: 'name-clash',
          reason: `Name clash: a ${display} named '${row.name}' already exists in this workspace`,
        });
      } else if (error instanceof DomainError) {
        // Not found: the member was removed meanwhile; nothing more can be imported for them.
        Object.assign(row, { skip: 'failed', reason: error.message });
      } else {
        // A database or other failure: its message is not shown (it could quote what was sent); run again.
        Object.assign(row, {
          skip: 'failed',
          reason: `Failed (${error instanceof Error ? error.name : 'error'}): run the import again`,
        });
      }
    }
  }
  const complete = rows.every((r) => r.outcome !== 'skipped' || r.skip === 'unsupported');
  return { rows, dryRun, complete };
}

async function isImported(svc: Services, workspaceId: string, imported: SecretImport): Promise<boolean> {
  const row = await svc.db
    .selectFrom('secrets')
    .select('id')
    .where('workspace_id', '=', workspaceId)
    .where('import_source', '=', importSourceOf(imported))
    .executeTakeFirst();
  return row !== undefined;
}

/**
 * `secrets.importN8n`: an export the web UI read in the browser (the parsed JSON array) and, for the encrypted
 * form, the n8n key — used for this request only, never stored. A stranger learns "not found" before anything
 * about the file; an export that cannot be read whole is a field error of `credentials` or `n8nKey`, and nothing
 * is written.
 */
export async function importN8nExport(
  svc: Services,
  actor: Actor,
  input: { workspaceId: string; credentials: unknown[]; n8nKey?: string | undefined; dryRun: boolean },
): Promise<ImportReport> {
  await membershipOf(svc.db, input.workspaceId, actor.userId);
  let credentials: N8nCredential[];
  try {
    credentials = readN8nExport(input.credentials, input.n8nKey);
  } catch (error) {
    if (!(error instanceof N8nExportError)) throw error;
    const field = error.code === 'key-needed' || error.code === 'wrong-key' ? 'n8nKey' : 'credentials';
    throw new InvalidInputError([{ path: [field], message: error.message }], 'The export cannot be imported');
  }
  return importN8n(svc, actor, { workspaceId: input.workspaceId, credentials, dryRun: input.dryRun });
}
