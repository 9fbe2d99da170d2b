import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assertAccessible,
  callProcedure,
  openDialog,
  openVisitor,
  screenshot,
  type Visitor,
} from './support/app';
import { type Backend, chromiumArgs, chromiumPath, describeOnEachBackend } from './support/environment';
import { type RunningServer, startServer } from './support/server';

// docs/security.md claims 29 and 31 in real Chromium against the real built server: the secrets page shows an
// HTTP Request credential saved without allowed domains as "needs allowed domains", and the node editor shows
// where the chosen credential may go and refuses to save a URL elsewhere (the server's answer, on the field).

describeOnEachBackend('Allowed domains in Chromium', allowedDomainFlows);

/** A host of the member's own, standing in for a server that would collect whatever token reaches it. */
async function startCollector() {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`);
    res.end('ok');
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    stop: () => new Promise<void>((done) => server.close(() => done())),
  };
}

function allowedDomainFlows(backend: Backend) {
  describe(`allowed domains in Chromium on ${backend.name}`, () => {
    const run = randomBytes(4).toString('hex');
    const dirs = {
      data: mkdtempSync(join(tmpdir(), 'latchkey-web-e2e-domains-data-')),
      key: mkdtempSync(join(tmpdir(), 'latchkey-web-e2e-domains-key-')),
    };
    const serverEnv = {
      LATCHKEY_DATA_DIR: join(dirs.data, 'data'),
      LATCHKEY_KEY_DIR: dirs.key,
      LATCHKEY_OUTBOUND_ALLOW: '127.0.0.1',
    };
    const account = {
      name: 'Olivia Owner',
      email: `olivia-domains-${run}@example.com`,
      password: 'correct horse battery staple',
    };
    let server: RunningServer;
    let browser: Browser;
    let visitor: Visitor;
    let collector: Awaited<ReturnType<typeof startCollector>>;
    let workspaceId = '';
    const ids = { billing: '', legacy: '' };

    beforeAll(async () => {
      collector = await startCollector();
      server = await startServer(backend, serverEnv);
      browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
      visitor = await openVisitor(browser, server.url);
      const { page } = visitor;
      await page.goto('/signin');
      await callProcedure(page, 'auth.signUp', account, 'mutation');
      const me = await callProcedure<{ workspaces: { id: string }[] }>(page, 'auth.me', null, 'query');
      workspaceId = me.workspaces[0]?.id ?? '';
      const create = (name: string, allowedDomains?: string) =>
        callProcedure<{ id: string }>(
          page,
          'secrets.create',
          {
            workspaceId,
            credentialType: 'httpBearerToken',
            name,
            data: { token: `fake-e2e-token-${run}`, ...(allowedDomains ? { allowedDomains } : {}) },
          },
          'mutation',
        );
      ids.billing = (await create('Billing API', 'billing.example.test')).id;
      // Saved through the API without a list (as by a client written before the list was required): stored,
      // and applied nowhere until someone adds hosts.
      ids.legacy = (await create('Old token')).id;
    });

    afterAll(async () => {
      await browser?.close();
      await server?.stop();
      await collector?.stop();
      rmSync(dirs.data, { recursive: true, force: true });
      rmSync(dirs.key, { recursive: true, force: true });
    });

    it('the secrets page shows a credential without allowed domains as "needs allowed domains"', async () => {
      const { page } = visitor;
      await page.goto(`/w/${workspaceId}/secrets`);
      const legacyRow = page.locator(`tr[data-secret-id="${ids.legacy}"]`);
      await legacyRow.getByText('Needs allowed domains').waitFor();
      expect(await legacyRow.locator('[data-needs-allowed-domains]').textContent()).toContain(
        'Sent nowhere until you add the hosts it may go to',
      );
      const billingRow = page.locator(`tr[data-secret-id="${ids.billing}"]`);
      await billingRow.getByText('Allowed domains: billing.example.test').waitFor();
      expect(await billingRow.getByText('Needs allowed domains').count()).toBe(0);
      await assertAccessible(page, 'the secrets page with a credential that needs allowed domains');
      await screenshot(page, backend.name, 'secrets-needs-allowed-domains');
    });

    it('the create form says why allowed domains are required', async () => {
      const { page } = visitor;
      await page.getByRole('button', { name: 'New secret' }).first().click();
      const dialog = openDialog(page);
      await dialog.getByLabel('Integration').selectOption({ label: 'HTTP Request' });
      await dialog.getByRole('radio', { name: /^Bearer token/ }).check();
      const field = dialog.locator('[data-field="allowedDomains"]');
      expect(await field.locator('.field-help').textContent()).toContain(
        'this credential will only ever be sent to these hosts',
      );
      expect(await field.locator('.required-mark').count()).toBe(1);
      await page.keyboard.press('Escape');
      await expect.poll(() => page.locator('dialog[open]').count()).toBe(0);
    });

    it('the node editor shows where the chosen credential may go and refuses to save a URL elsewhere', async () => {
      const { page, network } = visitor;
      const workflow = await callProcedure<{ id: string }>(
        page,
        'workflows.create',
        { workspaceId, name: `Calls ${run}` },
        'mutation',
      );
      await page.goto(`/w/${workspaceId}/workflows/${workflow.id}`);
      await page.getByRole('button', { name: 'Add the first node' }).click();
      const dialog = openDialog(page);
      await dialog.getByLabel('Node type').selectOption({ label: 'HTTP Request' });
      await dialog.getByLabel('Node name').fill('Post order');
      await dialog.getByLabel('Method').selectOption('POST');
      const url = dialog.getByLabel('URL');
      await url.fill(`${collector.url}/collect`);
      const picker = dialog.getByLabel('Credential');
      await expect.poll(() => picker.isDisabled()).toBe(false);

      await picker.selectOption({ label: 'Old token — Bearer token' });
      expect(await dialog.locator('[data-allowed-hosts]').textContent()).toContain(
        '“Old token” is sent nowhere until its creator, an owner or an admin adds the hosts it may go to',
      );
      await picker.selectOption({ label: 'Billing API — Bearer token' });
      expect(await dialog.locator('[data-allowed-hosts]').textContent()).toBe(
        '“Billing API” may only be sent to billing.example.test (and their subdomains).',
      );
      await assertAccessible(page, 'the node editor with a credential and its hosts');
      await screenshot(page, backend.name, 'node-editor-allowed-hosts');

      await dialog.getByRole('button', { name: 'Add node' }).click();
      await expect.poll(() => url.getAttribute('aria-invalid')).toBe('true');
      const errorId = (await url.getAttribute('aria-describedby'))?.split(' ').at(-1) ?? '';
      expect(await page.locator(`[id="${errorId}"]`).textContent()).toBe(
        "The credential 'Billing API' may only be sent to billing.example.test.",
      );
      expect(network.procedureCalls('workflows.addNode')).toBe(1);
      const unsaved = await callProcedure<{ nodes: unknown[] }>(
        page,
        'workflows.get',
        { workflowId: workflow.id },
        'query',
      );
      expect(unsaved.nodes).toEqual([]);
      await screenshot(page, backend.name, 'node-editor-url-refused');

      await url.fill('https://api.billing.example.test/v1/orders');
      await dialog.getByRole('button', { name: 'Add node' }).click();
      await expect.poll(() => page.locator('dialog[open]').count()).toBe(0);
      const saved = await callProcedure<{
        nodes: { name: string; secretId: string; params: { url: string } }[];
      }>(page, 'workflows.get', { workflowId: workflow.id }, 'query');
      expect(saved.nodes).toMatchObject([
        {
          name: 'Post order',
          secretId: ids.billing,
          params: { url: 'https://api.billing.example.test/v1/orders' },
        },
      ]);
      expect(collector.requests).toEqual([]);
      expect(visitor.errors).toEqual([]);
    });
  });
}
