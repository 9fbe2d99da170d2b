import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { secretValueForms } from '@latchkey/core';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServices } from '../app.js';
import { runCli } from '../cli/index.js';
import { decryptSecretFields, LocalKeyProvider } from '../crypto/index.js';
import type { DatabaseHandle } from '../db/connect.js';
import type { Database } from '../db/schema.js';
import { withDbScope } from '../db/scope.js';
import type { Services } from '../services.js';
import { addToWorkspace, issuesOf, type Person, rejection } from '../testing/fixtures.js';
import { openTestDatabase, ownerOf, signedInUser, TEST_SCRYPT, testMasterKey } from '../testing/harness.js';
import { encryptN8n } from '../testing/n8n-export.js';
import { decryptN8nData, importN8n, N8nExportError, parseN8nExport, readN8nExport } from './n8n.js';

// `latchkey import n8n` as a person runs it, on a real database: exports of both forms generated here with fake
// values (each value is a canary: it must never appear in any output, error or audit row).

const tag = randomBytes(4).toString('hex');
const N8N_KEY = `fake-n8n-encryption-key-${tag}`;
const VALUES = {
  sendgrid: `SG.fakeid${tag}.fakesecret${tag}`,
  mailgun: `fake-mailgun-key-${tag}`,
  slack: `xoxb-fake-slack-${tag}`,
  header: `fake-header-value-${tag}`,
  bearer: `fake-bearer-token-${tag}`,
  password: `fake-basic-password-${tag}`,
  query: `fake-query-value-${tag}`,
  twilio: `fake-twilio-token-${tag}`,
  twilioKeySecret: `fake-twilio-key-secret-${tag}`,
  badSlack: `not-a-bot-token-${tag}`,
  unsupported: `fake-github-token-${tag}`,
};

const element = (id: string, name: string, type: string, data: unknown) => ({
  id,
  name,
  type,
  data,
  createdAt: '2024-05-01T10:00:00.000Z',
  updatedAt: '2024-05-01T10:00:00.000Z',
  isManaged: false,
  isGlobal: false,
});

/** Every n8n type of docs/import.md, one unsupported type and one unsupported variant (decrypted form). */
function decryptedExport(prefix: string) {
  return [
    element(`${prefix}sg`, 'Mailing', 'sendGridApi', { apiKey: VALUES.sendgrid }),
    element(`${prefix}mg`, 'Mailgun EU', 'mailgunApi', {
      apiDomain: 'api.eu.mailgun.net',
      emailDomain: 'mg.example.test',
      apiKey: VALUES.mailgun,
    }),
    element(`${prefix}sl`, 'Alerts bot', 'slackApi', { accessToken: VALUES.slack }),
    element(`${prefix}hh`, 'Billing API', 'httpHeaderAuth', {
      name: 'X-Api-Key',
      value: VALUES.header,
      allowedHttpRequestDomains: 'domains',
      allowedDomains: 'api.example.test, *.billing.example.test',
    }),
    element(`${prefix}hb`, 'CRM token', 'httpBearerAuth', { token: VALUES.bearer }),
    element(`${prefix}ba`, 'Legacy API', 'httpBasicAuth', { user: 'fake-user', password: VALUES.password }),
    element(`${prefix}hq`, 'Query API', 'httpQueryAuth', { name: 'api_key', value: VALUES.query }),
    element(`${prefix}tw`, 'Twilio', 'twilioApi', {
      authType: 'authToken',
      accountSid: `AC${'f'.repeat(32)}`,
      authToken: VALUES.twilio,
    }),
    // A variant of a supported type we have no type for (the API-key variant is imported: its own test).
    element(`${prefix}tk`, 'Twilio key', 'twilioApi', {
      authType: 'someFutureMethod',
      accountSid: `AC${'e'.repeat(32)}`,
      apiKeySecret: VALUES.twilioKeySecret,
    }),
    element(`${prefix}gh`, 'GitHub', 'githubApi', { accessToken: VALUES.unsupported }),
  ];
}

const encrypted = (credentials: ReturnType<typeof decryptedExport>, passphrase = N8N_KEY) =>
  credentials.map((c) => ({ ...c, data: encryptN8n(c.data, passphrase) }));

