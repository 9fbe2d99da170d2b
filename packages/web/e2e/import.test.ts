import { randomBytes } from 'node:crypto';
import { fakeSendgrid } from '@latchkey/integration-sendgrid/fake';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encryptN8n } from '../../server/src/testing/n8n-export';
import {
  assertAccessible,
  callProcedure,
  openDialog,
  openVisitor,
  screenshot,
  signUpThroughPage,
  storageDump,
  type Visitor,
} from './support/app';
import { type Backend, chromiumArgs, chromiumPath, describeOnEachBackend } from './support/environment';
import { type RunningServer, startServer } from './support/server';

// Issue 17's UI in real Chromium: Secrets → "Import from n8n" reads an encrypted n8n export in the browser,
// previews what will happen (a wrong key is refused on its field, nothing written), imports on confirmation,
// a second import of the same file brings in nothing, and an imported key works in a node. No value reaches a page, a response or storage.

describeOnEachBackend('Import from n8n in Chromium', importFlows);

const N8N_KEY = 'fake-n8n-instance-key-for-browser-tests';

function importFlows(backend: Backend) {
  describe(`Import from n8n in Chromium on ${backend.name}`, () => {
    const run = randomBytes(4).toString('hex');
    const values = {
      sendgrid: `SG.fakeimport${run}.fakeimportsecret${run}`,
      header: `fake-header-value-${run}`,
    };
    const exported = [
      { id: `n8n-sg-${run}`, name: 'Mailing', type: 'sendGridApi', data: { apiKey: values.sendgrid } },
      {
        id: `n8n-hdr-${run}`,
        name: 'CRM header',
        type: 'httpHeaderAuth',
        data: { name: 'X-Api-Key', value: values.header },
      },
      { id: `n8n-gh-${run}`, name: 'GitHub', type: 'githubApi', data: { accessToken: 'fake' } },
    ].map((credential) => ({ ...credential, data: encryptN8n(credential.data, N8N_KEY) }));
    const file = {
      name: 'creds.json',
      mimeType: 'application/json',
      buffer: Buffer.from(JSON.stringify(exported)),
    };
    let sendgrid: Awaited<ReturnType<ReturnType<typeof fakeSendgrid>['listen']>>;
    let server: RunningServer;
    let browser: Browser;
    let visitor: Visitor;
    let workspaceId = '';

    beforeAll(async () => {
      sendgrid = await fakeSendgrid({ acceptedKey: values.sendgrid }).listen();
      server = await startServer(backend, {
        LATCHKEY_BASE_URL_SENDGRID: sendgrid.url,
        LATCHKEY_OUTBOUND_ALLOW: '127.0.0.1',
      });
      browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
      visitor = await openVisitor(browser, server.url);
      workspaceId = await signUpThroughPage(visitor.page, {
        name: 'Olivia Owner',
        email: `olivia-import-${run}@example.com`,
        password: 'correct horse battery staple',
      });
    });

    afterAll(async () => {
      await browser?.close();
      await server?.stop();
      await sendgrid?.close();
    });

    it('refuses a wrong key on its field, previews, imports on confirmation, and imports nothing twice', async () => {
      const { page, network } = visitor;
      await page.goto(`/w/${workspaceId}/secrets`);
      await page.getByRole('button', { name: 'Import from n8n' }).click();
      const dialog = openDialog(page);
      await dialog.getByLabel('Export file').setInputFiles(file);
      const key = dialog.getByLabel(/n8n encryption key/);

      await key.fill('not the key of that instance');
      await dialog.getByRole('button', { name: 'Preview' }).click();
      await expect.poll(() => key.getAttribute('aria-invalid')).toBe('true');
      expect(await dialog.locator('[data-field="n8nKey"] .field-error').textContent()).toMatch(/key/i);
      expect(await dialog.locator('tr[data-import-outcome]').count()).toBe(0);

      await key.fill(N8N_KEY);
      await dialog.getByRole('button', { name: 'Preview' }).click();
      await dialog.locator('tr[data-import-outcome]').first().waitFor();
      const outcomes = () =>
        dialog
          .locator('tr[data-import-outcome]')
          .evaluateAll((rows) =>
            rows.map((row) => [
              row.querySelector('.secret-name')?.textContent,
              row.getAttribute('data-import-outcome'),
            ]),
          );
      expect(await outcomes()).toEqual([
        ['Mailing', 'would-import'],
        ['CRM header', 'would-import'],
        ['GitHub', 'skipped'],
      ]);
      expect(await dialog.locator('tr', { hasText: 'CRM header' }).textContent()).toContain(
        'Needs allowed domains',
      );
      expect(await dialog.locator('tr', { hasText: 'GitHub' }).textContent()).toContain('githubApi');
      // Nothing saved by the preview.
      const listed = await callProcedure<{ items: unknown[] }>(
        page,
        'secrets.list',
        { workspaceId },
        'query',
      );
      expect(listed.items).toHaveLength(0);
      await assertAccessible(page, 'the n8n import preview');
      await screenshot(page, backend.name, 'import-n8n-preview');

      await dialog.getByRole('button', { name: 'Import 2 credentials' }).click();
      await page.getByRole('status').filter({ hasText: 'Imported 2 credentials from n8n.' }).waitFor();
      expect(await outcomes()).toEqual([
        ['Mailing', 'imported'],
        ['CRM header', 'imported'],
        ['GitHub', 'skipped'],
      ]);
      await dialog.getByRole('button', { name: 'Close', exact: true }).click();
      await expect.poll(() => page.locator('tr[data-secret-id]').count()).toBe(2);
      await page
        .locator('tr[data-secret-id]', { hasText: 'CRM header' })
        .getByText('Needs allowed domains')
        .waitFor();

      // The same file again: everything is already there.
      await page.getByRole('button', { name: 'Import from n8n' }).click();
      const again = openDialog(page);
      await again.getByLabel('Export file').setInputFiles(file);
      await again.getByLabel(/n8n encryption key/).fill(N8N_KEY);
      await again.getByRole('button', { name: 'Preview' }).click();
      await again.locator('tr[data-import-outcome]').first().waitFor();
      expect(await again.locator('tr[data-import-outcome="already-imported"]').count()).toBe(2);
      expect(await again.getByRole('button', { name: 'Import 0 credentials' }).isDisabled()).toBe(true);
      await again.getByRole('button', { name: 'Cancel' }).click();

      // The imported SendGrid key works in a node: the run sends it to SendGrid.
      const mailing = await callProcedure<{ items: { id: string; name: string }[] }>(
        page,
        'secrets.list',
        { workspaceId, search: 'Mailing' },
        'query',
      );
      const workflow = await callProcedure<{ id: string }>(
        page,
        'workflows.create',
        { workspaceId, name: `Imported ${run}` },
        'mutation',
      );
      await callProcedure(
        page,
        'workflows.addNode',
        {
          workflowId: workflow.id,
          name: 'Welcome mail',
          nodeType: 'sendgrid',
          params: { from: 'team@example.com', to: 'new@example.com', subject: 'Hi', text: 'Welcome.' },
          secretId: mailing.items[0]?.id,
        },
        'mutation',
      );
      await page.goto(`/w/${workspaceId}/workflows/${workflow.id}`);
      await page.getByRole('button', { name: 'Run workflow' }).click();
      const result = page.locator('li[data-node-name="Welcome mail"] [data-testid="node-result"]');
      await result.waitFor();
      expect(await result.getAttribute('data-result')).toBe('ok');
      expect(sendgrid.requests.at(-1)?.headers.authorization).toBe(`Bearer ${values.sendgrid}`);

      // No value, and not the key, in the page, any response or storage.
      const canaries = [values.sendgrid, values.header, N8N_KEY];
      const html = await page.content();
      expect(canaries.filter((canary) => html.includes(canary))).toEqual([]);
      const storage = await storageDump(page);
      expect(canaries.filter((canary) => storage.includes(canary))).toEqual([]);
      const leaks = (await network.responses()).filter((response) =>
        canaries.some((canary) => response.body.includes(canary)),
      );
      expect(leaks.map((response) => response.url)).toEqual([]);
      expect(canaries.filter((canary) => server.log().includes(canary))).toEqual([]);
      expect(visitor.errors).toEqual([]);
    });
  });
}
