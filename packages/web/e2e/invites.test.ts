import { randomBytes } from 'node:crypto';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assertAccessible,
  callProcedure,
  escapeRegExp,
  openDialog,
  openVisitor,
  publishScreenshots,
  screenshot,
  signUpThroughPage,
  type Visitor,
} from './support/app';
import { type Backend, chromiumArgs, chromiumPath, describeOnEachBackend } from './support/environment';
import { type RunningServer, startServer } from './support/server';

// Issue 12, item 3, in real Chromium against the real built server: the invite link carries its token in
// the fragment (never sent to the server, so never logged), the accept page posts it in the JSON body, and
// owners and admins see pending invites and revoke them.

describeOnEachBackend('Invites in Chromium', inviteFlows);

interface Account {
  name: string;
  email: string;
  password: string;
}

function inviteFlows(backend: Backend) {
  describe(`Invites in Chromium on ${backend.name}`, () => {
    const run = randomBytes(4).toString('hex');
    const account = (name: string, label: string): Account => ({
      name,
      email: `${label}-${run}@example.com`,
      password: 'correct horse battery staple',
    });
    const ownerAccount = account('Olivia Owner', 'olivia');
    const adminAccount = account('Adam Admin', 'adam');
    const backdoorAccount = account('Adam Elsewhere', 'adam-elsewhere');
    let server: RunningServer;
    let browser: Browser;
    let owner: Visitor;
    let admin: Visitor;
    let workspaceId = '';
    const tokens: string[] = [];
    const shot = (visitor: Visitor, name: string) => screenshot(visitor.page, backend.name, name);

    /** Creates an invite in the Members page's dialog and returns the link it shows. */
    async function inviteThroughDialog(visitor: Visitor, email: string, role: 'admin' | 'member') {
      const { page } = visitor;
      await page.getByRole('button', { name: 'Invite people' }).click();
      const dialog = openDialog(page);
      // Said before the link exists: an invite is only as safe as the invited mailbox.
      expect(await dialog.textContent()).toContain('Latchkey does not verify email addresses');
      await dialog.getByLabel('Email').fill(email);
      await dialog.getByLabel('Role').selectOption(role);
      await dialog.getByRole('button', { name: 'Create invite link' }).click();
      const linkInput = dialog.getByLabel('Invite link');
      await linkInput.waitFor();
      const link = await linkInput.inputValue();
      expect(link).toMatch(new RegExp(`^${escapeRegExp(server.url)}/invite#token=[A-Za-z0-9_-]{43}$`));
      const token = new URLSearchParams(new URL(link).hash.slice(1)).get('token') ?? '';
      tokens.push(token);
      await dialog.getByRole('button', { name: 'Done' }).click();
      return { link, token };
    }

    const pendingRow = (visitor: Visitor, email: string) =>
      visitor.page.locator(`tr[data-invite-email="${email}"]`);

    beforeAll(async () => {
      // Request lines are logged at info: the test reads them for tokens.
      server = await startServer(backend, { LOG_LEVEL: 'info' });
      browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
      owner = await openVisitor(browser, server.url);
      admin = await openVisitor(browser, server.url);
      await signUpThroughPage(owner.page, ownerAccount);
      await signUpThroughPage(admin.page, adminAccount);
      const workspace = await callProcedure<{ id: string }>(
        owner.page,
        'workspaces.create',
        { name: `Acme ${run}`, plan: 'team' },
        'mutation',
      );
      workspaceId = workspace.id;
    });

    afterAll(async () => {
      await browser?.close();
      await server?.stop();
    });

    it('the link carries the token in its fragment; the invited person accepts it from there', async () => {
      await owner.page.goto(`/w/${workspaceId}/members`);
      await owner.page.getByRole('heading', { name: 'Pending invites' }).waitFor();
      await owner.page.getByText('No invite is waiting to be accepted.').waitFor();
      const { link, token } = await inviteThroughDialog(owner, adminAccount.email, 'admin');
      const row = pendingRow(owner, adminAccount.email);
      await row.waitFor();
      expect(await row.textContent()).toContain(ownerAccount.name);

      const { page } = admin;
      await page.goto(link);
      // On arrival: the workspace, who invited, and the role, before anything is accepted.
      await page.getByRole('heading', { name: `Join Acme ${run}` }).waitFor();
      expect(await page.locator('.auth-subtitle').textContent()).toBe(
        `Olivia Owner invited you to join Acme ${run} as an admin. Join as ${adminAccount.email}: you will be able to select the workspace’s secrets in your workflow nodes.`,
      );
      // The token leaves the address bar at once.
      await page.waitForURL((url) => url.pathname === '/invite' && url.hash === '');
      await assertAccessible(page, 'the accept-invite page');
      await page.getByRole('button', { name: 'Accept invitation' }).click();
      await page.waitForURL(new RegExp(`/w/${workspaceId}/secrets$`));
      const me = await callProcedure<{ workspaces: { id: string; role: string }[] }>(
        page,
        'auth.me',
        null,
        'query',
      );
      expect(me.workspaces.find((w) => w.id === workspaceId)?.role).toBe('admin');

      // The token went to the server only in the acceptInvite body, never in a URL.
      const requests = admin.network.requests;
      expect(requests.filter((r) => r.url.includes(token)).map((r) => r.url)).toEqual([]);
      const posted = requests.filter((r) => new URL(r.url).pathname === '/trpc/workspaces.acceptInvite');
      expect(posted).toHaveLength(1);
      expect(posted[0]?.method).toBe('POST');
      expect(posted[0]?.postData).toContain(JSON.stringify({ token }));

      await owner.page.reload();
      await owner.page.getByText('No invite is waiting to be accepted.').waitFor();
      expect(await pendingRow(owner, adminAccount.email).count()).toBe(0);

      // The used link says so on arrival, with nothing to accept — signed in or not.
      const later = await openVisitor(browser, server.url);
      try {
        await later.page.goto(link);
        await later.page
          .getByRole('heading', { name: `This invite to Acme ${run} cannot be used` })
          .waitFor();
        await later.page.getByText(`Olivia Owner’s invite to Acme ${run} was already used`).waitFor();
        expect(await later.page.getByRole('button', { name: 'Accept invitation' }).count()).toBe(0);
        expect(await later.page.getByRole('link', { name: 'Create an account' }).count()).toBe(0);
        await assertAccessible(later.page, 'a used invite link');
        expect(later.errors).toEqual([]);
      } finally {
        await later.context.close();
      }
    });

    it('opened while signed in with another address, the page names the invited address and offers to switch', async () => {
      const inviteeEmail = `wanda-${run}@example.com`;
      const { link, token } = await callProcedure<{ token: string }>(
        owner.page,
        'workspaces.invite',
        { workspaceId, email: inviteeEmail, role: 'member' },
        'mutation',
      ).then((result) => {
        tokens.push(result.token);
        return { link: `${server.url}/invite#token=${result.token}`, token: result.token };
      });
      const visitor = await openVisitor(browser, server.url);
      try {
        const wrong = account('Walter Wrong', 'walter');
        await signUpThroughPage(visitor.page, wrong);
        const { page } = visitor;
        await page.goto(link);
        const warning = page.getByText('This invite is for');
        await warning.waitFor();
        expect(await warning.textContent()).toBe(
          `This invite is for w…@example.com, and you are signed in as ${wrong.email}. Sign out, then sign in or create an account with the invited address.`,
        );
        expect(await page.getByRole('button', { name: 'Accept invitation' }).count()).toBe(0);
        await assertAccessible(page, 'an invite for another address');
        await shot(visitor, 'invite-wrong-address');
        publishScreenshots(backend.name, ['invite-wrong-address']);

        // Signing out keeps the invite in this tab: the page now asks for the invited address.
        await page.getByRole('button', { name: 'Sign out to use another account' }).click();
        await page.getByText('The invite is for w…@example.com').waitFor();
        await page.getByRole('link', { name: 'Create an account' }).click();
        await page.getByLabel('Your name').fill('Wanda Invited');
        await page.getByLabel('Email').fill(inviteeEmail);
        await page.getByLabel('Password').fill('correct horse battery staple');
        await page.getByRole('button', { name: /Create account/ }).click();
        await page.getByRole('button', { name: 'Accept invitation' }).click();
        await page.waitForURL(new RegExp(`/w/${workspaceId}/secrets$`));
        // Looked up in POST bodies only.
        const requests = visitor.network.requests;
        expect(requests.filter((r) => r.url.includes(token)).map((r) => r.url)).toEqual([]);
        const inspected = requests.filter((r) =>
          new URL(r.url).pathname.includes('workspaces.inspectInvite'),
        );
        expect(inspected.length).toBeGreaterThanOrEqual(2);
        for (const request of inspected) expect(request.method).toBe('POST');
        expect(visitor.errors).toEqual([]);
      } finally {
        await visitor.context.close();
      }
    });

    it('an admin sees a pending invite and revokes it, after confirming; the link then admits no one', async () => {
      const { page } = admin;
      await page.goto(`/w/${workspaceId}/members`);
      await page.getByRole('heading', { name: 'Pending invites' }).waitFor();
      const { link } = await inviteThroughDialog(admin, backdoorAccount.email, 'member');
      // An owner's invite to become an owner: an admin sees it but cannot revoke it (nor could make it).
      const ownerInviteEmail = `future-owner-${run}@example.com`;
      await callProcedure(
        owner.page,
        'workspaces.invite',
        { workspaceId, email: ownerInviteEmail, role: 'owner' },
        'mutation',
      ).then((result) => tokens.push((result as { token: string }).token));
      await page.reload();
      const row = pendingRow(admin, backdoorAccount.email);
      await row.waitFor();
      expect(await row.textContent()).toContain(adminAccount.name);
      const ownerRow = pendingRow(admin, ownerInviteEmail);
      await ownerRow.waitFor();
      expect(await ownerRow.getByRole('button', { name: /Revoke/ }).count()).toBe(0);
      await assertAccessible(page, 'the members page with pending invites');
      await shot(admin, 'pending-invites');

      await row.getByRole('button', { name: `Revoke the invite for ${backdoorAccount.email}` }).click();
      let dialog = openDialog(page);
      await dialog
        .getByRole('heading', { name: `Revoke the invite for ${backdoorAccount.email}?` })
        .waitFor();
      await assertAccessible(page, 'the revoke-invite confirmation');
      await shot(admin, 'revoke-invite-dialog');
      // Cancelling keeps it.
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      expect(await row.count()).toBe(1);
      await row.getByRole('button', { name: `Revoke the invite for ${backdoorAccount.email}` }).click();
      dialog = openDialog(page);
      await dialog.getByRole('button', { name: 'Revoke invite' }).click();
      await expect.poll(() => row.count()).toBe(0);
      expect(await ownerRow.count()).toBe(1);

      // Whoever controls the address now finds a dead link.
      const elsewhere = await openVisitor(browser, server.url);
      try {
        await signUpThroughPage(elsewhere.page, backdoorAccount);
        await elsewhere.page.goto(link);
        // Said on arrival: no Accept button to find out with.
        await elsewhere.page
          .getByText(`Adam Admin’s invite to Acme ${run} was revoked, so it admits no one.`)
          .waitFor();
        expect(await elsewhere.page.getByRole('button', { name: 'Accept invitation' }).count()).toBe(0);
        const me = await callProcedure<{ workspaces: { id: string }[] }>(
          elsewhere.page,
          'auth.me',
          null,
          'query',
        );
        expect(me.workspaces.map((w) => w.id)).not.toContain(workspaceId);
        expect(elsewhere.errors).toEqual([]);
      } finally {
        await elsewhere.context.close();
      }
    });

    it('no invite token reached the server’s log, which did record the requests', () => {
      const log = server.log();
      expect(log).toContain('incoming request');
      expect(log).toContain('/trpc/workspaces.acceptInvite');
      expect(tokens.length).toBeGreaterThanOrEqual(3);
      for (const token of tokens) expect(log.includes(token), 'the log holds an invite token').toBe(false);
      expect(owner.errors).toEqual([]);
      expect(admin.errors).toEqual([]);
    });
  });

  describe(`An expired invite in Chromium on ${backend.name}`, () => {
    const run = randomBytes(4).toString('hex');
    const hours = 0.001; // 3.6 s: LATCHKEY_INVITE_HOURS, so that an invite can age within the test
    let server: RunningServer;
    let browser: Browser;

    beforeAll(async () => {
      server = await startServer(backend, { LATCHKEY_INVITE_HOURS: String(hours) });
      browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
    });

    afterAll(async () => {
      await browser?.close();
      await server?.stop();
    });

    it('says on arrival that the link expired and whom to ask, with no Accept button, and admits no one', async () => {
      const owner = await openVisitor(browser, server.url);
      const guest = await openVisitor(browser, server.url);
      const guestAccount = {
        name: 'Gina Guest',
        email: `gina-${run}@example.com`,
        password: 'correct horse battery staple',
      };
      await signUpThroughPage(owner.page, {
        name: 'Olivia Owner',
        email: `olivia-${run}@example.com`,
        password: 'correct horse battery staple',
      });
      const workspace = await callProcedure<{ id: string }>(
        owner.page,
        'workspaces.create',
        { name: `Acme ${run}`, plan: 'team' },
        'mutation',
      );
      const invite = await callProcedure<{ token: string; expiresAt: string }>(
        owner.page,
        'workspaces.invite',
        { workspaceId: workspace.id, email: guestAccount.email, role: 'member' },
        'mutation',
      );
      expect(Date.parse(invite.expiresAt) - Date.now()).toBeLessThanOrEqual(hours * 3600 * 1000);
      // Let the invite age past its end (the server's clock decides; a margin for the two clocks).
      await new Promise((done) =>
        setTimeout(done, Math.max(0, Date.parse(invite.expiresAt) - Date.now()) + 500),
      );

      await signUpThroughPage(guest.page, guestAccount);
      await guest.page.goto(`/invite#token=${invite.token}`);
      const said = guest.page.getByText(`Olivia Owner’s invite to Acme ${run} expired on`);
      await said.waitFor();
      expect(await said.textContent()).toContain(
        `Ask Olivia Owner or another admin of Acme ${run} for a new one.`,
      );
      expect(await guest.page.getByRole('button', { name: 'Accept invitation' }).count()).toBe(0);
      await assertAccessible(guest.page, 'the invite page for an expired link');
      const me = await callProcedure<{ workspaces: { id: string }[] }>(guest.page, 'auth.me', null, 'query');
      expect(me.workspaces.map((w) => w.id)).not.toContain(workspace.id);

      // The owner's list of pending invites leaves it out.
      await owner.page.goto(`/w/${workspace.id}/members`);
      await owner.page.getByText('No invite is waiting to be accepted.').waitFor();
      expect(owner.errors).toEqual([]);
      expect(guest.errors).toEqual([]);
      await owner.context.close();
      await guest.context.close();
    });
  });
}