const key = testMasterKey();
let database: DatabaseHandle;
let owner: Kysely<Database>;
let svc: Services;
let dir: string;
/** Everything any command printed, for the canary check at the end. */
const printed: string[] = [];

beforeAll(async () => {
  database = await openTestDatabase();
  owner = ownerOf(database);
  svc = await createServices({
    database,
    keyProvider: new LocalKeyProvider({ active: key, all: [key] }),
    passwordCost: TEST_SCRYPT,
  });
  dir = mkdtempSync(path.join(tmpdir(), 'latchkey-import-test-'));
});

afterAll(async () => {
  await database?.close();
  rmSync(dir, { recursive: true, force: true });
});

let files = 0;
function file(content: unknown): string {
  files += 1;
  const name = path.join(dir, `export-${files}.json`);
  writeFileSync(name, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return name;
}

async function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(['import', 'n8n', ...args], {
    env,
    out: (line) => out.push(line),
    err: (line) => err.push(line),
    database: { ...database, close: async () => {} },
    keyProvider: new LocalKeyProvider({ active: key, all: [key] }),
  });
  printed.push(...out, ...err);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** A team workspace with its owner and a member who imports. */
async function workspace(): Promise<{ workspaceId: string; owner: Person; member: Person }> {
  const ownerPerson = await signedInUser(svc, 'Olivia Owner');
  const member = await signedInUser(svc, 'Mia Member');
  const { id: workspaceId } = await ownerPerson.caller.workspaces.create({ name: 'Acme', plan: 'team' });
  await addToWorkspace(ownerPerson, member, workspaceId, 'member');
  return { workspaceId, owner: ownerPerson, member };
}

const secretsOf = (workspaceId: string) =>
  owner
    .selectFrom('secrets')
    .select(['id', 'name', 'credential_type', 'public_fields', 'created_by', 'import_source'])
    .where('workspace_id', '=', workspaceId)
    .orderBy('name')
    .execute();

/** The table row of a credential (its line of output). */
const lineOf = (output: string, name: string) =>
  output.split('\n').find((l) => l.includes(` ${name} `) || l.endsWith(` ${name}`)) ?? '';

describe('reading an n8n export', () => {
  it('decrypts the CryptoJS / OpenSSL passphrase form, and refuses a wrong key', () => {
    const data = { apiKey: VALUES.sendgrid };
    expect(decryptN8nData(encryptN8n(data, N8N_KEY), N8N_KEY)).toEqual(data);
    expect(decryptN8nData(encryptN8n(data, N8N_KEY), 'another-fake-key')).toBeUndefined();
    expect(decryptN8nData('bm90IGVuY3J5cHRlZA==', N8N_KEY)).toBeUndefined();
    // A wrong key that passes the padding check yields garbage, which is not a JSON object: refused too.
    expect(decryptN8nData(encryptN8n('a string, not an object', N8N_KEY), N8N_KEY)).toBeUndefined();
  });

  it('refuses what is not an export, without quoting it', () => {
    const truncated = JSON.stringify(decryptedExport('t-')).slice(0, 200);
    const error = (() => {
      try {
        parseN8nExport(truncated);
      } catch (e) {
        return e as N8nExportError;
      }
    })();
    expect(error).toBeInstanceOf(N8nExportError);
    expect(error?.code).toBe('not-json');
    expect(error?.message).not.toContain(VALUES.sendgrid);
    expect(() => readN8nExport({ credentials: [] })).toThrow(/not an n8n credentials export/);
    expect(() => readN8nExport([{ id: 'x', name: 'y' }])).toThrow(/Element 1/);
    expect(() => readN8nExport(encrypted(decryptedExport('k-')))).toThrow(/encryption key/);
  });
});

describe('latchkey import n8n', () => {
  it("imports n8n's Twilio API-key variant as a Twilio API key (SID public, secret encrypted)", async () => {
    const { workspaceId, member } = await workspace();
    const exportFile = file([
      element('k-tk', 'Twilio key', 'twilioApi', {
        authType: 'apiKey',
        accountSid: `AC${'e'.repeat(32)}`,
        apiKeySid: `SK${'e'.repeat(32)}`,
        apiKeySecret: VALUES.twilioKeySecret,
      }),
    ]);
    const result = await cli(['--workspace', workspaceId, '--as', member.email, '--file', exportFile]);
    expect(result.code).toBe(0);
    expect(lineOf(result.out, 'Twilio key')).toMatch(/imported .*twilioApiKey/);
    const rows = await secretsOf(workspaceId);
    expect(rows.map((r) => [r.name, r.credential_type, r.public_fields])).toEqual([
      ['Twilio key', 'twilioApiKey', { accountSid: `AC${'e'.repeat(32)}`, apiKeySid: `SK${'e'.repeat(32)}` }],
    ]);
    expect(result.out).not.toContain(VALUES.twilioKeySecret);
  });

  it('imports every supported type of a decrypted export, created by the member, and lists what it skipped', async () => {
    const { workspaceId, owner: ownerPerson, member } = await workspace();
    const exportFile = file(decryptedExport('d-'));
    const result = await cli(['--workspace', workspaceId, '--as', member.email, '--file', exportFile]);
    // Only unsupported types were left out: nothing more could be imported.
    expect(result.code).toBe(0);
    expect(result.out).toContain('Imported 8, already imported 0, skipped 2 (2 of an unsupported type).');
    expect(lineOf(result.out, 'GitHub')).toMatch(/skipped .*Unsupported n8n type githubApi/);
    expect(lineOf(result.out, 'Twilio key')).toMatch(/skipped .*Unsupported variant of n8n type twilioApi/);
    expect(lineOf(result.out, 'CRM token')).toMatch(/imported .*httpBearerToken .*Needs allowed domains/);

    const rows = await secretsOf(workspaceId);
    expect(rows.map((r) => [r.name, r.credential_type])).toEqual([
      ['Alerts bot', 'slackBotToken'],
      ['Billing API', 'httpHeaderAuth'],
      ['CRM token', 'httpBearerToken'],
      ['Legacy API', 'httpBasicAuth'],
      ['Mailgun EU', 'mailgunApiKey'],
      ['Mailing', 'sendgridApiKey'],
      ['Query API', 'httpQueryAuth'],
      ['Twilio', 'twilioApiCredentials'],
    ]);
    expect(new Set(rows.map((r) => r.created_by))).toEqual(new Set([member.user.id]));
    const byName = Object.fromEntries(rows.map((r) => [r.name, r]));
    expect(byName['Mailgun EU']?.public_fields).toEqual({ domain: 'mg.example.test', region: 'eu' });
    expect(byName['Billing API']?.public_fields).toEqual({
      headerName: 'X-Api-Key',
      allowedDomains: 'api.example.test, billing.example.test',
    });
    expect(byName['Legacy API']?.public_fields).toEqual({ username: 'fake-user' });
    expect(byName.Mailing?.import_source).toBe('n8n:d-sg');

    // What the owner sees: the secrets, the one that needs allowed domains, the audit events.
    const { items } = await ownerPerson.caller.secrets.list({ workspaceId });
    expect(items.find((s) => s.name === 'CRM token')?.needsAllowedDomains).toBe(true);
    expect(items.find((s) => s.name === 'Billing API')?.needsAllowedDomains).toBe(false);
    const audit = (await ownerPerson.caller.audit.list({ workspaceId })).items.filter(
      (e) => e.action === 'secret.imported',
    );
    expect(audit).toHaveLength(8);
    expect(audit.find((e) => e.targetName === 'Mailing')).toMatchObject({
      actor: { id: member.user.id },
      details: {
        credentialType: 'sendgridApiKey',
        source: 'n8n',
        sourceId: 'd-sg',
        sourceType: 'sendGridApi',
      },
    });

    // Usable in nodes: selectable for its node type, and stored encrypted with the value it had in n8n.
    const selectable = await member.caller.secrets.selectable({ workspaceId, nodeType: 'sendgrid' });
    expect(selectable.map((s) => s.name)).toContain('Mailing');
    const stored = await owner
      .selectFrom('secrets as s')
      .innerJoin('workspace_keys as k', (join) =>
        join.onRef('k.workspace_id', '=', 's.workspace_id').onRef('k.version', '=', 's.key_version'),
      )
      .select(['s.id', 's.public_fields', 's.ciphertext', 'k.version', 'k.master_key_id', 'k.wrapped_key'])
      .where('s.workspace_id', '=', workspaceId)
      .where('s.name', '=', 'Legacy API')
      .executeTakeFirstOrThrow();
    const fields = decryptSecretFields(
      await svc.keys.unwrap(workspaceId, stored),
      {
        workspaceId,
        secretId: stored.id,
        credentialType: 'httpBasicAuth',
        publicFields: stored.public_fields,
      },
      Buffer.from(stored.ciphertext),
    );
    expect(fields).toEqual({ password: VALUES.password });

    // Run again: nothing is imported twice.
    const again = await cli(['--workspace', workspaceId, '--as', member.email, '--file', exportFile]);
    expect(again.code).toBe(0);
    expect(again.out).toContain('Imported 0, already imported 8, skipped 2');
    expect(await secretsOf(workspaceId)).toHaveLength(8);
    expect(
      (await ownerPerson.caller.audit.list({ workspaceId })).items.filter(
        (e) => e.action === 'secret.imported',
      ),
    ).toHaveLength(8);

    // The member leaves the team: the imported secrets go with their other secrets.
    await ownerPerson.caller.workspaces.removeMember({ workspaceId, userId: member.user.id });
    expect(await secretsOf(workspaceId)).toHaveLength(0);
  });

  it('imports the encrypted form with the key from a file or a variable, and a dry run writes nothing', async () => {
    const { workspaceId, member } = await workspace();
    const exportFile = file(encrypted(decryptedExport('e-')));
    const keyFile = path.join(dir, 'n8n.key');
    writeFileSync(keyFile, `${N8N_KEY}\n`, { mode: 0o600 });

    const dry = await cli(
      [
        '--workspace',
        workspaceId,
        '--as',
        member.email,
        '--file',
        exportFile,
        '--n8n-key-env',
        'FAKE_N8N_KEY',
        '--dry-run',
      ],
      { FAKE_N8N_KEY: N8N_KEY },
    );
    expect(dry.code).toBe(0);
    expect(dry.out).toContain('dry run: nothing is written');
    expect(dry.out).toContain('Would import 8, already imported 0, skipped 2');
    expect(lineOf(dry.out, 'Mailing')).toMatch(/would import/);
    expect(await secretsOf(workspaceId)).toHaveLength(0);

    const real = await cli([
      '--workspace',
      workspaceId,
      '--as',
      member.email,
      '--file',
      exportFile,
      '--n8n-key-file',
      keyFile,
    ]);
    expect(real.code).toBe(0);
    expect(real.out).toContain('Imported 8, already imported 0, skipped 2');
    expect(await secretsOf(workspaceId)).toHaveLength(8);
  });

  it('refuses a wrong key, a missing key, a truncated or non-JSON file and an oversized file, writing nothing', async () => {
    const { workspaceId, member } = await workspace();
    const base = ['--workspace', workspaceId, '--as', member.email];
    const exportFile = file(encrypted(decryptedExport('w-')));

    const wrong = await cli([...base, '--file', exportFile, '--n8n-key-env', 'K'], { K: 'another-fake-key' });
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(/does not decrypt credential 'Mailing'.*wrong key.*Nothing was imported/);

    const missing = await cli([...base, '--file', exportFile]);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/encrypted.*--n8n-key-file/);

    const unset = await cli([...base, '--file', exportFile, '--n8n-key-env', 'NOT_SET_ANYWHERE']);
    expect(unset.code).toBe(1);
    expect(unset.err).toContain('NOT_SET_ANYWHERE');

    const truncated = file(JSON.stringify(decryptedExport('t-')).slice(0, 300));
    const cut = await cli([...base, '--file', truncated]);
    expect(cut.code).toBe(1);
    expect(cut.err).toMatch(/not valid JSON.*nothing was imported/);

    const notJson = await cli([...base, '--file', file(`apiKey=${VALUES.sendgrid}\n`)]);
    expect(notJson.code).toBe(1);
    expect(notJson.err).toMatch(/not valid JSON/);

    // 100 MB, sparse: refused from its size before a byte is read.
    const huge = path.join(dir, 'huge.json');
    writeFileSync(huge, '[');
    truncateSync(huge, 100 * 1024 * 1024);
    const started = Date.now();
    const big = await cli([...base, '--file', huge]);
    expect(big.code).toBe(1);
    expect(big.err).toMatch(/100\.0 MB; an n8n credentials export is read up to 10\.0 MB/);
    expect(Date.now() - started).toBeLessThan(2000);

    const absent = await cli([...base, '--file', path.join(dir, 'no-such-file.json')]);
    expect(absent.code).toBe(1);
    expect(absent.err).toMatch(/Cannot read .*ENOENT/);

    expect(await secretsOf(workspaceId)).toHaveLength(0);
  });

  it('skips name clashes and invalid values, naming the field and never the value, and exits 1', async () => {
    const { workspaceId, owner: ownerPerson, member } = await workspace();
    await ownerPerson.caller.secrets.create({
      workspaceId,
      credentialType: 'sendgridApiKey',
      name: 'Mailing',
      data: { apiKey: 'SG.fake-existing.fake-existing' },
    });
    const credentials = [
      element('c-sg', 'Mailing', 'sendGridApi', { apiKey: VALUES.sendgrid }),
      element('c-sl', 'Alerts bot', 'slackApi', { accessToken: VALUES.badSlack }),
      element('c-mg', 'Mailgun', 'mailgunApi', {
        apiDomain: 'api.other.example.test',
        emailDomain: 'mg.example.test',
        apiKey: VALUES.mailgun,
      }),
      element('c-h1', 'Same name', 'httpBearerAuth', { token: VALUES.bearer }),
      element('c-h2', 'Same name', 'httpBearerAuth', { token: `${VALUES.bearer}x` }),
      element('c-h3', 'Same name', 'httpBasicAuth', { user: 'fake-user', password: VALUES.password }),
    ];
    const exportFile = file(credentials);
    const base = ['--workspace', workspaceId, '--as', member.email, '--file', exportFile];

    for (const dryRun of [true, false]) {
      const result = await cli(dryRun ? [...base, '--dry-run'] : base);
      expect(result.code).toBe(1);
      const out = result.out;
      expect(lineOf(out, 'Mailing')).toMatch(
        /skipped .*Name clash: a SendGrid API key named 'Mailing' already exists/,
      );
      expect(lineOf(out, 'Alerts bot')).toMatch(
        /skipped .*Invalid value: accessToken: A Slack bot token starts with `xoxb-`/,
      );
      expect(lineOf(out, 'Mailgun')).toMatch(/skipped .*apiDomain: must be api\.mailgun\.net/);
      const same = out.split('\n').filter((l) => l.includes('Same name'));
      expect(same[0]).toMatch(/(would import|imported) .*c-h1/);
      expect(same[1]).toMatch(/skipped .*c-h2 .*Name clash/);
      // Another type may use the same name.
      expect(same[2]).toMatch(/(would import|imported) .*c-h3/);
      expect(out).toContain('fix what the table names and run the same command again');
    }
    const rows = await secretsOf(workspaceId);
    expect(rows.map((r) => r.import_source ?? '(made here)').sort()).toEqual([
      '(made here)',
      'n8n:c-h1',
      'n8n:c-h3',
    ]);
  });

  it('two runs at once import each credential once', async () => {
    const { workspaceId, member } = await workspace();
    const credentials = parseN8nExport(JSON.stringify(decryptedExport('r-')));
    const run = () =>
      withDbScope({ workspaceId, userId: member.user.id }, () =>
        importN8n(svc, { userId: member.user.id }, { workspaceId, credentials, dryRun: false }),
      );
    const reports = await Promise.all([run(), run()]);
    expect(await secretsOf(workspaceId)).toHaveLength(8);
    for (const report of reports) expect(report.complete).toBe(true);
    const outcomes = reports.flatMap((r) => r.rows.map((row) => row.outcome));
    expect(outcomes.filter((o) => o === 'imported')).toHaveLength(8);
    expect(outcomes.filter((o) => o === 'already-imported')).toHaveLength(8);
  });

  it('refuses someone who is not a member, and usage mistakes', async () => {
    const { workspaceId } = await workspace();
    const stranger = await signedInUser(svc, 'Sam Stranger');
    const exportFile = file(decryptedExport('s-'));
    const refused = await cli(['--workspace', workspaceId, '--as', stranger.email, '--file', exportFile]);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/is not a member of workspace/);
    const nobody = await cli([
      '--workspace',
      workspaceId,
      '--as',
      'nobody@example.test',
      '--file',
      exportFile,
    ]);
    expect(nobody.code).toBe(1);
    expect(await secretsOf(workspaceId)).toHaveLength(0);

    const both = await cli([
      '--workspace',
      workspaceId,
      '--as',
      stranger.email,
      '--file',
      exportFile,
      '--n8n-key-file',
      'a',
      '--n8n-key-env',
      'B',
    ]);
    expect(both.code).toBe(2);
    expect((await cli(['--workspace', workspaceId, '--file', exportFile])).err).toContain('needs --as');
    expect(
      (await cli(['--workspace', workspaceId, '--as', stranger.email, '--file', exportFile, VALUES.bearer]))
        .code,
    ).toBe(2);
  });

  it('secrets.importN8n: the same import from the web UI (the parsed file and the key), in one request', async () => {
    const { workspaceId, member } = await workspace();
    const credentials = encrypted(decryptedExport('u-'));
    const call = (input: { n8nKey?: string; dryRun: boolean; credentials?: unknown[] }) =>
      member.caller.secrets.importN8n({ workspaceId, credentials, ...input });

    const preview = await call({ n8nKey: N8N_KEY, dryRun: true });
    printed.push(JSON.stringify(preview));
    expect(preview.rows.filter((r) => r.outcome === 'would-import')).toHaveLength(8);
    expect(preview.rows.find((r) => r.name === 'GitHub')).toMatchObject({
      outcome: 'skipped',
      skip: 'unsupported',
    });
    expect(await secretsOf(workspaceId)).toHaveLength(0);

    const refusals: [{ n8nKey?: string; dryRun: boolean; credentials?: unknown[] }, string][] = [
      [{ n8nKey: 'another-fake-key', dryRun: false }, 'n8nKey'],
      [{ dryRun: false }, 'n8nKey'],
      [{ dryRun: false, credentials: [{ id: 'x' }] }, 'credentials'],
    ];
    for (const [input, field] of refusals) {
      const error = await rejection(call(input));
      printed.push(error.message);
      expect(error.code).toBe('BAD_REQUEST');
      expect(issuesOf(error).map((i) => i.path.join('.'))).toEqual([field]);
    }
    expect(await secretsOf(workspaceId)).toHaveLength(0);

    const done = await call({ n8nKey: N8N_KEY, dryRun: false });
    printed.push(JSON.stringify(done));
    expect(done.complete).toBe(true);
    expect(done.rows.filter((r) => r.outcome === 'imported')).toHaveLength(8);
    const again = await call({ n8nKey: N8N_KEY, dryRun: false });
    expect(again.rows.filter((r) => r.outcome === 'already-imported')).toHaveLength(8);
    expect(await secretsOf(workspaceId)).toHaveLength(8);

    // Another workspace's id: not found, before anything about the file.
    const stranger = await signedInUser(svc, 'Sam Stranger');
    const refused = await rejection(
      stranger.caller.secrets.importN8n({ workspaceId, credentials: [{}], dryRun: false }),
    );
    expect(refused.code).toBe('NOT_FOUND');
  });

  it('the canary rule: no imported value in any output, error or audit row', async () => {
    // Runs last: everything the tests above printed and wrote.
    expect(printed.length).toBeGreaterThan(0);
    const audit = JSON.stringify(await owner.selectFrom('audit_events').selectAll().execute());
    const secrets = JSON.stringify(
      await owner.selectFrom('secrets').select(['name', 'public_fields', 'import_source']).execute(),
    );
    const text = printed.join('\n');
    for (const value of [...Object.values(VALUES), `${VALUES.bearer}x`, N8N_KEY]) {
      for (const form of secretValueForms(value)) {
        expect(text).not.toContain(form.text);
        expect(audit).not.toContain(form.text);
        expect(secrets).not.toContain(form.text);
      }
    }
  });
});
