// Part `assets` of `pnpm bench` (issue 15, section 5): the JavaScript a browser needs before the secrets page is
// usable, target <= 100 kB gzip (kB = 1000 bytes, as Vite reports). Two rows: what the build's initial chunks
// weigh (index.html's entry script and its modulepreloads, raw / gzip / brotli, from the precompressed files
// the server sends), and what Chromium actually transferred (encoded body bytes of every script response) on
// a cold cache between navigating to /w/<id>/secrets and the secrets list being visible, once accepting only
// gzip and once with its own Accept-Encoding. The server is the real HTTP server, in this process, on an
// in-memory PGlite. Reported, never asserted (the exit code is the bench's).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { BENCH_SCRYPT, masterKeyFrom, newMasterKeyText, openTarget, server } from './lib.mjs';

const TARGET_KB = 100;
const webDist = fileURLToPath(new URL('../../web/dist', import.meta.url));
const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
// Only what headless Chromium needs here; the measured responses are the page's own scripts.
const chromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu'];
const kB = (bytes) => (bytes / 1000).toFixed(1);

/** The size of `file` as sent with `extension` (gz, br): its precompressed sibling, else gzip here or raw. */
function encodedSize(file, extension) {
  const sibling = `${file}.${extension}`;
  if (existsSync(sibling)) return statSync(sibling).size;
  return extension === 'gz' ? gzipSync(readFileSync(file), { level: 9 }).length : statSync(file).size;
}

/** Every script chunk of the build, and which of them index.html loads up front. */
function buildFigures(dist = webDist) {
  const html = readFileSync(path.join(dist, 'index.html'), 'utf8');
  const initial = new Set(
    [
      ...html.matchAll(
        /<(?:script[^>]*\bsrc|link[^>]*rel="modulepreload"[^>]*\bhref)="\/(assets\/[^"]+\.js)"/g,
      ),
    ].map((m) => m[1]),
  );
  const chunks = readdirSync(path.join(dist, 'assets'))
    .filter((name) => name.endsWith('.js'))
    .map((name) => {
      const file = path.join(dist, 'assets', name);
      return {
        name,
        initial: initial.has(`assets/${name}`),
        raw: statSync(file).size,
        gzip: encodedSize(file, 'gz'),
        br: encodedSize(file, 'br'),
      };
    })
    .sort((a, b) => b.gzip - a.gzip);
  return { chunks, initial: chunks.filter((chunk) => chunk.initial) };
}

const sum = (list, key) => list.reduce((total, item) => total + item[key], 0);

/** The real HTTP server (http/server.ts, as dist/main.js builds it) on an in-memory PGlite, serving the web build. */
async function startServer() {
  const database = await openTarget({ kind: 'pglite', dataDir: null });
  const svc = await server.app.createServices({
    database,
    keyProvider: masterKeyFrom(newMasterKeyText()),
    passwordCost: BENCH_SCRYPT,
  });
  const app = await server.http.buildHttpServer(svc, { webDir: webDist });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    url,
    async stop() {
      await app.close();
      await database.close();
    },
  };
}

/** Calls a tRPC procedure from inside the page, with its session cookie. */
function call(page, procedure, input, kind) {
  return page.evaluate(
    async ({ procedure, input, kind }) => {
      const response = await fetch(
        kind === 'query'
          ? `/trpc/${procedure}?input=${encodeURIComponent(JSON.stringify(input))}`
          : `/trpc/${procedure}`,
        kind === 'query'
          ? {}
          : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(input) },
      );
      if (!response.ok) throw new Error(`${procedure} answered ${response.status}`);
      return (await response.json()).result.data;
    },
    { procedure, input, kind },
  );
}

/**
 * Script responses (name, Content-Encoding, encoded body bytes) of a cold-cache load of the secrets page, until
 * the secret `name` is listed. `acceptEncoding` overrides the browser's own header when given.
 */
