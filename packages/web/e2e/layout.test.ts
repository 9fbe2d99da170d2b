import { randomBytes } from 'node:crypto';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assertAccessible,
  callProcedure,
  openVisitor,
  publishScreenshots,
  screenshot,
  type Visitor,
} from './support/app';
import { type Backend, chromiumArgs, chromiumPath, describeOnEachBackend } from './support/environment';
import { fakeValue, fetchIntegrations } from './support/schemas';
import { type RunningServer, startServer } from './support/server';

// Issue 16, section 1: at 1280, 1024 and 390 px wide no page scrolls sideways and every row action is inside
// the viewport (bounding boxes), with a workspace full enough to have every kind of row: a secret of every
// type (so rows carry Test, Rotate and Delete), workflows with nodes, a pending invite, audit events.

describeOnEachBackend('Layout at every width', layoutFlows);

const WIDTHS = [1280, 1024, 390] as const;

/** Where the page is wider than its viewport, and every row action whose box is not fully visible. */
async function overflow(page: Page) {
  return page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const scrollWidth = document.documentElement.scrollWidth;
    const offenders: string[] = [];
    for (const button of document.querySelectorAll<HTMLElement>(
      'main tbody button, main tbody a, main .node-list button',
    )) {
      const box = button.getBoundingClientRect();
      if (box.width === 0) continue;
      if (box.left < 0 || box.right > width + 0.5)
        offenders.push(`${button.textContent?.trim()} at ${Math.round(box.left)}–${Math.round(box.right)}`);
      // Nor cut off by a box that clips what overflows it (a table's rounded frame).
      for (let box2 = button.parentElement; box2; box2 = box2.parentElement) {
        if (getComputedStyle(box2).overflowX === 'visible') continue;
        const frame = box2.getBoundingClientRect();
        if (box.left < frame.left - 0.5 || box.right > frame.right + 0.5)
          offenders.push(
            `${button.textContent?.trim()} cut off at ${Math.round(box.right)} by a ${Math.round(frame.right)} px box`,
          );
        break;
      }
    }
    return { width, scrollWidth, offenders };
  });
}

