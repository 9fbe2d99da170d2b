#!/usr/bin/env node
// pnpm new-integration <id> [--oauth2] [--display-name …] [--node-type …] [--credential-type …]
//                           [--credential-display-name …] [--base-url …] [--description …] [--root <dir>]
//
// Writes packages/integrations/<id> from scripts/templates/integration (the same layout as every other
// plugin), adds it to the server's plugin list and dependencies, and prints the next steps. A value not given
// as a flag is asked for when stdin is a terminal, and derived from the id otherwise. Anything that would
// clash with an existing integration is refused before a single file is written.
//
// With --oauth2 the credential type is an OAuth2 one (authorization code with PKCE) instead of an API key:
// a template `<name>.oauth2.<ext>.tmpl` then replaces `<name>.<ext>.tmpl`, and `{{#if oauth2}} … {{else}} …
// {{/if}}` lines choose between the two forms inside the templates they share.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const SCRIPT_DIR = path.dirname(fileURLToPath(import.meta.url));
const TEMPLATE_DIR = path.join(SCRIPT_DIR, 'templates', 'integration');

// The registry's own rules (packages/core/src/registry.ts), checked here so a refusal comes before any file.
const INTEGRATION_ID = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;
const CAMEL_CASE = /^[a-z][a-zA-Z0-9]*$/;
const MAX_ID = 50;

const RESERVED_WORDS = new Set(
  (
    'await break case catch class const continue debugger default delete do else enum export extends false ' +
    'finally for function if implements import in instanceof interface let new null package private protected ' +
    'public return static super switch this throw true try typeof var void while with yield arguments eval ' +
    'undefined NaN Infinity'
  ).split(' '),
);
/** Names the generated files import or declare themselves: a credential type named like one would not compile. */
const TEMPLATE_NAMES = new Set([
  'applyCredential',
  'bearerAuthorization',
  'createRegistry',
  'oauth2Fields',
  'requestedScopes',
  'registry',
  'oauth2',
  'answer',
  'account',
  'client',
  'fields',
  'typed',
  'token',
  'defineCredentialType',
  'defineIntegration',
  'field',
  'joinUrl',
  'withHeader',
  'z',
  'ActionContext',
  'ActionResult',
  'Params',
  'ctx',
  'describe',
  'expect',
  'it',
  'describeCredentialConformance',
  'describeActionConformance',
  'fakeContext',
  'afterAll',
  'beforeAll',
  'beforeEach',
  'answerJson',
  'performRequest',
  'fake',
  'send',
  'test',
  'rejected',
  'result',
  'request',
  'credential',
  'FakeService',
  'HttpResponse',
  'OutgoingRequest',
  'RequestContext',
]);

class Refusal extends Error {}

// ---------------------------------------------------------------------------------------------------------
// Names

const words = (id) => id.split('-');
const camelCase = (id) =>
  words(id)
    .map((word, i) => (i === 0 ? word : word.charAt(0).toUpperCase() + word.slice(1)))
    .join('');
const pascalCase = (id) => {
  const camel = camelCase(id);
  return camel.charAt(0).toUpperCase() + camel.slice(1);
};
const titleCase = (id) =>
  words(id)
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join(' ');

/** `LATCHKEY_BASE_URL_<ID>[_<VARIANT>]`, as `baseUrlVariable` in packages/core/src/http.ts computes it. */
function baseUrlVariable(id, variant = 'default') {
  const name = id.toUpperCase().replace(/[^A-Z0-9]/g, '_');
  return variant === 'default'
    ? `LATCHKEY_BASE_URL_${name}`
    : `LATCHKEY_BASE_URL_${name}_${variant.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/** The credential type's name and title: an API key, or with --oauth2 an app connected through OAuth2. */
const credentialTypeFor = (nodeType, oauth2) => `${nodeType}${oauth2 ? 'OAuth' : 'ApiKey'}`;
const credentialDisplayNameFor = (displayName, oauth2) =>
  `${displayName} ${oauth2 ? 'app (OAuth)' : 'API key'}`;

/** With --oauth2: the base URL variant of the authorization server (its /oauth/authorize and /oauth/token). */
const OAUTH_VARIANT = 'oauth';
const authBaseUrlFor = (id) => `https://auth.${id}.com`;

function defaultsFor(id, oauth2 = false) {
  const displayName = titleCase(id);
  return {
    displayName,
    nodeType: camelCase(id),
    credentialType: credentialTypeFor(camelCase(id), oauth2),
    credentialDisplayName: credentialDisplayNameFor(displayName, oauth2),
    baseUrl: `https://api.${id}.com`,
    description: `Call the ${displayName} API from a workflow.`,
  };
}

// ---------------------------------------------------------------------------------------------------------
// What already exists

function readText(file) {
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

function sourceFiles(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [full] : [];
  });
}

