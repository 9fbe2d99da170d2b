import { randomBytes } from 'node:crypto';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertAccessible, callProcedure, openVisitor, type Visitor } from './support/app';
import { chromiumArgs, chromiumPath, describeOnEachBackend } from './support/environment';
import { type RunningServer, startServer } from './support/server';

// Sign-up answers a taken email like any other (no "already exists"); the page shows the
// server's neutral message, stays signed out and offers the way to sign in. Real Chromium, real built server.

describeOnEachBackend('Sign-up with a taken email in Chromium', (backend) => {
  describe(`sign-up with a taken email in Chromium on ${backend.name}`, () => {
    let server: RunningServer;
    let browser: Browser;
    let visitor: Visitor;

    beforeAll(async () => {
      server = await startServer(backend);
      browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
      visitor = await openVisitor(browser, server.url);
    });

    afterAll(async () => {
      await browser?.close();
      await server?.stop();
    });

    it('shows the neutral answer, stays signed out, and links to sign-in', async () => {
      const email = `taken-${randomBytes(4).toString('hex')}@example.test`;
      const first = await fetch(`${server.url}/trpc/auth.signUp`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, password: 'correct horse battery staple', name: 'First Owner' }),
      });
      expect(first.status).toBe(200);

      const { page } = visitor;
      await page.goto('/signup');
      await page.getByLabel('Your name').fill('Second Comer');
      await page.getByLabel('Email').fill(email);
      await page.getByLabel('Password').fill('another long passphrase');
      await page.getByRole('button', { name: 'Create account' }).click();

      const notice = page.getByRole('status').filter({ hasText: 'If you already have an account' });
      await notice.waitFor();
      expect(await notice.textContent()).not.toMatch(/exists/i);
      expect(new URL(page.url()).pathname).toBe('/signup');
      expect(await page.getByLabel('Password').inputValue()).toBe('');
      expect(await page.getByRole('alert').count()).toBe(0);
      expect(await callProcedure(page, 'auth.me', undefined, 'query')).toBeNull();
      await assertAccessible(page, 'the sign-up page with the neutral answer');

      await notice.getByRole('link', { name: 'Go to sign in' }).click();
      await page.waitForURL(/\/signin/);
      expect(visitor.errors).toEqual([]);
    });
  });
});
