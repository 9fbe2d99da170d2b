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
  discardDialog,
  openDialog,
  openVisitor,
  signUpThroughPage,
  type Visitor,
} from './support/app';
import { type Backend, chromiumArgs, chromiumPath, describeOnEachBackend } from './support/environment';
import { type RunningServer, startServer } from './support/server';

// Issue 16 §4, in real Chromium against the real built server: a field error says what is wrong in that entry;
// a run's result says in words what happened, with the system code behind "Details" and without repeating the
// node's name inside its card; counts and zero cases read naturally; a credential type's description shows once.

describeOnEachBackend('Messages written for people, in Chromium', messageFlows);

/** A port on 127.0.0.1 that nothing listens on (a connection to it is refused: ECONNREFUSED). */
async function closedPort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

function messageFlows(backend: Backend) {
  describe(`messages on ${backend.name}`, () => {
    const run = randomBytes(4).toString('hex');
    const dirs = {
      data: mkdtempSync(join(tmpdir(), 'latchkey-web-e2e-messages-data-')),
      key: mkdtempSync(join(tmpdir(), 'latchkey-web-e2e-messages-key-')),
    };
    const owner = {
      name: 'Olivia Owner',
      email: `olivia-messages-${run}@example.com`,
      password: 'correct horse battery staple',
    };
    const member = {
      name: 'Max Member',
      email: `max-messages-${run}@example.com`,
      password: 'correct horse battery staple',
    };
    let server: RunningServer;
    let browser: Browser;
    let visitor: Visitor;
    let workspaceId = '';
    let sendgridPort = 0;

    beforeAll(async () => {
      sendgridPort = await closedPort();
      server = await startServer(backend, {
        LATCHKEY_DATA_DIR: join(dirs.data, 'data'),
        LATCHKEY_KEY_DIR: dirs.key,
        // The unreachable hosts below are closed ports on loopback, which the guard lets through only when listed.
        LATCHKEY_OUTBOUND_ALLOW: '127.0.0.1',
        // SendGrid cannot be reached here: a saved key's test fails with ECONNREFUSED.
        LATCHKEY_BASE_URL_SENDGRID: `http://127.0.0.1:${sendgridPort}`,
      });
      browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
      visitor = await openVisitor(browser, server.url);
      workspaceId = await signUpThroughPage(visitor.page, owner);
    });

    afterAll(async () => {
      await browser?.close();
      await server?.stop();
      rmSync(dirs.data, { recursive: true, force: true });
      rmSync(dirs.key, { recursive: true, force: true });
    });

    it('a bad allowed-domain entry is named on its field with what to leave out, and the type’s description shows once', async () => {
      const { page } = visitor;
      await page.goto(`/w/${workspaceId}/secrets`);
      await page.getByRole('button', { name: 'New secret' }).first().click();
      const dialog = openDialog(page);
      await dialog.getByLabel('Integration').selectOption({ label: 'HTTP Request' });
      // The integration's description lists all four ways a pasted credential is sent.
      const integrationHelp =
        (await dialog.locator('.field', { hasText: 'Integration' }).first().textContent()) ?? '';
      for (const method of ['a bearer token', 'Basic auth', 'a custom header', 'a query parameter'])
        expect(integrationHelp).toContain(method);
      await dialog.getByRole('radio', { name: /Bearer token/ }).check();
      const description = 'Sent as "Authorization: Bearer <token>" (RFC 6750).';
      const name = dialog.locator('input[name="name"]');
      await name.waitFor();
      expect(await dialog.getByText(description, { exact: true }).count()).toBe(1);
      await assertAccessible(page, 'the new-secret dialog with a type chosen');

      await name.fill('Messages API');
      await dialog.locator('input[name="data.token"]').fill(`fake-e2e-token-${run}`);
      const domains = dialog.locator('[data-field="allowedDomains"]');
      await domains.getByRole('textbox').fill('api.example.test, https://crm.example.test/v1');
      await dialog.getByRole('button', { name: 'Save secret' }).click();
      const error = domains.locator('.field-error');
      await error.waitFor();
      expect(await error.textContent()).toBe(
        'https://crm.example.test/v1 is not a domain — leave out https:// and the path /v1.',
      );
      // The entry and what to leave out read as code, in the case they were typed.
      expect(await error.locator('code').allTextContents()).toEqual([
        'https://crm.example.test/v1',
        'https://',
        '/v1',
      ]);
      expect(await domains.getByRole('textbox').getAttribute('aria-invalid')).toBe('true');
      // The format hint keeps its case and ends with a full stop.
      expect(await domains.locator('.field-help').textContent()).toContain(
        'Domain names only, like api.example.com, auth.example.com: no https://, path or port.',
      );
      await discardDialog(page);
    });

    it('a run against an unreachable host says so in words in the node’s card, with the code behind Details', async () => {
      const { page } = visitor;
      const port = await closedPort();
      const secret = await callProcedure<{ id: string }>(
        page,
        'secrets.create',
        {
          workspaceId,
          credentialType: 'httpBearerToken',
          name: 'Loopback API',
          data: { token: `fake-e2e-token-${run}`, allowedDomains: '127.0.0.1' },
        },
        'mutation',
      );
      const workflow = await callProcedure<{ id: string }>(
        page,
        'workflows.create',
        { workspaceId, name: 'Unreachable' },
        'mutation',
      );
      await callProcedure(
        page,
        'workflows.addNode',
        {
          workflowId: workflow.id,
          name: 'Call the API',
          nodeType: 'httpRequest',
          params: { method: 'GET', url: `http://127.0.0.1:${port}/items` },
          secretId: secret.id,
        },
        'mutation',
      );
      await page.goto(`/w/${workspaceId}/workflows/${workflow.id}`);
      await page.getByRole('button', { name: 'Run workflow' }).click();
      const card = page.locator('li[data-node-name="Call the API"]');
      const result = card.locator('[data-testid="node-result"]');
      await result.waitFor();
      expect(await result.getAttribute('data-result')).toBe('failed');
      const sentence = (await result.locator('.node-result-text').textContent()) ?? '';
      expect(sentence).toBe(`127.0.0.1:${port} could not be reached.`);
      expect(await card.textContent()).not.toContain("Node '");
      const details = result.locator('details');
      expect(await details.locator('summary').textContent()).toBe('Details');
      expect(await details.getAttribute('open')).toBeNull();
      await details.locator('summary').click();
      expect(await details.locator('code').textContent()).toBe('ECONNREFUSED');
      // The run's summary (for screen readers) still names the node; a one-node run reads "its node failed".
      const status = (await page.locator('[data-testid="run-status"]').textContent()) ?? '';
      expect(status).toContain('The workflow ran: its node failed.');
      expect(status).toContain(`Node 'Call the API': 127.0.0.1:${port} could not be reached.`);
      expect(status).not.toContain('ECONNREFUSED');
      await assertAccessible(page, 'a failed run with its details open');
    });

    it('a saved secret’s failed test shows the sentence in its Last test cell, with the code behind Details', async () => {
      const { page } = visitor;
      const name = 'Unreachable SendGrid';
      await callProcedure(
        page,
        'secrets.create',
        { workspaceId, credentialType: 'sendgridApiKey', name, data: { apiKey: 'SG.fake-id.fake-test-key' } },
        'mutation',
      );
      await page.goto(`/w/${workspaceId}/secrets`);
      const row = page.locator('tr[data-secret-id]', { hasText: name });
      await row.waitFor();
      // The Type column reads as words: the integration and the credential type, no internal ids.
      expect(await row.locator('.cell-type > *').allTextContents()).toEqual(['SendGrid', 'SendGrid API key']);
      await row.getByRole('button', { name: `Test ${name}` }).click();
      const cell = row.locator('[data-last-test="failed"]');
      await cell.waitFor();
      expect(await cell.locator('.last-test-message').textContent()).toBe(
        `127.0.0.1:${sendgridPort} could not be reached.`,
      );
      const details = cell.locator('details');
      expect(await details.getAttribute('open')).toBeNull();
      await details.locator('summary').click();
      expect(await details.locator('code').textContent()).toBe('ECONNREFUSED');
      // Kept with the result: a reload shows the same.
      await page.reload();
      expect(await row.locator('[data-last-test="failed"] details code').textContent()).toBe('ECONNREFUSED');
      await assertAccessible(page, 'the secrets list with a failed test and its details');
    });

    it('counts read naturally, and zero cases say nothing of zero', async () => {
      const { page } = visitor;
      const secret = await callProcedure<{ id: string }>(
        page,
        'secrets.create',
        {
          workspaceId,
          credentialType: 'sendgridApiKey',
          name: 'Shared key',
          data: { apiKey: 'SG.fake-key-id.fake-key-secret' },
        },
        'mutation',
      );
      for (const name of ['Welcome', 'Digest']) {
        const workflow = await callProcedure<{ id: string }>(
          page,
          'workflows.create',
          { workspaceId, name },
          'mutation',
        );
        await callProcedure(
          page,
          'workflows.addNode',
          {
            workflowId: workflow.id,
            name: `${name} email`,
            nodeType: 'sendgrid',
            params: { from: 'team@example.com', to: 'someone@example.com', subject: 'Hi', text: 'Hello.' },
            secretId: secret.id,
          },
          'mutation',
        );
      }
      const empty = await callProcedure<{ id: string }>(
        page,
        'workflows.create',
        { workspaceId, name: 'Empty' },
        'mutation',
      );
      await callProcedure(page, 'secrets.delete', { workspaceId, secretId: secret.id }, 'mutation');

      await page.goto(`/w/${workspaceId}/workflows`);
      const banner = page.getByRole('status').filter({ hasText: 'need attention' });
      expect(await banner.textContent()).toBe(
        '2 workflows need attention: a secret their nodes used was deleted.',
      );

      await page.goto(`/w/${workspaceId}/workflows/${empty.id}`);
      await page.getByText('No nodes yet.').first().waitFor();
      expect(await page.locator('main').textContent()).not.toMatch(/\b0 (nodes?|secrets?|workflows?)\b/);

      // A member who created no secrets: removing them deletes nothing, and the preview says so in words.
      const team = await callProcedure<{ id: string }>(
        page,
        'workspaces.create',
        { name: `Messages team ${run}`, plan: 'team' },
        'mutation',
      );
      const invite = await callProcedure<{ token: string }>(
        page,
        'workspaces.invite',
        { workspaceId: team.id, email: member.email, role: 'member' },
        'mutation',
      );
      const other = await openVisitor(browser, server.url);
      await signUpThroughPage(other.page, member);
      await callProcedure(other.page, 'workspaces.acceptInvite', { token: invite.token }, 'mutation');
      await other.context.close();

      await page.goto(`/w/${team.id}/members`);
      await page.getByRole('button', { name: `Remove ${member.name}` }).click();
      const dialog = openDialog(page);
      const summary = dialog.locator('.removal-summary');
      await summary.waitFor();
      expect(await summary.textContent()).toBe(
        `No secrets were created by ${member.name}: nothing is deleted.`,
      );
      expect(await dialog.textContent()).not.toMatch(/\b0 (nodes?|secrets?|workflows?)\b/);
      await dialog.getByRole('button', { name: `Remove ${member.name}` }).click();
      const toast = page.getByText(`${member.name} was removed.`, { exact: true });
      await toast.waitFor();
    });
  });
}
