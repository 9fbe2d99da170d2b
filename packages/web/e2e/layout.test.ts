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
  });
}
