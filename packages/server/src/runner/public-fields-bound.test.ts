import { credentialMaterial, type RecordedRequest } from '@latchkey/core/testing/fake-service';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createServices } from '../app.js';
import { runCli } from '../cli/index.js';
import { ENVELOPE_FORMAT_VERSION, UNBOUND_ENVELOPE_FORMAT_VERSION } from '../crypto/index.js';
import { keyStatus } from '../keys/rotation.js';
import {
  freshFakeData,
  PARAMS,
  type RunnerTestEnv,
  type RunnerTestPerson,
  runnerTestPerson,
  startRunnerTestEnv,
  workflowWith,
} from '../testing/fake-services.js';
import { ownerDb, TEST_SCRYPT } from '../testing/harness.js';
import { encryptFormat1Envelope } from '../testing/legacy-envelope.js';

// Issue 12, item 1: a secret's public fields (an HTTP Request credential's allowed domains, a Mailgun region…)
// are bound into its envelope's associated data. Rewriting them in the database makes the credential fail to
// decrypt — the run and secrets.test fail naming it, and nothing is sent anywhere — instead of changing where it
// goes. Envelopes written before the binding (format 1) are refused until the upgrade rewrites them, binding the
// public fields stored at that moment: at every start-up, and by `latchkey keys upgrade-envelopes`.

const UNDECRYPTABLE =
  'The stored credential could not be decrypted (it was altered, or encrypted with a key this server does not have). ' +
  'Replace its value, or select another credential.';

let env: RunnerTestEnv;
let you: RunnerTestPerson;
let workspaceId: string;

beforeAll(async () => {
  env = await startRunnerTestEnv();
  you = await runnerTestPerson(env, 'Binding Tester');
  ({ workspaceId } = you);
});
afterAll(() => env.close());
beforeEach(() => env.fakes.resetAll());

const owner = () => ownerDb(env.svc);

/** What someone with write access to the database (and no key) does: rewrites the public column. */
async function rewritePublicFields(secretId: string, publicFields: Record<string, unknown>) {
  await owner()
    .updateTable('secrets')
    .set({ public_fields: JSON.stringify(publicFields) })
    .where('id', '=', secretId)
    .execute();
}

async function storedRow(secretId: string) {
  return owner()
    .selectFrom('secrets')
    .select(['public_fields', 'ciphertext', 'key_version', 'credential_type'])
    .where('id', '=', secretId)
    .executeTakeFirstOrThrow();
}

const everyFake = () => env.fakes.all.flatMap((fake) => fake.requests);

function httpNode(name: string, secretId: string) {
  return { name, nodeType: 'httpRequest', params: PARAMS.http(`${env.fakes.http.url}/v1/items`), secretId };
}

function mailgunNode(name: string, secretId: string) {
  return { name, nodeType: 'mailgun', params: PARAMS.mailgun, secretId };
}