/**
 * The integrations in packages/integrations, read from their sources: ids, node types, credential types and
 * base URL variants. (The plugins are TypeScript, which this plain Node script cannot import.)
 */
export function existingIntegrations(root) {
  const dir = path.join(root, 'packages', 'integrations');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((name) => statSync(path.join(dir, name)).isDirectory())
    .map((folder) => {
      const packageDir = path.join(dir, folder);
      const sources = sourceFiles(path.join(packageDir, 'src')).map(readText);
      const integration = sources.find((s) => s.includes('defineIntegration(')) ?? '';
      const declaration = integration.slice(integration.indexOf('defineIntegration('));
      const credentialTypes = sources.flatMap((source) =>
        source
          .split('defineCredentialType(')
          .slice(1)
          .map((after) => /\btype:\s*['"]([^'"]+)['"]/.exec(after)?.[1])
          .filter(Boolean),
      );
      const baseUrls = /\bbaseUrls:\s*\{([^}]*)\}/.exec(declaration)?.[1] ?? '';
      let packageName = '';
      try {
        packageName = JSON.parse(readText(path.join(packageDir, 'package.json'))).name ?? '';
      } catch {
        packageName = '';
      }
      return {
        folder,
        packageName,
        id: /\bid:\s*['"]([^'"]+)['"]/.exec(declaration)?.[1] ?? folder,
        nodeType: /\bnodeType:\s*['"]([^'"]+)['"]/.exec(declaration)?.[1],
        credentialTypes,
        variants: [...baseUrls.matchAll(/([A-Za-z_$][\w$]*|['"][^'"]+['"])\s*:/g)].map((m) =>
          m[1].replace(/['"]/g, ''),
        ),
      };
    });
}

// ---------------------------------------------------------------------------------------------------------
// Checks

function hasControlCharacters(text) {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  return /[\u0000-\u001f\u007f]/.test(text);
}

function checkText(value, what) {
  if (typeof value !== 'string' || value.trim() === '') throw new Refusal(`${what} must not be empty`);
  if (hasControlCharacters(value)) throw new Refusal(`${what} must be one line without control characters`);
  if (value.length > 120) throw new Refusal(`${what} must be at most 120 characters`);
}

function normalizeBaseUrl(value) {
  let url;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:') || !url.host)
    throw new Refusal(`--base-url "${value}" must be an http:// or https:// URL`);
  if (/['"`\\\s]/.test(value) || url.search || url.hash || url.username || url.password)
    throw new Refusal(
      `--base-url "${value}" must be a plain URL (no quotes, spaces, query, fragment or user)`,
    );
  return value.replace(/\/+$/, '');
}

/** Every reason the integration cannot be created as asked; empty when it can. */
export function clashes(root, options) {
  const problems = [];
  const { id, nodeType, credentialType } = options;
  const existing = existingIntegrations(root);
  if (existsSync(path.join(root, 'packages', 'integrations', id)))
    problems.push(`packages/integrations/${id} already exists`);
  const packageName = `@latchkey/integration-${id}`;
  // Every base URL variable the new integration reads: its default, and with --oauth2 its OAuth variant's.
  const newVariables = new Map(
    (options.oauth2 ? ['default', OAUTH_VARIANT] : ['default']).map((variant) => [
      baseUrlVariable(id, variant),
      variant,
    ]),
  );
  for (const other of existing) {
    const name = `"${other.id}" (packages/integrations/${other.folder})`;
    if (other.id === id || other.packageName === packageName)
      problems.push(`the id "${id}" is already used by ${name}`);
    if (other.nodeType && other.nodeType.toLowerCase() === nodeType.toLowerCase())
      problems.push(`the node type "${nodeType}" clashes with "${other.nodeType}" of ${name}`);
    for (const type of other.credentialTypes)
      if (type.toLowerCase() === credentialType.toLowerCase())
        problems.push(`the credential type "${credentialType}" clashes with "${type}" of ${name}`);
    for (const variant of other.variants.length ? other.variants : ['default']) {
      const variable = baseUrlVariable(other.id, variant);
      if (other.id !== id && newVariables.has(variable))
        problems.push(
          `its ${newVariables.get(variable) === 'default' ? '' : `${newVariables.get(variable)} `}base URL variable ${variable} is already the "${variant}" base URL of ${name}`,
        );
    }
  }
  return [...new Set(problems)];
}

export function checkId(id) {
  if (typeof id !== 'string' || !INTEGRATION_ID.test(id) || id.length > MAX_ID)
    throw new Refusal(
      `"${id ?? ''}" is not a valid integration id: use lower-case letters and digits, words joined by "-", ` +
        `starting with a letter, at most ${MAX_ID} characters (it becomes the package @latchkey/integration-<id>)`,
    );
}

export function checkOptions(options) {
  const { id } = options;
  checkId(id);
  for (const [key, flag] of [
    ['nodeType', '--node-type'],
    ['credentialType', '--credential-type'],
  ]) {
    if (!CAMEL_CASE.test(options[key] ?? '') || options[key].length > 64)
      throw new Refusal(
        `${flag} "${options[key] ?? ''}" must be camelCase (e.g. ${camelCase(id)}), at most 64 characters`,
      );
  }
  if (
    RESERVED_WORDS.has(options.credentialType) ||
    TEMPLATE_NAMES.has(options.credentialType) ||
    options.credentialType === fakeName(id)
  )
    throw new Refusal(
      `--credential-type "${options.credentialType}" is a name the generated code already uses`,
    );
  checkText(options.displayName, '--display-name');
  checkText(options.credentialDisplayName, '--credential-display-name');
  checkText(options.description, '--description');
  return { ...options, oauth2: options.oauth2 === true, baseUrl: normalizeBaseUrl(options.baseUrl) };
}

// ---------------------------------------------------------------------------------------------------------
// Rendering

const singleQuoted = (text) => text.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
const templateLiteral = (text) => text.replace(/\\/g, '\\\\').replace(/`/g, '\\`').replace(/\$\{/g, '\\${');
const bySpecifier = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

/** The function of src/fake-<id>.ts that starts the fake service. */
const fakeName = (id) => `fake${pascalCase(id)}`;

function templateValues(options) {
  const identifier = RESERVED_WORDS.has(camelCase(options.id))
    ? `${camelCase(options.id)}Integration`
    : camelCase(options.id);
  const actionName = `run${pascalCase(options.id)}`;
  return {
    ...options,
    identifier,
    actionName,
    fakeName: fakeName(options.id),
    baseUrlVariable: baseUrlVariable(options.id),
    authBaseUrl: authBaseUrlFor(options.id),
    authBaseUrlVariable: baseUrlVariable(options.id, OAUTH_VARIANT),
    actionImports: [actionName, `${identifier}Params`].sort(bySpecifier).join(', '),
    indexExports: [options.credentialType, `${identifier}Params`].sort(bySpecifier).join(', '),
    credentialTestImports: [options.credentialType, identifier].sort(bySpecifier).join(', '),
  };
}

/**
 * Keeps the lines of `{{#if <flag>}} … {{else}} … {{/if}}` blocks (each marker alone on its line) that the
 * flag chooses, and drops the markers. Blocks do not nest.
 */
function chooseBlocks(template, values) {
  const kept = [];
  let block; // { flag, keep, inElse } inside a block
  for (const line of template.split('\n')) {
    const marker = /^\s*\{\{(#if (\w+)|else|\/if)\}\}\s*$/.exec(line);
    if (!marker) {
      if (!block || block.keep) kept.push(line);
      continue;
    }
    if (marker[2]) {
      if (block) throw new Error(`template block {{#if ${marker[2]}}} inside {{#if ${block.flag}}}`);
      if (typeof values[marker[2]] !== 'boolean') throw new Error(`template flag ${marker[2]} has no value`);
      block = { flag: marker[2], keep: values[marker[2]], inElse: false };
    } else if (!block || (marker[1] === 'else' && block.inElse)) {
      throw new Error(`template has a stray {{${marker[1]}}}`);
    } else if (marker[1] === 'else') {
      block = { ...block, keep: !block.keep, inElse: true };
    } else {
      block = undefined;
    }
  }
  if (block) throw new Error(`template block {{#if ${block.flag}}} is not closed`);
  return kept.join('\n');
}

function render(template, values) {
  return chooseBlocks(template, values).replace(/\{\{(\w+)(?::(\w+))?\}\}/g, (_match, name, modifier) => {
    const value = values[name];
    if (typeof value !== 'string') throw new Error(`template placeholder {{${name}}} has no value`);
    if (modifier === 'sq') return singleQuoted(value);
    if (modifier === 'tl') return templateLiteral(value);
    if (modifier === 'json') return JSON.stringify(value);
    if (modifier) throw new Error(`unknown template modifier ${modifier}`);
    return value;
  });
}

function allTemplateFiles(dir = TEMPLATE_DIR, prefix = '') {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const relative = path.join(prefix, entry.name);
    if (entry.isDirectory()) return allTemplateFiles(path.join(dir, entry.name), relative);
    return entry.name.endsWith('.tmpl') ? [relative] : [];
  });
}

/** `credentials.oauth2.ts.tmpl` is the OAuth2 form of `credentials.ts.tmpl`. */
const OAUTH2_VARIANT = /\.oauth2(?=\.)/;

/**
 * The templates to render, each with the file it becomes (placeholders still in its name): with --oauth2 a
 * `.oauth2.` template replaces its plain namesake; without, the `.oauth2.` ones are left out.
 */
function templateFiles(oauth2) {
  const all = allTemplateFiles();
  const variants = new Set(
    all.filter((f) => OAUTH2_VARIANT.test(f)).map((f) => f.replace(OAUTH2_VARIANT, '')),
  );
  return all
    .filter((f) => (OAUTH2_VARIANT.test(f) ? oauth2 : !(oauth2 && variants.has(f))))
    .map((template) => ({ template, output: template.replace(OAUTH2_VARIANT, '').replace(/\.tmpl$/, '') }));
}

/** plugins.ts with the import (in order) and the list entry added. */
export function addToPluginList(source, identifier, packageName) {
  const list = /export const plugins: IntegrationDefinition\[\] = \[([^\]]*)\];/.exec(source);
  if (!list)
    throw new Refusal(
      'packages/server/src/plugins.ts has no `export const plugins: IntegrationDefinition[] = [...]` list to add to',
    );
  const entries = list[1]
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  if (entries.includes(identifier) || new RegExp(`\\bimport\\s+${identifier}\\b`).test(source))
    throw new Refusal(`packages/server/src/plugins.ts already has a plugin named ${identifier}`);
  const lines = source.split('\n');
  const importLine = `import ${identifier} from '${packageName}';`;
  const imports = lines
    .map((line, index) => ({ line, index, from: /^import .* from '([^']+)';$/.exec(line)?.[1] }))
    .filter((entry) => entry.from);
  const after = imports.filter((entry) => entry.from < packageName).at(-1);
  const at = after ? after.index + 1 : (imports[0]?.index ?? 0);
  lines.splice(at, 0, importLine);
  const withImport = lines.join('\n');
  const all = [...entries, identifier];
  const oneLine = `export const plugins: IntegrationDefinition[] = [${all.join(', ')}];`;
  const listText =
    oneLine.length <= 110
      ? oneLine
      : `export const plugins: IntegrationDefinition[] = [\n${all.map((e) => `  ${e},`).join('\n')}\n];`;
  return withImport.replace(/export const plugins: IntegrationDefinition\[\] = \[[^\]]*\];/, listText);
}

/** The server's package.json with the new dependency, dependencies kept in alphabetical order. */
export function addServerDependency(source, packageName) {
  const manifest = JSON.parse(source);
  if (manifest.dependencies?.[packageName])
    throw new Refusal(`packages/server/package.json already depends on ${packageName}`);
  const dependencies = { ...manifest.dependencies, [packageName]: 'workspace:*' };
  manifest.dependencies = Object.fromEntries(
    Object.keys(dependencies)
      .sort(bySpecifier)
      .map((name) => [name, dependencies[name]]),
  );
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

// ---------------------------------------------------------------------------------------------------------
// Writing

/** Everything to write, computed (and every refusal raised) before anything touches the disk. */
export function plan(root, options) {
  const checked = checkOptions(options);
  const problems = clashes(root, checked);
  if (problems.length) throw new Refusal(problems.join('\n  '));
  const values = templateValues(checked);
  const packageName = `@latchkey/integration-${checked.id}`;
  const target = path.join(root, 'packages', 'integrations', checked.id);
  const pluginsFile = path.join(root, 'packages', 'server', 'src', 'plugins.ts');
  const serverManifest = path.join(root, 'packages', 'server', 'package.json');
  for (const file of [pluginsFile, serverManifest])
    if (!existsSync(file)) throw new Refusal(`${path.relative(root, file)} is missing`);
  const files = templateFiles(checked.oauth2).map(({ template, output }) => ({
    // File names may hold placeholders too (src/fake-{{id}}.ts).
    file: path.join(target, render(output, values)),
    content: render(readFileSync(path.join(TEMPLATE_DIR, template), 'utf8'), values),
  }));
  return {
    values,
    packageName,
    target,
    files,
    edits: [
      { file: pluginsFile, before: readFileSync(pluginsFile, 'utf8') },
      { file: serverManifest, before: readFileSync(serverManifest, 'utf8') },
    ].map((edit, index) => ({
      ...edit,
      after:
        index === 0
          ? addToPluginList(edit.before, values.identifier, packageName)
          : addServerDependency(edit.before, packageName),
    })),
  };
}

/** Writes the plan; if anything fails half-way, removes the package and restores the edited files. */
export function write(work) {
  try {
    // Not recursive for the package folder itself: if it appeared since the checks, this fails instead of merging.
    mkdirSync(path.dirname(work.target), { recursive: true });
    mkdirSync(work.target);
    for (const { file, content } of work.files) {
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, content, { flag: 'wx' });
    }
    for (const edit of work.edits) writeFileSync(edit.file, edit.after);
  } catch (error) {
    rmSync(work.target, { recursive: true, force: true });
    for (const edit of work.edits) writeFileSync(edit.file, edit.before);
    throw error;
  }
}

/** Formats what was written with the repository's Biome, when it is installed (it is after `pnpm install`). */
function format(root, work) {
  const biome = path.join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'biome.cmd' : 'biome');
  if (!existsSync(biome)) return 'Biome is not installed here: run `pnpm format` after `pnpm install`.';
  const result = spawnSync(
    biome,
    ['check', '--write', '--no-errors-on-unmatched', work.target, ...work.edits.map((e) => e.file)],
    { cwd: root, encoding: 'utf8' },
  );
  return result.status === 0 ? '' : 'Biome could not format the new files: run `pnpm format` to see why.';
}

// ---------------------------------------------------------------------------------------------------------
// Command line

const FLAGS = {
  'display-name': 'displayName',
  'node-type': 'nodeType',
  'credential-type': 'credentialType',
  'credential-display-name': 'credentialDisplayName',
  'base-url': 'baseUrl',
  description: 'description',
};

const QUESTIONS = {
  id: 'Integration id (lower-case, words joined by "-")',
  displayName: 'Display name',
  nodeType: 'Node type (camelCase)',
  credentialType: 'Credential type (camelCase, globally unique)',
  credentialDisplayName: 'Credential display name',
  baseUrl: 'Base URL of the API',
  description: 'Description (one sentence)',
};

const USAGE = `Usage: pnpm new-integration <id> [--oauth2] [options]

Creates packages/integrations/<id> (@latchkey/integration-<id>) and adds it to the server's plugin list.

  --oauth2                          an OAuth2 credential type (authorization code with PKCE, connected in
                                    Settings → Integrations) instead of an API key
  --display-name <text>             e.g. "Twilio"              (default: from the id)
  --node-type <camelCase>           e.g. twilio                (default: the id in camelCase)
  --credential-type <camelCase>     e.g. twilioApiKey          (default: <nodeType>ApiKey, with --oauth2 <nodeType>OAuth)
  --credential-display-name <text>  e.g. "Twilio API key"      (default: "<display name> API key",
                                                                with --oauth2 "<display name> app (OAuth)")
  --base-url <url>                  e.g. https://api.twilio.com (default: https://api.<id>.com)
  --description <text>              one sentence for the node picker
  --root <dir>                      the repository to write into (default: this one)

Missing values are asked for when run in a terminal; otherwise the defaults are used. With --oauth2 the
authorization server is https://auth.<id>.com (/oauth/authorize, /oauth/token), the "oauth" base URL.`;

const BOOLEAN_FLAGS = ['oauth2', 'help'];

/** Asks for each missing value in turn; each default follows the answers given so far. */
async function ask(keys, defaultsAfter) {
  const answers = {};
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  // Ctrl+C or Ctrl+D while asking: nothing has been written yet, so stopping is always safe.
  const cancelled = new Promise((_resolve, reject) => {
    rl.once('SIGINT', () => reject(new Refusal('cancelled')));
    rl.once('close', () => reject(new Refusal('cancelled')));
  });
  try {
    for (const key of keys) {
      const fallback = defaultsAfter(answers)[key] ?? '';
      const question = rl.question(`${QUESTIONS[key]}${fallback ? ` [${fallback}]` : ''}: `);
      const answer = String(await Promise.race([question, cancelled])).trim();
      answers[key] = answer || fallback;
    }
  } catch (error) {
    throw error?.code === 'ABORT_ERR' ? new Refusal('cancelled') : error;
  } finally {
    cancelled.catch(() => {});
    rl.close();
  }
  return answers;
}

function nextSteps(root, work, formatNote) {
  const v = work.values;
  const rel = (file) => path.relative(root, file) || '.';
  const credentials = rel(path.join(work.target, 'src', 'credentials.ts'));
  const makeReal = v.oauth2
    ? `${credentials} (endpoints, default scopes, account, test request)`
    : `${credentials} (fields, authenticate, test request)`;
  const baseUrls = v.oauth2
    ? `Base URLs: ${v.baseUrl} (overridable with ${v.baseUrlVariable}),
     authorization server ${v.authBaseUrl} (overridable with ${v.authBaseUrlVariable}).`
    : `Base URL: ${v.baseUrl} (overridable with ${v.baseUrlVariable}).`;
  const inTheUi = v.oauth2
    ? `Register an app with ${v.displayName} whose redirect URI is <LATCHKEY_PUBLIC_URL>/oauth/callback
       (http://127.0.0.1:3000/oauth/callback by default), then Settings → Integrations → Connect:
       "${v.credentialDisplayName}" has its form (client ID, client secret, scopes) and opens the consent screen;`
    : `Settings → Secrets & API Keys → New secret: "${v.credentialDisplayName}" has its form;`;
  return `Created ${work.packageName} in ${rel(work.target)}:
${work.files.map((f) => `  + ${rel(f.file)}`).join('\n')}
  ~ ${rel(work.edits[0].file)} (import and list entry)
  ~ ${rel(work.edits[1].file)} (dependency)${formatNote ? `\n  (${formatNote})` : ''}

Next steps:
  1. pnpm install
       links the new package into the workspace (and updates pnpm-lock.yaml).
  2. pnpm --filter ${work.packageName} test
       the conformance suite and the package's own tests; they pass as generated.
  3. Make it real: ${makeReal}
     and ${rel(path.join(work.target, 'src', 'action.ts'))} (params, what the node does); keep the tests green.
     ${baseUrls}
  4. pnpm start, open http://127.0.0.1:3000:
       ${inTheUi}
       Workflows → a workflow → Add node: "${v.displayName}" is offered, and only ${v.credentialDisplayName} secrets are selectable for it.
  Guide: docs/integrations.md`;
}

/** Defaults derived from the id and from whatever was already given (flags, earlier answers). */
function defaultsFrom(id, given, oauth2) {
  const base = defaultsFor(id, oauth2);
  const displayName = given.displayName ?? base.displayName;
  const nodeType = given.nodeType ?? base.nodeType;
  return {
    ...base,
    displayName,
    nodeType,
    credentialType: credentialTypeFor(nodeType, oauth2),
    credentialDisplayName: credentialDisplayNameFor(displayName, oauth2),
    description: `Call the ${displayName} API from a workflow.`,
    ...given,
  };
}

const OPTIONS = {
  ...Object.fromEntries([...Object.keys(FLAGS), 'root'].map((flag) => [flag, { type: 'string' }])),
  ...Object.fromEntries(BOOLEAN_FLAGS.map((flag) => [flag, { type: 'boolean' }])),
  help: { type: 'boolean', short: 'h' },
};

/** The flag closest to a mistyped one (`--oauth`, `--OAuth2`, `--oauth-2` → `--oauth2`), if any is close. */
function closestFlag(given) {
  const plain = (name) => name.toLowerCase().replace(/[^a-z0-9]/g, '');
  const wanted = plain(given);
  if (!wanted) return undefined;
  return Object.keys(OPTIONS).find((name) => {
    const known = plain(name);
    return known === wanted || (wanted.length >= 4 && (known.startsWith(wanted) || wanted.startsWith(known)));
  });
}

/** The command line, with a refusal naming the flag for anything parseArgs does not take. */
function parseCommandLine(argv) {
  try {
    return parseArgs({ args: argv, allowPositionals: true, options: OPTIONS });
  } catch (error) {
    if (!String(error?.code).startsWith('ERR_PARSE_ARGS')) throw error;
    const flag = /'(-[^'\s]*)/.exec(error.message)?.[1] ?? '';
    const name = flag.replace(/^-+/, '').replace(/=.*$/, '');
    let message;
    if (error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const close = closestFlag(name);
      message = `unknown flag ${flag}${close ? ` (did you mean --${close}?)` : ''}`;
    } else if (BOOLEAN_FLAGS.includes(name)) {
      message = `--${name} is a switch and takes no value (write --${name} alone)`;
    } else if (OPTIONS[name]) {
      message = `--${name} needs a value (--${name} <${name === 'root' ? 'dir' : 'value'}>)`;
    } else {
      message = error.message;
    }
    throw new Refusal(`${message}\n\n${USAGE}`);
  }
}

export async function main(argv = process.argv.slice(2)) {
  const { values: flags, positionals } = parseCommandLine(argv);
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length > 1)
    throw new Refusal(`expected one id, got "${positionals.join(' ')}"\n\n${USAGE}`);
  const root = path.resolve(flags.root ?? path.join(SCRIPT_DIR, '..'));
  const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  let id = positionals[0];
  if (!id && interactive) id = (await ask(['id'], () => ({}))).id;
  if (!id) throw new Refusal(`give the integration's id\n\n${USAGE}`);
  checkId(id);

  const given = Object.fromEntries(
    Object.entries(FLAGS)
      .filter(([flag]) => flags[flag] !== undefined)
      .map(([flag, key]) => [key, flags[flag]]),
  );
  const missing = Object.keys(FLAGS)
    .map((flag) => FLAGS[flag])
    .filter((key) => given[key] === undefined);
  const oauth2 = flags.oauth2 === true;
  const answers =
    interactive && missing.length
      ? await ask(missing, (sofar) => defaultsFrom(id, { ...given, ...sofar }, oauth2))
      : {};
  const options = { ...defaultsFrom(id, { ...given, ...answers }, oauth2), id, oauth2 };

  const work = plan(root, options);
  write(work);
  console.log(nextSteps(root, work, format(root, work)));
  return 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => process.exit(code),
    (error) => {
      if (error instanceof Refusal) {
        console.error(`new-integration: refused, nothing was written:\n  ${error.message}`);
        process.exit(1);
      }
      console.error(error);
      process.exit(2);
    },
  );
}
