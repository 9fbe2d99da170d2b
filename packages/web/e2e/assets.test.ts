import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertAccessible, callProcedure, openVisitor, signUpThroughPage, type Visitor } from './support/app';
import { chromiumArgs, chromiumPath, describeOnEachBackend } from './support/environment';
import { type RunningServer, startServer, webRoot } from './support/server';

// Issue 15, section 5: a cold load of the secrets page fetches only the chunks index.html names (the entry
// script and its modulepreloads), compressed; every other page's code comes when that page is first shown,
// with the shell in place and an accessible loading status meanwhile. Asserted on chunk names, never timings.

/** Chunks of the build that the secrets page must not need (each must exist, or the check would be empty). */
const LATER_CHUNKS = [
  'WorkflowEditorPage',
  'WorkflowsPage',
  'MembersPage',
  'IntegrationsPage',
  'AuditPage',
  'CreateSecretDialog',
  'SecretDialogs',
  'ImportN8nDialog',
];

const chunkName = (url: string) => new URL(url).pathname.replace(/^\/assets\//, '');
const isChunk = (names: string[], chunk: string) => names.some((name) => name.startsWith(`${chunk}-`));

/** The script responses of the page from now on: chunk file name and Content-Encoding. */
function recordScripts(page: Page): { name: string; encoding: string }[] {
  const scripts: { name: string; encoding: string }[] = [];
  page.on('response', (response) => {
    if (response.request().resourceType() === 'script')
      scripts.push({
        name: chunkName(response.url()),
        encoding: response.headers()['content-encoding'] ?? '',
      });
  });
  return scripts;
}

describeOnEachBackend('Assets in Chromium', (backend) => {
  describe(`assets in Chromium on ${backend.name}`, () => {
    const run = randomBytes(4).toString('hex');
    const secretName = `Assets bearer token ${run}`;
    const workflowName = `Assets workflow ${run}`;
    let server: RunningServer;
    let browser: Browser;
    let visitor: Visitor;
    let workspaceId = '';
    let scripts: { name: string; encoding: string }[] = [];

    beforeAll(async () => {
      server = await startServer(backend);
      browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
      // Set up in one browser context, measure in another: its cache is empty.
      const setup = await openVisitor(browser, server.url);
      workspaceId = await signUpThroughPage(setup.page, {
        name: 'Ada Assets',
        email: `ada-assets-${run}@example.com`,
        password: 'correct horse battery staple',
      });
      await callProcedure(
        setup.page,
        'secrets.create',
        {
          workspaceId,
          credentialType: 'httpBearerToken',
          name: secretName,
          data: { token: `fake-assets-token-${run}`, allowedDomains: 'api.example.com' },
        },
        'mutation',
      );
      await callProcedure(setup.page, 'workflows.create', { workspaceId, name: workflowName }, 'mutation');
      const { cookies } = await setup.context.storageState();
      await setup.context.close();
      visitor = await openVisitor(browser, server.url);
      await visitor.context.addCookies(cookies);
      scripts = recordScripts(visitor.page);
    });

    afterAll(async () => {
      await browser?.close();
      await server?.stop();
    });

    it('loads only the initial chunks, compressed, until the secrets are listed', async () => {
      const { page } = visitor;
      await page.goto(`/w/${workspaceId}/secrets`);
      await page.getByRole('cell', { name: secretName }).waitFor();
      const fetched = scripts.map((script) => script.name);

      const shell = await (await fetch(`${server.url}/`)).text();
      const initial = [
        ...shell.matchAll(
          /<(?:script[^>]*\bsrc|link[^>]*rel="modulepreload"[^>]*\bhref)="\/assets\/([^"]+\.js)"/g,
        ),
      ].map((match) => match[1]);
      expect(initial.length).toBeGreaterThan(0);
      expect([...fetched].sort()).toEqual([...initial].sort());

      const built = readdirSync(join(webRoot, 'dist/assets'));
      for (const chunk of LATER_CHUNKS) {
        expect(isChunk(built, chunk), `the build has a ${chunk} chunk`).toBe(true);
        expect(isChunk(fetched, chunk), `${chunk} is not fetched for the secrets page`).toBe(false);
      }
      for (const script of scripts) expect(['br', 'gzip'], script.name).toContain(script.encoding);
      await assertAccessible(page, 'the secrets page');
    });

    it('fetches a page’s chunk when it is first shown, with the shell and a loading status meanwhile', async () => {
      const { page } = visitor;
      // Hold the Workflows page's code back until the loading state has been checked.
      let release = () => {};
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      await page.route(/\/assets\/WorkflowsPage-[^/]+\.js$/, async (route) => {
        await held;
        await route.continue();
      });
      await page
        .getByRole('navigation', { name: 'Workspace sections' })
        .getByRole('link', { name: 'Workflows' })
        .click();
      await page.getByRole('status').filter({ hasText: 'Loading the page' }).waitFor();
      expect(await page.getByRole('navigation', { name: 'Workspace sections' }).isVisible()).toBe(true);
      await assertAccessible(page, 'a page whose code is on its way');
      release();
      await page.getByRole('heading', { name: 'Workflows', level: 1 }).waitFor();
      await page.unroute(/\/assets\/WorkflowsPage-[^/]+\.js$/);
      expect(
        isChunk(
          scripts.map((s) => s.name),
          'WorkflowsPage',
        ),
      ).toBe(true);
      expect(
        isChunk(
          scripts.map((s) => s.name),
          'WorkflowEditorPage',
        ),
      ).toBe(false);

      await page.getByRole('link', { name: workflowName }).click();
      await page.getByRole('heading', { name: workflowName, level: 1 }).waitFor();
      expect(
        isChunk(
          scripts.map((s) => s.name),
          'WorkflowEditorPage',
        ),
      ).toBe(true);
      await assertAccessible(page, 'the workflow editor');
      expect(visitor.errors).toEqual([]);
    });

    it('opens a dialog whose code comes on first use with the focus on its first field, and gives it back', async () => {
      const { page } = visitor;
      // (Its code may be here already: the earlier pointer over the page fetched it, src/ui/lazyDialog.tsx.)
      const opener = page.getByRole('button', { name: '+ New workspace' });
      await opener.click();
      const name = page.locator('dialog[open]').getByLabel('Workspace name');
      await name.waitFor();
      expect(await name.evaluate((input) => input === document.activeElement)).toBe(true);
      expect(
        isChunk(
          scripts.map((s) => s.name),
          'CreateWorkspaceForm',
        ),
      ).toBe(true);
      await assertAccessible(page, 'the create-workspace dialog');
      await page.keyboard.press('Escape');
      await expect.poll(() => page.locator('dialog[open]').count()).toBe(0);
      expect(await opener.evaluate((button) => button === document.activeElement)).toBe(true);
      expect(visitor.errors).toEqual([]);
    });
  });
});
