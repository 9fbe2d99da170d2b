import { randomBytes } from 'node:crypto';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assertAccessible,
  callProcedure,
  openDialog,
  openVisitor,
  publishScreenshots,
  screenshot,
  signUpThroughPage,
  type Visitor,
} from './support/app';
import { type Backend, chromiumArgs, chromiumPath, describeOnEachBackend } from './support/environment';
import { type RunningServer, startServer } from './support/server';

// Issue 16, sections 3 and 5, in real Chromium against the real built server: renaming a secret (a name clash
// is an error on Name), its history from the secrets list, and an audit log that reads as words, keeps ids
// one step away, filters by type, person and date, and exports what it shows.

describeOnEachBackend('Audit log and renaming in Chromium', auditFlows);

function auditFlows(backend: Backend) {
  describe(`audit log and renaming in Chromium on ${backend.name}`, () => {
    const run = randomBytes(4).toString('hex');
    const person = (name: string, label: string) => ({
      name,
      email: `${label}-audit-${run}@example.com`,
      password: 'correct horse battery staple',
    });
    const ownerAccount = person('Olivia Owner', 'olivia');
    const memberAccount = person('Mia Member', 'mia');
    let server: RunningServer;
    let browser: Browser;
    let owner: Visitor;
    let member: Visitor;
    let workspaceId = '';
    const ids = { marketing: '', transactional: '', workflow: '' };

    beforeAll(async () => {
      server = await startServer(backend);
      browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
      owner = await openVisitor(browser, server.url);
      member = await openVisitor(browser, server.url);
      await signUpThroughPage(owner.page, ownerAccount);
      await signUpThroughPage(member.page, memberAccount);
      const call = <T>(visitor: Visitor, path: string, input: unknown) =>
        callProcedure<T>(visitor.page, path, input, 'mutation');
      workspaceId = (
        await call<{ id: string }>(owner, 'workspaces.create', { name: `Acme ${run}`, plan: 'team' })
      ).id;
      const invite = await call<{ token: string }>(owner, 'workspaces.invite', {
        workspaceId,
        email: memberAccount.email,
        role: 'member',
      });
      await call(member, 'workspaces.acceptInvite', { token: invite.token });
      const sendgrid = (name: string) =>
        call<{ id: string }>(owner, 'secrets.create', {
          workspaceId,
          credentialType: 'sendgridApiKey',
          name,
          data: { apiKey: `SG.fakeaudit${run}.fakeauditsecret${run}` },
        });
      ids.marketing = (await sendgrid('Marketing')).id;
      ids.transactional = (await sendgrid('Transactional')).id;
      ids.workflow = (
        await call<{ id: string }>(owner, 'workflows.create', { workspaceId, name: 'Welcome' })
      ).id;
      const node = await call<{ id: string }>(owner, 'workflows.addNode', {
        workflowId: ids.workflow,
        name: 'Send welcome',
        nodeType: 'sendgrid',
        params: {},
      });
      await call(owner, 'workflows.updateNode', {
        workflowId: ids.workflow,
        nodeId: node.id,
        secretId: ids.marketing,
      });
    });

    afterAll(async () => {
      await browser?.close();
      await server?.stop();
    });

    const row = (secretId: string) => owner.page.locator(`tr[data-secret-id="${secretId}"]`);

    it('renames a secret in place: a name its type already uses is an error on Name; the node keeps it', async () => {
      const { page } = owner;
      await page.goto(`/w/${workspaceId}/secrets`);
      await row(ids.marketing).getByRole('button', { name: 'Rename Marketing' }).click();
      const dialog = openDialog(page);
      const name = dialog.getByRole('textbox', { name: /^Name/ });
      expect(await name.inputValue()).toBe('Marketing');
      await name.fill('Transactional');
      await dialog.getByRole('button', { name: 'Rename', exact: true }).click();
      await expect.poll(() => name.getAttribute('aria-invalid')).toBe('true');
      const describedBy = (await name.getAttribute('aria-describedby')) ?? '';
      const described = await Promise.all(
        describedBy.split(' ').map((id) => page.locator(`[id="${id}"]`).textContent()),
      );
      expect(described.join(' ')).toContain(
        "Another secret of this type is already named 'Transactional'. Choose another name.",
      );
      await assertAccessible(page, 'the rename dialog with a name clash');
      await name.fill('Newsletters');
      await dialog.getByRole('button', { name: 'Rename', exact: true }).click();
      await page.getByText('“Marketing” is now called “Newsletters”.').waitFor();
      await expect.poll(() => row(ids.marketing).locator('.secret-name').textContent()).toBe('Newsletters');
      const workflow = await callProcedure<{ nodes: { secretId: string | null; status: string }[] }>(
        page,
        'workflows.get',
        { workflowId: ids.workflow },
        'query',
      );
      expect(workflow.nodes[0]).toMatchObject({ secretId: ids.marketing, status: 'ok' });
    });

    it("a secret's History opens the audit log filtered to it, in words, with its ids one step away", async () => {
      const { page } = owner;
      await page.goto(`/w/${workspaceId}/secrets`);
      await row(ids.marketing).getByRole('link', { name: 'History of Newsletters' }).click();
      await page.waitForURL(
        (url) => url.pathname.endsWith('/audit') && url.search === `?targetId=${ids.marketing}`,
      );
      const history = page.locator(`[data-history-of="${ids.marketing}"]`);
      await expect.poll(() => history.textContent()).toContain('Showing the history of Newsletters');
      const rows = page.locator('tr[data-action]');
      await expect
        .poll(async () =>
          (await rows.evaluateAll((all) => all.map((r) => r.getAttribute('data-action')))).sort(),
        )
        .toEqual(['secret.created', 'secret.renamed', 'workflow.node_changed']);
      const text = (await page.locator('main').textContent()) ?? '';
      expect(text).toContain('Secret renamed');
      expect(text).toContain('Node changed');
      expect(text).not.toContain('secret.renamed');
      expect(text).not.toContain('workflow.node_changed');
      // Names inline, ids on hover and under "Ids".
      const renamed = page.locator('tr[data-action="secret.renamed"]');
      expect(await renamed.locator('td.cell-details').textContent()).toContain(
        'From: Marketing · To: Newsletters',
      );
      const changed = page.locator('tr[data-action="workflow.node_changed"]');
      expect(await changed.textContent()).toContain('Send welcome');
      // Lists and types in words: no JSON, no internal node type.
      const changedDetails = (await changed.locator('td.cell-details').textContent()) ?? '';
      expect(changedDetails).toContain('Changed: credential · ');
      expect(changedDetails).toContain('Node type: SendGrid · ');
      expect(changedDetails).not.toContain('["');
      expect(await changed.locator('.cell-details > span').allTextContents()).not.toContain(ids.marketing);
      await changed.getByText('Ids').click();
      expect(await changed.locator('.audit-ids').textContent()).toContain(ids.workflow);
      expect(await renamed.locator('td').nth(3).locator('[title]').getAttribute('title')).toBe(
        `Id: ${ids.marketing}`,
      );
      await assertAccessible(page, "a secret's history");
      await screenshot(page, backend.name, 'secret-history');
      publishScreenshots(backend.name, ['secret-history']);
      await page.getByRole('button', { name: 'Show every item' }).click();
      await expect.poll(() => rows.count()).toBeGreaterThan(3);
      expect(new URL(page.url()).search).toBe('');
    });

    it('filters by event type, person and dates; the export carries the same filters', async () => {
      const { page } = owner;
      await page.goto(`/w/${workspaceId}/audit`);
      const rows = page.locator('tr[data-action]');
      await rows.first().waitFor();
      await page.getByLabel('Event').selectOption('secret.created');
      await expect
        .poll(async () => await rows.evaluateAll((all) => all.map((r) => r.getAttribute('data-action'))))
        .toEqual(['secret.created', 'secret.created']);
      // A group of types.
      await page.getByLabel('Event').selectOption('member.*');
      await expect
        .poll(async () =>
          (await rows.evaluateAll((all) => all.map((r) => r.getAttribute('data-action')))).sort(),
        )
        .toEqual(['member.invited', 'member.joined']);
      await page.getByLabel('Who').selectOption({ label: 'Mia Member' });
      await expect
        .poll(async () => await rows.evaluateAll((all) => all.map((r) => r.getAttribute('data-action'))))
        .toEqual(['member.joined']);

      // The export links carry the filters; what they download is what the page shows.
      const csvHref = (await page.getByRole('link', { name: 'Export CSV' }).getAttribute('href')) ?? '';
      const csvQuery = new URL(csvHref, server.url).searchParams;
      expect(csvQuery.get('actions')?.split(',')).toContain('member.joined');
      expect(csvQuery.get('actorId')).toBeTruthy();
      expect(csvQuery.get('format')).toBe('csv');
      const csv = await page.evaluate(async (href) => (await fetch(href)).text(), csvHref);
      // The filtered events, then the export's own event: a file that does not end with it was cut short.
      const lines = csv.trim().split('\n');
      expect(lines.map((line) => line.split(',')[2])).toEqual(['action', 'member.joined', 'audit.exported']);
      const jsonlHref =
        (await page.getByRole('link', { name: 'Export JSON lines' }).getAttribute('href')) ?? '';
      const jsonl = await page.evaluate(async (href) => (await fetch(href)).text(), jsonlHref);
      expect(
        jsonl
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line).action),
      ).toEqual(['member.joined', 'audit.exported']);

      // A date range with nothing in it offers to clear the filters.
      await page.getByLabel('Who').selectOption('');
      await page.getByLabel('Event').selectOption('');
      await page.getByLabel('From').fill('2001-01-01');
      await page.getByLabel('To').fill('2001-01-31');
      await page.getByText('No event matches these filters.').waitFor();
      await assertAccessible(page, 'the audit log with filters');
      await page.getByRole('button', { name: 'Clear filters' }).click();
      await expect.poll(() => rows.count()).toBeGreaterThan(3);
      expect(owner.errors).toEqual([]);
    });

    it('a member sees no History links nor Rename for secrets not theirs, and the audit log is closed to them', async () => {
      const { page } = member;
      await page.goto(`/w/${workspaceId}/secrets`);
      await page.getByRole('heading', { name: 'Secrets & API Keys' }).waitFor();
      expect(await page.getByRole('link', { name: /^History of/ }).count()).toBe(0);
      expect(await page.getByRole('button', { name: /^Rename/ }).count()).toBe(0);
      await page.goto(`/w/${workspaceId}/audit?targetId=${ids.marketing}`);
      await page.getByText('Only owners and admins can read the audit log').waitFor();
      expect(member.errors).toEqual([]);
    });
  });
}