function layoutFlows(backend: Backend) {
  describe(`layout on ${backend.name}`, () => {
    const run = randomBytes(4).toString('hex');
    let server: RunningServer;
    let browser: Browser;
    let visitor: Visitor;
    let workspaceId = '';
    let workflowId = '';

    beforeAll(async () => {
      server = await startServer(backend);
      browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
      visitor = await openVisitor(browser, server.url);
      const { page } = visitor;
      await page.goto('/signin');
      await callProcedure(
        page,
        'auth.signUp',
        {
          name: 'Olivia Owner',
          email: `olivia-layout-${run}@example.com`,
          password: 'correct horse battery staple',
        },
        'mutation',
      );
      const workspace = await callProcedure<{ id: string }>(
        page,
        'workspaces.create',
        { name: `Layout team ${run}`, plan: 'team' },
        'mutation',
      );
      workspaceId = workspace.id;
      const integrations = await fetchIntegrations(server.url);
      const secretOf = new Map<string, string>();
      for (const integration of integrations)
        for (const type of integration.credentialTypes) {
          const data = Object.fromEntries(
            Object.entries(type.jsonSchema.properties).map(([field, property]) => [
              field,
              fakeValue(property, `fakelayout${run}`),
            ]),
          );
          const secret = await callProcedure<{ id: string }>(
            page,
            'secrets.create',
            {
              workspaceId,
              credentialType: type.type,
              name: `${type.displayName} — a long, descriptive production name`,
              data,
            },
            'mutation',
          );
          secretOf.set(integration.nodeType, secret.id);
        }
      for (const name of ['Customer onboarding with a long name', 'Alerts']) {
        const workflow = await callProcedure<{ id: string }>(
          page,
          'workflows.create',
          { workspaceId, name },
          'mutation',
        );
        workflowId = workflow.id;
        for (const integration of integrations.slice(0, 3))
          await callProcedure(
            page,
            'workflows.addNode',
            {
              workflowId,
              name: `${integration.displayName} step`,
              nodeType: integration.nodeType,
              params: {},
              secretId: secretOf.get(integration.nodeType),
            },
            'mutation',
          );
      }
      await callProcedure(
        page,
        'workspaces.invite',
        { workspaceId, email: `a-very-long-address-${run}@subdomain.example.com`, role: 'admin' },
        'mutation',
      );
    });

    afterAll(async () => {
      await browser?.close();
      await server?.stop();
    });

    for (const width of WIDTHS)
      it(`at ${width} px no page scrolls sideways and every row action is on screen`, async () => {
        const { page } = visitor;
        await page.setViewportSize({ width, height: 900 });
        const pages = [
          ['secrets', 'tr[data-secret-id]'],
          ['integrations', 'section[data-integration]'],
          ['members', 'tbody tr'],
          ['workflows', 'tbody tr'],
          ['audit', 'tbody tr'],
          [`workflows/${workflowId}`, '.node-list li'],
        ] as const;
        const problems: string[] = [];
        for (const [path, ready] of pages) {
          await page.goto(`/w/${workspaceId}/${path}`);
          await page.locator(ready).first().waitFor();
          const measured = await overflow(page);
          if (measured.scrollWidth > measured.width)
            problems.push(`${path}: the page is ${measured.scrollWidth} px wide in ${measured.width}`);
          for (const offender of measured.offenders) problems.push(`${path}: ${offender} is off screen`);
        }
        expect(problems).toEqual([]);
        await page.goto(`/w/${workspaceId}/secrets`);
        await page.locator('tr[data-secret-id]').first().waitFor();

        // The navigation folds into a menu on a phone, and is always there on wider screens.
        const nav = page.getByRole('navigation', { name: 'Workspace sections' });
        const menu = page.getByRole('button', { name: 'Menu' });
        if (width < 860) {
          expect(await nav.isVisible()).toBe(false);
          expect(await menu.getAttribute('aria-expanded')).toBe('false');
          await menu.click();
          expect(await menu.getAttribute('aria-expanded')).toBe('true');
          await nav.getByRole('link', { name: 'Members' }).click();
          await page.waitForURL(`**/w/${workspaceId}/members`);
          await expect.poll(() => nav.isVisible()).toBe(false);
          await page.goto(`/w/${workspaceId}/secrets`);
          await page.locator('tr[data-secret-id]').first().waitFor();
        } else {
          expect(await nav.isVisible()).toBe(true);
          expect(await menu.isVisible()).toBe(false);
        }
        await assertAccessible(page, `the secrets page at ${width} px`);
        await screenshot(page, backend.name, `secrets-${width}`);
        publishScreenshots(backend.name, [`secrets-${width}`]);
      });

    it('the credential picker becomes a search box beyond seven credentials, showing type and creator', async () => {
      const { page } = visitor;
      await page.setViewportSize({ width: 1280, height: 900 });
      const integrations = await fetchIntegrations(server.url);
      const sendgrid = integrations.find((integration) => integration.id === 'sendgrid');
      const type = sendgrid?.credentialTypes[0];
      if (!sendgrid || !type) throw new Error('the SendGrid integration is not registered');
      const region = ['Europe', 'Americas', 'Asia', 'Africa', 'Oceania', 'Arctic', 'Antarctica', 'Moon'];
      const ids = new Map<string, string>();
      for (const name of region) {
        const secret = await callProcedure<{ id: string }>(
          page,
          'secrets.create',
          {
            workspaceId,
            credentialType: type.type,
            name: `Mail ${name}`,
            data: Object.fromEntries(
              Object.entries(type.jsonSchema.properties).map(([field, property]) => [
                field,
                fakeValue(property, `fakepicker${run}`),
              ]),
            ),
          },
          'mutation',
        );
        ids.set(name, secret.id);
      }
      const workflow = await callProcedure<{ id: string }>(
        page,
        'workflows.create',
        { workspaceId, name: `Picker ${run}` },
        'mutation',
      );
      await page.goto(`/w/${workspaceId}/workflows/${workflow.id}`);
      await page.getByRole('button', { name: 'Add the first node' }).click();
      const dialog = page.locator('dialog[open]').last();
      await dialog.getByLabel('Node type').selectOption({ label: sendgrid.displayName });
      await dialog.getByRole('textbox', { name: 'Node name', exact: true }).fill('Send digest');
      for (const [field, property] of Object.entries(sendgrid.paramsSchema.properties))
        if (sendgrid.paramsSchema.required?.includes(field))
          await dialog
            .locator(`[data-field="${field}"]`)
            .locator('input, textarea')
            .first()
            .fill(field === 'from' || field === 'to' ? 'team@example.com' : fakeValue(property, ''));

      // Nine SendGrid credentials (the one of the first tests and eight more): a combobox, not a select.
      const box = dialog.getByRole('combobox', { name: 'Credential' });
      await box.click();
      const options = dialog.getByRole('listbox').getByRole('option');
      await expect.poll(() => options.count()).toBe(9);
      expect(await options.first().textContent()).toContain('added by Olivia Owner');
      await box.fill('mo');
      await expect.poll(() => options.allTextContents()).toHaveLength(1);
      expect(await options.first().textContent()).toContain('Mail Moon');
      await assertAccessible(page, 'the credential search box, open');
      await box.fill('no such credential');
      await expect
        .poll(() => dialog.locator('.combobox-empty').textContent())
        .toBe('No credential matches “no such credential”.');
      await box.fill('arc');
      await dialog
        .getByRole('listbox')
        .getByRole('option', { name: /Mail Arctic/ })
        .click();
      expect(await box.inputValue()).toBe('Mail Arctic');
      await dialog.getByRole('button', { name: 'Add node' }).click();
      await expect.poll(() => page.locator('dialog[open]').count()).toBe(0);
      const saved = await callProcedure<{ nodes: { name: string; secretId: string | null }[] }>(
        page,
        'workflows.get',
        { workflowId: workflow.id },
        'query',
      );
      expect(saved.nodes.map((node) => [node.name, node.secretId])).toEqual([
        ['Send digest', ids.get('Arctic')],
      ]);
    });
  });
}
