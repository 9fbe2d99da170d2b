/**
 * `pnpm new-integration` (scripts/new-integration.mjs), run against a temporary copy of the repository: the
 * package it writes (with an API key, or with --oauth2 an OAuth2 credential type) passes its own tests and the
 * conformance suite out of the box, and every refusal leaves the copy exactly as it was.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const SCRIPT = path.join(REPO, 'scripts', 'new-integration.mjs');
const CORE = path.join(REPO, 'packages', 'core');
const TOOL = (name: string) => realpathSync(path.join(CORE, 'node_modules', name));
const VITEST = path.join(TOOL('vitest'), 'vitest.mjs');
const TSC = path.join(REPO, 'node_modules', '.bin', 'tsc');
const BIOME = path.join(REPO, 'node_modules', '.bin', 'biome');
const SLOW = 120_000;
/** A display name with every character that needs quoting in a string or a template literal. */
const AWKWARD_NAME = `Quote's \`Test\` $\{x} \\ Co`;

let root: string;

/**
 * A copy of what the generator reads and edits (the existing plugins' sources, the server's plugin list and
 * package.json, the root configuration), with the dependencies linked as pnpm would link them.
 */
function makeRepositoryCopy(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'latchkey-new-integration-'));
  for (const file of [
    'package.json',
    'pnpm-workspace.yaml',
    'tsconfig.base.json',
    'biome.json',
    '.gitignore',
  ])
    cpSync(path.join(REPO, file), path.join(dir, file));
  const integrations = path.join(REPO, 'packages', 'integrations');
  for (const name of readdirSync(integrations)) {
    if (!existsSync(path.join(integrations, name, 'package.json'))) continue;
    for (const part of ['src', 'package.json'])
      cpSync(path.join(integrations, name, part), path.join(dir, 'packages', 'integrations', name, part), {
        recursive: true,
      });
  }
  mkdirSync(path.join(dir, 'packages', 'server', 'src'), { recursive: true });
  for (const file of ['src/plugins.ts', 'package.json'])
    cpSync(path.join(REPO, 'packages', 'server', file), path.join(dir, 'packages', 'server', file));
  // Core as the workspace links it (its sources, resolved with the `development` condition), and the tools.
  symlinkSync(CORE, path.join(dir, 'packages', 'core'), 'dir');
  const modules = path.join(dir, 'node_modules');
  mkdirSync(path.join(modules, '@latchkey'), { recursive: true });
  mkdirSync(path.join(modules, '@types'), { recursive: true });
  mkdirSync(path.join(modules, '.bin'), { recursive: true });
  symlinkSync(CORE, path.join(modules, '@latchkey', 'core'), 'dir');
  for (const name of ['vitest', 'zod', 'typescript'])
    symlinkSync(TOOL(name), path.join(modules, name), 'dir');
  symlinkSync(TOOL('@types/node'), path.join(modules, '@types', 'node'), 'dir');
  symlinkSync(BIOME, path.join(modules, '.bin', 'biome'));
  return dir;
}

function generate(...args: string[]) {
  const result = spawnSync(process.execPath, [SCRIPT, ...args, '--root', root], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A fingerprint of every file of the copy (links not followed): equal fingerprints, nothing was written. */
function fingerprint(dir = root): string {
  const hash = createHash('sha256');
  const walk = (current: string) => {
    for (const entry of readdirSync(current, { withFileTypes: true }).sort((a, b) =>
      a.name.localeCompare(b.name),
    )) {
      const full = path.join(current, entry.name);
      hash.update(path.relative(dir, full));
      if (entry.isSymbolicLink()) hash.update('->link');
      else if (entry.isDirectory()) walk(full);
      else hash.update(readFileSync(full));
    }
  };
  walk(dir);
  return hash.digest('hex');
}

function read(relative: string): string {
  return readFileSync(path.join(root, relative), 'utf8');
}

function filesUnder(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) =>
      entry.isDirectory()
        ? filesUnder(path.join(dir, entry.name), path.join(prefix, entry.name))
        : [path.join(prefix, entry.name)],
    )
    .sort();
}