describe('public fields rewritten in the database', () => {
  it('an HTTP Request credential whose allowed domains are widened is sent nowhere; the run names the node', async () => {
    const data = freshFakeData().httpBearerToken as Record<string, string>;
    // Approved for the local fake: the run sends it there (the fake is what a widened list would reach).
    const approved = await you.secret('httpBearerToken', { ...data, allowedDomains: '127.0.0.1' });
    expect((await you.runOne(httpNode('Approved request', approved.id))).node?.ok).toBe(true);
    expect(env.fakes.http.requests).toHaveLength(1);
    env.fakes.resetAll();

    // Approved for another host only; its list is then rewritten to take in the fake's host.
    const other = freshFakeData().httpBearerToken as Record<string, string>;
    const narrow = await you.secret('httpBearerToken', { ...other, allowedDomains: 'api.example.test' });
    await rewritePublicFields(narrow.id, { allowedDomains: 'api.example.test, 127.0.0.1' });
    const { node } = await you.runOne(httpNode('Widened request', narrow.id));
    expect(node).toMatchObject({ ok: false, error: `Node 'Widened request': ${UNDECRYPTABLE}` });
    expect(everyFake()).toEqual([]);
  });

  it('removing the allowed domains (which once meant "any host") fails the same way', async () => {
    const data = freshFakeData().httpBasicAuth as Record<string, string>;
    const secret = await you.secret('httpBasicAuth', { ...data, allowedDomains: '127.0.0.1' });
    // The node is saved while the list allows its host; the list is removed afterwards, behind the editor's back.
    const { workflowId } = await workflowWith(you.person.caller, you.workspaceId, 'Unlisted', [
      httpNode('Unlisted request', secret.id),
    ]);
    await rewritePublicFields(secret.id, { username: data.username as string });
    const [node] = (await you.person.caller.workflows.run({ workflowId })).nodes;
    expect(node).toMatchObject({ ok: false, error: `Node 'Unlisted request': ${UNDECRYPTABLE}` });
    expect(everyFake()).toEqual([]);
  });

  it('a Mailgun region switched, or a field added, fails the run and secrets.test; putting it back works again', async () => {
    const secret = await you.secret('mailgunApiKey', freshFakeData().mailgunApiKey as Record<string, string>);
    const original = (await storedRow(secret.id)).public_fields;
    expect(original).toEqual({ domain: 'mg.example.test', region: 'eu' });

    for (const rewritten of [
      { ...original, region: 'us' },
      { ...original, note: 'added' },
      { domain: original.domain },
      { ...original, region: 1 },
    ]) {
      await rewritePublicFields(secret.id, rewritten);
      const { node } = await you.runOne(mailgunNode('Rerouted email', secret.id));
      expect(node).toMatchObject({ ok: false, error: `Node 'Rerouted email': ${UNDECRYPTABLE}` });
      expect(await you.person.caller.secrets.test({ workspaceId, secretId: secret.id })).toEqual({
        ok: false,
        message: UNDECRYPTABLE,
      });
      expect(everyFake()).toEqual([]);
    }

    // The same fields in another key order (jsonb keeps its own): the binding is of the set, so it works.
    await rewritePublicFields(secret.id, { region: 'eu', domain: 'mg.example.test' });
    const { node } = await you.runOne(mailgunNode('Restored email', secret.id));
    expect(node?.ok).toBe(true);
    expect(env.fakes.mailgunEu.requests).toHaveLength(1);
    expect(env.fakes.mailgunUs.requests).toEqual([]);
  });

  it('a replaced value binds the new public fields (and only those)', async () => {
    const data = freshFakeData().mailgunApiKey as Record<string, string>;
    const secret = await you.secret('mailgunApiKey', data);
    await you.person.caller.secrets.replace({
      workspaceId,
      secretId: secret.id,
      data: { ...data, region: 'us' },
    });
    expect((await you.runOne(mailgunNode('Moved email', secret.id))).node?.ok).toBe(true);
    expect(env.fakes.mailgunUs.requests).toHaveLength(1);
    env.fakes.resetAll();
    await rewritePublicFields(secret.id, { domain: 'mg.example.test', region: 'eu' });
    expect((await you.runOne(mailgunNode('Moved back email', secret.id))).node?.ok).toBe(false);
    expect(everyFake()).toEqual([]);
  });
});

