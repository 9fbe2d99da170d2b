import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { expect } from 'vitest';
import { describeViolations, seriousViolations } from './axe';
import { NetworkRecorder } from './recorder';
import { repoRoot, webRoot } from './server';

export const resultsDir = join(webRoot, 'test-results');

/** One person's browser: its own context (cookies), page and network recording. */
export interface Visitor {
  context: BrowserContext;
  page: Page;
  network: NetworkRecorder;
  /** Script errors and console errors (CSP violations, React warnings), except expected HTTP 4xx logs. */
  errors: string[];
}

export async function openVisitor(browser: Browser, baseURL: string): Promise<Visitor> {
  const context = await browser.newContext({
    baseURL,
    viewport: { width: 1360, height: 900 },
    reducedMotion: 'reduce',
  });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const network = new NetworkRecorder().attach(page);
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // Chrome logs every 4xx answer (a refused form, a removed member's request) as "Failed to load resource".
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource'))
      errors.push(`console: ${message.text()}`);
  });
  return { context, page, network, errors };
}

/** Escape on the topmost dialog, answering "Discard" when it holds typed input; waits until it is closed. */
export async function discardDialog(page: Page): Promise<void> {
  const before = await page.locator('dialog[open]').count();
  await page.keyboard.press('Escape');
  const discard = openDialog(page).locator('.discard-prompt').getByRole('button', { name: 'Discard' });
  await discard.click();
  await expect.poll(() => page.locator('dialog[open]').count()).toBe(before - 1);
}

/** The topmost open <dialog> (the node editor can open "create credential" on top of itself). */
export function openDialog(page: Page): Locator {
  return page.locator('dialog[open]').last();
}

export async function screenshot(page: Page, backend: string, name: string): Promise<string> {
  const dir = join(resultsDir, backend.toLowerCase());
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.png`);
  // Let toasts and dialog animations settle, so the picture shows the page as a person sees it.
  await page.waitForTimeout(250);
  // Toasts are transient: leave them out of the picture. (Playwright's `style` option injects a <style>
  // element, which the app's Content-Security-Policy refuses; CSSOM changes are allowed.)
  await page.evaluate(() =>
    document.querySelector<HTMLElement>('.toasts')?.style.setProperty('visibility', 'hidden'),
  );
  await page.screenshot({ path });
  await page.evaluate(() =>
    document.querySelector<HTMLElement>('.toasts')?.style.removeProperty('visibility'),
  );
  return path;
}

/**
 * With UPDATE_SCREENSHOTS=1, copies screenshots taken on PGlite into docs/screenshots, the pictures the docs
 * show; otherwise they stay in test-results (a test run does not rewrite the repository).
 */
export function publishScreenshots(backend: string, names: readonly string[]): void {
  if (backend !== 'PGlite' || process.env.UPDATE_SCREENSHOTS !== '1') return;
  const docs = join(repoRoot, 'docs/screenshots');
  mkdirSync(docs, { recursive: true });
  for (const name of names)
    copyFileSync(join(resultsDir, 'pglite', `${name}.png`), join(docs, `${name}.png`));
}

/** axe-core on the current page state: no serious or critical violation. */
export async function assertAccessible(page: Page, where: string): Promise<void> {
  const violations = await seriousViolations(page);
  if (violations.length > 0)
    throw new Error(`accessibility violations on ${where}:\n${describeViolations(violations)}`);
}

export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Every string held in localStorage and sessionStorage of the page's origin. */
export async function storageDump(page: Page): Promise<string> {
  return page.evaluate(() => {
    const dump: string[] = [];
    for (const storage of [window.localStorage, window.sessionStorage])
      for (let i = 0; i < storage.length; i++) {
        const key = storage.key(i);
        if (key !== null) dump.push(key, storage.getItem(key) ?? '');
      }
    return dump.join('\n');
  });
}

/** Signs a new person up from the page (the API, as the sign-up page does) and answers their own workspace's id. */
export async function signUpThroughPage(
  page: Page,
  account: { name: string; email: string; password: string },
): Promise<string> {
  await page.goto('/signin');
  await callProcedure(page, 'auth.signUp', account, 'mutation');
  const me = await callProcedure<{ workspaces: { id: string }[] }>(page, 'auth.me', null, 'query');
  return me.workspaces[0]?.id ?? '';
}

/** Calls a tRPC procedure from inside the page, with the page's session cookie. */
export async function callProcedure<T>(
  page: Page,
  path: string,
  input: unknown,
  kind: 'query' | 'mutation',
): Promise<T> {
  const result = await page.evaluate(
    async ({ path, input, kind }) => {
      const url =
        kind === 'query'
          ? `/trpc/${path}?input=${encodeURIComponent(JSON.stringify(input))}`
          : `/trpc/${path}`;
      const response = await fetch(url, {
        method: kind === 'query' ? 'GET' : 'POST',
        headers: kind === 'mutation' ? { 'content-type': 'application/json' } : {},
        body: kind === 'mutation' ? JSON.stringify(input) : undefined,
      });
      return { status: response.status, body: await response.json() };
    },
    { path, input, kind },
  );
  if (result.status !== 200)
    throw new Error(`${path} answered ${result.status}: ${JSON.stringify(result.body)}`);
  return (result.body as { result: { data: T } }).result.data;
}