function run(command: string, args: string[], cwd: string) {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', env: { ...process.env, CI: 'true' } });
  return { status: result.status, output: `${result.stdout}\n${result.stderr}` };
}

beforeAll(() => {
  root = makeRepositoryCopy();
});
afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

/** The files of a generated package, in order: the same for the API-key and the OAuth2 form. */
const layoutOf = (id: string) => [
  'README.md',
  'package.json',
  'src/action.test.ts',
  'src/action.ts',
  'src/credentials.test.ts',
  'src/credentials.ts',
  `src/fake-${id}.test.ts`,
  `src/fake-${id}.ts`,
  'src/index.ts',
  'tsconfig.build.json',
  'tsconfig.json',
  'vitest.config.ts',
];

describe('pnpm new-integration', () => {
  it(
    'writes a package laid out like the others, registers it with the server, and its tests pass as generated',
    () => {
      const result = generate('acme-crm');
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      const dir = path.join(root, 'packages', 'integrations', 'acme-crm');
      expect(filesUnder(dir)).toEqual(layoutOf('acme-crm'));
      const manifest = JSON.parse(read('packages/integrations/acme-crm/package.json'));
      expect(manifest).toMatchObject({
        name: '@latchkey/integration-acme-crm',
        private: true,
        type: 'module',
        dependencies: { '@latchkey/core': 'workspace:*', zod: 'catalog:' },
        devDependencies: { vitest: 'catalog:', typescript: 'catalog:', '@types/node': 'catalog:' },
      });
      const sendgrid = JSON.parse(read('packages/integrations/sendgrid/package.json'));
      expect(Object.keys(manifest)).toEqual(Object.keys(sendgrid));
      // The same entry points, the fake of the service (./fake) named after the package like SendGrid's.
      expect(manifest.exports).toEqual(
        JSON.parse(JSON.stringify(sendgrid.exports).replaceAll('fake-sendgrid', 'fake-acme-crm')),
      );
      expect(manifest.scripts).toEqual(sendgrid.scripts);
      for (const file of ['tsconfig.json', 'tsconfig.build.json', 'vitest.config.ts'])
        expect(read(`packages/integrations/acme-crm/${file}`)).toBe(
          readFileSync(path.join(REPO, 'packages', 'integrations', 'sendgrid', file), 'utf8'),
        );

      // Defaults derived from the id, without a terminal to ask on.
      const index = read('packages/integrations/acme-crm/src/index.ts');
      expect(index).toContain("id: 'acme-crm',");
      expect(index).toContain("displayName: 'Acme Crm',");
      expect(index).toContain("nodeType: 'acmeCrm',");
      expect(index).toContain("baseUrls: { default: 'https://api.acme-crm.com' },");
      expect(read('packages/integrations/acme-crm/src/credentials.ts')).toContain("type: 'acmeCrmApiKey',");

      // plugins.ts: the same file with one import, in order, and one more entry at the end of the list.
      const listOf = (source: string) =>
        (/= \[([^\]]*)\];/.exec(source)?.[1] ?? '').split(',').map((entry) => entry.trim());
      const before = readFileSync(path.join(REPO, 'packages', 'server', 'src', 'plugins.ts'), 'utf8');
      const after = read('packages/server/src/plugins.ts');
      expect(listOf(after)).toEqual([...listOf(before), 'acmeCrm']);
      const imports = after.split('\n').filter((line) => line.startsWith('import '));
      expect(imports).toContain("import acmeCrm from '@latchkey/integration-acme-crm';");
      expect(imports.filter((line) => !before.includes(line))).toHaveLength(1);
      const specifiers = imports.map((line) => /from '([^']+)'/.exec(line)?.[1] ?? '');
      expect(specifiers).toEqual([...specifiers].sort());
      expect(JSON.parse(read('packages/server/package.json')).dependencies).toMatchObject({
        '@latchkey/integration-acme-crm': 'workspace:*',
      });

      expect(result.stdout).toContain('pnpm install');
      expect(result.stdout).toContain('pnpm --filter @latchkey/integration-acme-crm test');
      expect(result.stdout).toContain('Settings → Secrets & API Keys');
      expect(result.stdout).toContain('LATCHKEY_BASE_URL_ACME_CRM');

      const tests = run(process.execPath, [VITEST, 'run', '--reporter=verbose'], dir);
      expect(tests.status, tests.output).toBe(0);
      expect(tests.output).toContain('Acme Crm: credential conformance');
      expect(tests.output).toContain('Acme Crm: action conformance');
      expect(tests.output).toContain('Acme Crm action, against a fake Acme Crm');
      expect(tests.output).not.toMatch(/skipped|todo/);
      const types = run(TSC, ['-p', 'tsconfig.json', '--noEmit', '--customConditions', 'development'], dir);
      expect(types.status, types.output).toBe(0);
      const lint = run(
        BIOME,
        ['check', 'packages/integrations/acme-crm', 'packages/server/src/plugins.ts'],
        root,
      );
      expect(lint.status, lint.output).toBe(0);
    },
    SLOW,
  );

  it(
    'with --oauth2, writes an OAuth2 credential type (authorization code, PKCE) whose tests and conformance pass as generated',
    () => {
      const result = generate('acme-chat', '--oauth2');
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      const dir = path.join(root, 'packages', 'integrations', 'acme-chat');
      // The same layout as the API-key form: the OAuth2 templates replace their namesakes, none is added.
      expect(filesUnder(dir)).toEqual(layoutOf('acme-chat'));
      const index = read('packages/integrations/acme-chat/src/index.ts');
      expect(index).toContain(
        "baseUrls: { default: 'https://api.acme-chat.com', oauth: 'https://auth.acme-chat.com' },",
      );
      expect(index).toContain('credentialTypes: [acmeChatOAuth],');
      const credentials = read('packages/integrations/acme-chat/src/credentials.ts');
      expect(credentials).toContain("type: 'acmeChatOAuth',");
      expect(credentials).toContain("displayName: 'Acme Chat app (OAuth)',");
      expect(credentials).toContain('fields: { ...oauth2Fields },');
      expect(credentials).toContain("grant: 'authorizationCode',");
      expect(credentials).toContain('pkce: true,');
      expect(credentials).toContain("clientAuthentication: 'client_secret_basic',");
      expect(credentials).toContain("defaultScopes: ['messages:write'],");
      expect(credentials).not.toMatch(/authenticate:|apiKey/);
      // The action is the API-key form's: it sends through ctx.send, which applies whichever credential.
      expect(read('packages/integrations/acme-chat/src/action.ts')).toBe(
        read('packages/integrations/acme-crm/src/action.ts')
          .replaceAll('AcmeCrm', 'AcmeChat')
          .replaceAll('acmeCrm', 'acmeChat')
          .replaceAll('Acme Crm', 'Acme Chat'),
      );
      expect(read('packages/integrations/acme-chat/README.md')).toContain(
        '`LATCHKEY_BASE_URL_ACME_CHAT_OAUTH`',
      );
      expect(JSON.parse(read('packages/server/package.json')).dependencies).toMatchObject({
        '@latchkey/integration-acme-chat': 'workspace:*',
      });
      expect(read('packages/server/src/plugins.ts')).toContain(
        "import acmeChat from '@latchkey/integration-acme-chat';",
      );

      expect(result.stdout).toContain('Settings → Integrations → Connect');
      expect(result.stdout).toContain('/oauth/callback');
      expect(result.stdout).toContain('LATCHKEY_BASE_URL_ACME_CHAT_OAUTH');

      const tests = run(process.execPath, [VITEST, 'run', '--reporter=verbose'], dir);
      expect(tests.status, tests.output).toBe(0);
      expect(tests.output).toContain('Acme Chat: credential conformance');
      expect(tests.output).toContain('credential type acmeChatOAuth');
      // The suite applied a fake access token and checked where it went.
      expect(tests.output).toMatch(/✓.*authenticate puts the secret of sample #0 only where it belongs/);
      expect(tests.output).toContain('Acme Chat: action conformance');
      expect(tests.output).toMatch(
        /Acme Chat app \(OAuth\).*sends the access token as "Authorization: Bearer <token>"/,
      );
      expect(tests.output).toContain('Acme Chat action, against a fake Acme Chat');
      expect(tests.output).not.toMatch(/skipped|todo/);
      const types = run(TSC, ['-p', 'tsconfig.json', '--noEmit', '--customConditions', 'development'], dir);
      expect(types.status, types.output).toBe(0);
      const lint = run(
        BIOME,
        ['check', 'packages/integrations/acme-chat', 'packages/server/src/plugins.ts'],
        root,
      );
      expect(lint.status, lint.output).toBe(0);

      // And they are real checks: a type that sends its access token somewhere else fails them.
      const file = path.join(dir, 'src', 'credentials.ts');
      const generated = readFileSync(file, 'utf8');
      writeFileSync(
        file,
        generated.replace(
          'pkce: true,',
          'pkce: true,\n    applyToken: (token, request) => ({ ...request, query: { access_token: token.accessToken } }),',
        ),
      );
      try {
        const broken = run(process.execPath, [VITEST, 'run', '--reporter=verbose'], dir);
        expect(broken.status, broken.output).not.toBe(0);
        expect(broken.output).toContain('the secret went into query:access_token, which is not declared');
      } finally {
        writeFileSync(file, generated);
      }
    },
    SLOW,
  );

  it(
    'takes every value as a flag, quoting whatever the names contain',
    () => {
      const result = generate(
        'quote-test',
        '--display-name',
        AWKWARD_NAME,
        '--node-type',
        'quoteTestNode',
        '--credential-type',
        'quoteTestToken',
        '--credential-display-name',
        "Quote's token",
        '--base-url',
        'https://api.quote.example/v2/',
        '--description',
        'Posts "quotes".',
      );
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      const index = read('packages/integrations/quote-test/src/index.ts');
      expect(index).toContain("nodeType: 'quoteTestNode',");
      expect(index).toContain("baseUrls: { default: 'https://api.quote.example/v2' },");
      expect(JSON.parse(read('packages/integrations/quote-test/package.json')).description).toBe(
        'Posts "quotes".',
      );
      const tests = run(
        process.execPath,
        [VITEST, 'run', '--reporter=verbose'],
        path.join(root, 'packages', 'integrations', 'quote-test'),
      );
      expect(tests.status, tests.output).toBe(0);
      expect(tests.output).toContain(`${AWKWARD_NAME}: credential conformance`);
    },
    SLOW,
  );

  describe('refuses, with a clear message and nothing written', () => {
    const cases: [string, string[], RegExp][] = [
      ['an upper-case id', ['Twilio'], /not a valid integration id/],
      ['an id with an underscore', ['twilio_sms'], /not a valid integration id/],
      ['an id with a trailing dash', ['twilio-'], /not a valid integration id/],
      ['an id starting with a digit', ['9lives'], /not a valid integration id/],
      ['an id with a scope', ['@acme/crm'], /not a valid integration id/],
      ['an id that is too long', ['a'.repeat(51)], /not a valid integration id/],
      ['no id', [], /give the integration's id/],
      ['an existing integration id', ['slack'], /already exists|already used/],
      [
        'a node type that is taken',
        ['acme-two', '--node-type', 'httpRequest'],
        /node type "httpRequest" clashes/,
      ],
      [
        'a credential type that is taken',
        ['acme-two', '--credential-type', 'sendgridApiKey'],
        /credential type "sendgridApiKey" clashes with "sendgridApiKey"/,
      ],
      [
        'a credential type that differs from a taken one only in case',
        ['acme-two', '--credential-type', 'slackbotToken'],
        /clashes with "slackBotToken"/,
      ],
      [
        'a credential type of an integration made with the generator',
        ['acme-two', '--credential-type', 'twilioApiCredentials'],
        /clashes with "twilioApiCredentials"/,
      ],
      [
        'a node type that is not camelCase',
        ['acme-two', '--node-type', 'acme-two'],
        /--node-type .* camelCase/,
      ],
      ['a credential type the template uses', ['acme-two', '--credential-type', 'field'], /already uses/],
      [
        'a credential type named like the fake service’s function',
        ['acme-two', '--credential-type', 'fakeAcmeTwo'],
        /already uses/,
      ],
      [
        'an id whose base URL variable is another integration’s',
        ['mailgun-eu'],
        /LATCHKEY_BASE_URL_MAILGUN_EU is already the "eu" base URL of "mailgun"/,
      ],
      ['a base URL that is not http(s)', ['acme-two', '--base-url', 'ftp://files.example.com'], /--base-url/],
      ['a base URL with a query', ['acme-two', '--base-url', 'https://api.example.com/?key=1'], /--base-url/],
      ['an empty display name', ['acme-two', '--display-name', ' '], /--display-name must not be empty/],
      [
        'an id whose base URL variable is an --oauth2 integration’s OAuth one',
        ['acme-chat-oauth'],
        /LATCHKEY_BASE_URL_ACME_CHAT_OAUTH is already the "oauth" base URL of "acme-chat"/,
      ],
      [
        'a misspelt flag, naming the one meant',
        ['acme-two', '--oauth'],
        /unknown flag --oauth \(did you mean --oauth2\?\)/,
      ],
      ['--oauth2 with a value', ['acme-two', '--oauth2=yes'], /--oauth2 is a switch and takes no value/],
      ['a flag without its value', ['acme-two', '--base-url'], /--base-url needs a value/],
    ];
    it.each(cases)('%s', (_what, args, message) => {
      const before = fingerprint();
      const result = generate(...args);
      expect(result.status).toBe(1);
      expect(result.stderr).toContain('refused, nothing was written');
      expect(result.stderr).toMatch(message);
      expect(fingerprint()).toBe(before);
    });

    it('a folder that already exists, even one that is not a plugin', () => {
      mkdirSync(path.join(root, 'packages', 'integrations', 'leftover'));
      const before = fingerprint();
      const result = generate('leftover');
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(/packages\/integrations\/leftover already exists/);
      expect(fingerprint()).toBe(before);
      expect(existsSync(path.join(root, 'packages', 'integrations', 'leftover', 'src'))).toBe(false);
    });

    it('an --oauth2 id whose OAuth base URL variable is another integration’s', () => {
      const other = path.join(root, 'packages', 'integrations', 'acme-talk-oauth', 'src');
      mkdirSync(other, { recursive: true });
      writeFileSync(
        path.join(other, 'index.ts'),
        "export default defineIntegration({ id: 'acme-talk-oauth', nodeType: 'acmeTalkOauth', baseUrls: { default: 'https://api.acme-talk-oauth.example' } });\n",
      );
      const before = fingerprint();
      const result = generate('acme-talk', '--oauth2');
      expect(result.status).toBe(1);
      expect(result.stderr).toContain('refused, nothing was written');
      expect(result.stderr).toMatch(
        /its oauth base URL variable LATCHKEY_BASE_URL_ACME_TALK_OAUTH is already the "default" base URL of "acme-talk-oauth"/,
      );
      expect(fingerprint()).toBe(before);
    });

    it('an id created by the first test of this file', () => {
      const before = fingerprint();
      const result = generate('acme-crm');
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(/acme-crm already exists/);
      expect(fingerprint()).toBe(before);
    });
  });
});