describe('envelopes written before the binding (format 1)', () => {
  /** A secret whose envelope is rewritten exactly as the previous version stored it. */
  async function format1Secret(credentialType: string, data: Record<string, string>) {
    const secret = await you.secret(credentialType, data);
    const row = await storedRow(secret.id);
    const keyRow = await owner()
      .selectFrom('workspace_keys')
      .select(['version', 'master_key_id', 'wrapped_key'])
      .where('workspace_id', '=', workspaceId)
      .where('version', '=', row.key_version)
      .executeTakeFirstOrThrow();
    const dataKey = await env.svc.keys.unwrap(workspaceId, keyRow);
    const secretFields = Object.fromEntries(
      Object.entries(data).filter(([name]) => !(name in row.public_fields)),
    );
    const ciphertext = encryptFormat1Envelope(
      dataKey,
      row.key_version,
      { workspaceId, secretId: secret.id, credentialType },
      secretFields,
    );
    await owner().updateTable('secrets').set({ ciphertext }).where('id', '=', secret.id).execute();
    return { secret, secretValue: Object.values(secretFields)[0] as string };
  }

  const formatOf = async (secretId: string) => Buffer.from((await storedRow(secretId)).ciphertext)[0];

  it('are refused until upgraded; a server start upgrades them, after which they work and are bound', async () => {
    const data = freshFakeData().mailgunApiKey as Record<string, string>;
    const { secret, secretValue } = await format1Secret('mailgunApiKey', data);
    expect(await formatOf(secret.id)).toBe(UNBOUND_ENVELOPE_FORMAT_VERSION);
    expect((await keyStatus(owner(), env.keyProvider)).unboundEnvelopes).toBe(1);

    // Not upgraded yet: refused like a tampered envelope, nothing sent.
    const before = await you.runOne(mailgunNode('Old envelope', secret.id));
    expect(before.node).toMatchObject({ ok: false, error: `Node 'Old envelope': ${UNDECRYPTABLE}` });
    expect(everyFake()).toEqual([]);

    // A server start (the application's role, row-level security on) upgrades it, and says so without values.
    const warnings: string[] = [];
    const restarted = await createServices({
      database: env.database,
      keyProvider: env.keyProvider,
      passwordCost: TEST_SCRYPT,
      runnerSettings: env.settings,
      warn: (message) => warnings.push(message),
    });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^Bound the public fields of 1 secret envelope\(s\) written in format 1/);
    expect(warnings.join('\n')).not.toContain(secretValue);
    expect(await formatOf(secret.id)).toBe(ENVELOPE_FORMAT_VERSION);
    expect((await keyStatus(owner(), env.keyProvider)).unboundEnvelopes).toBe(0);

    // The same value, still in the same secret, now works…
    const after = await you.runOne(mailgunNode('Upgraded envelope', secret.id), restarted);
    expect(after.node?.ok).toBe(true);
    expect(env.fakes.mailgunEu.requests).toHaveLength(1);
    expect(credentialMaterial(env.fakes.mailgunEu.requests[0] as RecordedRequest).token).toBe(secretValue);
    env.fakes.resetAll();

    // …and its public fields are bound from now on.
    await rewritePublicFields(secret.id, { domain: 'mg.example.test', region: 'us' });
    const rerouted = await you.runOne(mailgunNode('Rerouted upgraded', secret.id), restarted);
    expect(rerouted.node).toMatchObject({ ok: false, error: `Node 'Rerouted upgraded': ${UNDECRYPTABLE}` });
    expect(everyFake()).toEqual([]);

    // A later start with nothing left to upgrade says nothing.
    const quiet: string[] = [];
    await createServices({
      database: env.database,
      keyProvider: env.keyProvider,
      passwordCost: TEST_SCRYPT,
      warn: (message) => quiet.push(message),
    });
    expect(quiet).toEqual([]);
  });

  it('`latchkey keys upgrade-envelopes` upgrades them too, and `keys status` counts what is left', async () => {
    const data = freshFakeData().httpBearerToken as Record<string, string>;
    const { secret } = await format1Secret('httpBearerToken', { ...data, allowedDomains: '127.0.0.1' });
    const cli = async (argv: string[]) => {
      const out: string[] = [];
      const code = await runCli(argv, {
        env: {},
        out: (line) => out.push(line),
        err: (line) => out.push(line),
        database: env.database,
        keyProvider: env.keyProvider,
      });
      return { code, text: out.join('\n') };
    };
    const status = await cli(['keys', 'status']);
    expect(status.text).toContain('Envelopes not binding their public fields (format 1): 1 (run');
    const upgrade = await cli(['keys', 'upgrade-envelopes']);
    expect(upgrade).toMatchObject({ code: 0 });
    expect(upgrade.text).toContain('envelopes upgraded:                 1');
    expect(upgrade.text).not.toContain(data.token);
    expect(await formatOf(secret.id)).toBe(ENVELOPE_FORMAT_VERSION);
    expect((await cli(['keys', 'status'])).text).toContain(
      'Envelopes not binding their public fields (format 1): 0\n',
    );

    expect((await you.runOne(httpNode('Upgraded by the operator', secret.id))).node?.ok).toBe(true);
    expect(env.fakes.http.requests).toHaveLength(1);
    env.fakes.resetAll();
    await rewritePublicFields(secret.id, { allowedDomains: '127.0.0.1, api.example.test' });
    expect((await you.runOne(httpNode('Widened after upgrade', secret.id))).node?.ok).toBe(false);
    expect(everyFake()).toEqual([]);
  });

  it('one that does not decrypt is named at start-up, left as it is, and the server starts', async () => {
    const data = freshFakeData().sendgridApiKey as Record<string, string>;
    const { secret } = await format1Secret('sendgridApiKey', data);
    // Its envelope swapped for another secret's format-1 envelope: bound to that other id, it cannot be upgraded.
    const donor = await format1Secret(
      'sendgridApiKey',
      freshFakeData().sendgridApiKey as Record<string, string>,
    );
    const { ciphertext } = await storedRow(donor.secret.id);
    await owner().updateTable('secrets').set({ ciphertext }).where('id', '=', secret.id).execute();
    try {
      const warnings: string[] = [];
      await createServices({
        database: env.database,
        keyProvider: env.keyProvider,
        passwordCost: TEST_SCRYPT,
        warn: (message) => warnings.push(message),
      });
      expect(warnings).toEqual([
        expect.stringMatching(/^Bound the public fields of 1 secret envelope\(s\)/),
        `Could not upgrade the envelope of secret ${secret.id} in workspace ${workspaceId}; it cannot be used ` +
          'until its value is replaced. The secret could not be decrypted (authentication failed): it was ' +
          'altered, or it belongs to another secret/workspace/credential type, or its public fields were ' +
          'changed, or it was encrypted with another data key.',
      ]);
      expect(warnings.join('\n')).not.toContain(data.apiKey);
      expect(await formatOf(donor.secret.id)).toBe(ENVELOPE_FORMAT_VERSION);
      expect(await formatOf(secret.id)).toBe(UNBOUND_ENVELOPE_FORMAT_VERSION);
      const { node } = await you.runOne({
        name: 'Swapped envelope',
        nodeType: 'sendgrid',
        params: PARAMS.sendgrid,
        secretId: secret.id,
      });
      expect(node).toMatchObject({ ok: false, error: `Node 'Swapped envelope': ${UNDECRYPTABLE}` });
      expect(everyFake()).toEqual([]);
    } finally {
      await you.person.caller.secrets.delete({ workspaceId, secretId: secret.id });
    }
  });

  it('data-key rotation does not launder a rewritten public column into a new envelope', async () => {
    const secret = await you.secret('mailgunApiKey', freshFakeData().mailgunApiKey as Record<string, string>);
    await rewritePublicFields(secret.id, { domain: 'mg.example.test', region: 'us' });
    const before = await storedRow(secret.id);
    const out: string[] = [];
    const code = await runCli(['keys', 'rotate-data-keys', '--workspace', workspaceId], {
      env: {},
      out: (line) => out.push(line),
      err: (line) => out.push(line),
      database: env.database,
      keyProvider: env.keyProvider,
    });
    expect(code).toBe(1);
    expect(out.join('\n')).toContain(
      `secret ${secret.id}: The secret could not be decrypted (authentication failed)`,
    );
    const after = await storedRow(secret.id);
    expect(Buffer.from(after.ciphertext).equals(Buffer.from(before.ciphertext))).toBe(true);
    expect((await you.runOne(mailgunNode('Still rerouted', secret.id))).node?.ok).toBe(false);
    expect(everyFake()).toEqual([]);
  });
});