async function loadSecretsPage(browser, storageState, url, name, acceptEncoding) {
  const context = await browser.newContext({
    storageState,
    ...(acceptEncoding ? { extraHTTPHeaders: { 'accept-encoding': acceptEncoding } } : {}),
  });
  try {
    const page = await context.newPage();
    const scripts = [];
    page.on('response', (response) => {
      if (response.request().resourceType() === 'script') scripts.push(response);
    });
    await page.goto(url);
    await page.getByRole('cell', { name }).first().waitFor({ state: 'visible', timeout: 30_000 });
    const before = [...scripts];
    return Promise.all(
      before.map(async (response) => ({
        name: new URL(response.url()).pathname.replace(/^\/assets\//, ''),
        encoding: response.headers()['content-encoding'] ?? 'none',
        bytes: (await response.request().sizes()).responseBodySize,
      })),
    );
  } finally {
    await context.close();
  }
}

/** A signed-up owner with one secret, then two cold loads of their secrets page (gzip only; Chromium's own). */
async function measureTransfer() {
  const { chromium } = await import('playwright-core');
  const web = await startServer();
  try {
    const browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
    try {
      const setup = await browser.newContext();
      const page = await setup.newPage();
      await page.goto(`${web.url}/signin`);
      await call(
        page,
        'auth.signUp',
        { name: 'Bench Assets', email: 'bench-assets@example.com', password: 'correct horse battery staple' },
        'mutation',
      );
      const me = await call(page, 'auth.me', null, 'query');
      const workspaceId = me.workspaces[0].id;
      const secretName = 'Bench assets bearer token';
      await call(
        page,
        'secrets.create',
        {
          workspaceId,
          credentialType: 'httpBearerToken',
          name: secretName,
          data: { token: 'fake-bearer-token-for-bench', allowedDomains: '127.0.0.1' },
        },
        'mutation',
      );
      const storageState = await setup.storageState();
      await setup.close();
      const secretsUrl = `${web.url}/w/${encodeURIComponent(workspaceId)}/secrets`;
      return {
        gzip: await loadSecretsPage(browser, storageState, secretsUrl, secretName, 'gzip'),
        own: await loadSecretsPage(browser, storageState, secretsUrl, secretName),
      };
    } finally {
      await browser.close();
    }
  } finally {
    await web.stop();
  }
}

export async function measureAssets({ log }) {
  const rows = [];
  if (!existsSync(path.join(webDist, 'index.html'))) {
    log(`assets: ${webDist} is missing (pnpm build first): skipped`);
    return rows;
  }
  const figures = buildFigures();
  const initialGzip = sum(figures.initial, 'gzip');
  rows.push({
    kind: 'report',
    operation: 'web: JavaScript chunks index.html loads up front (Vite build)',
    backend: 'web',
    unit: 'bytes',
    value: { initial: figures.initial, all: figures.chunks },
    target: `<= ${TARGET_KB} kB gzip`,
    met: initialGzip <= TARGET_KB * 1000,
    notes: `${figures.chunks.length} chunks in all, ${kB(sum(figures.chunks, 'gzip'))} kB gzip together`,
    display: `${figures.initial.length} chunks: ${kB(sum(figures.initial, 'raw'))} kB raw, ${kB(initialGzip)} kB gzip, ${kB(sum(figures.initial, 'br'))} kB brotli (${figures.initial.map((c) => `${c.name} ${kB(c.gzip)}`).join(', ')})`,
  });

  if (!existsSync(chromiumPath)) {
    log(`assets: no Chromium at ${chromiumPath} (set CHROMIUM_PATH): the browser row is skipped`);
    return rows;
  }
  const operation = 'web: JavaScript the browser transferred before the secrets page is usable (cold cache)';
  const target = `<= ${TARGET_KB} kB gzip`;
  try {
    const { gzip, own } = await measureTransfer();
    const gzipBytes = sum(gzip, 'bytes');
    const ownEncodings = [...new Set(own.map((s) => s.encoding))].join(', ');
    rows.push({
      kind: 'report',
      operation,
      backend: 'web',
      unit: 'bytes',
      value: { gzip, browserDefault: own },
      target,
      met: gzipBytes <= TARGET_KB * 1000 && gzip.every((s) => s.encoding === 'gzip'),
      notes: 'encoded body bytes of every script response until the first secret is listed (Chromium)',
      display: `${gzip.length} scripts, ${kB(gzipBytes)} kB accepting gzip; ${kB(sum(own, 'bytes'))} kB with Chromium's own Accept-Encoding (${ownEncodings}) — ${gzip.map((s) => s.name).join(', ')}`,
    });
  } catch (error) {
    // Reported, like the OAuth2 rows, rather than crashing the bench.
    rows.push({
      kind: 'report',
      operation,
      backend: 'web',
      target,
      notes: `not measured: ${error.message}`,
      display: `not measured: ${error.message}`,
    });
  }
  return rows;
}
