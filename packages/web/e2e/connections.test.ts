import { randomBytes } from 'node:crypto';
import { type FakeSlackOAuth, startFakeSlackOAuth } from '@latchkey/integration-slack/fake';
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
  storageDump,
  type Visitor,
} from './support/app';
import { type Backend, chromiumArgs, chromiumPath, describeOnEachBackend } from './support/environment';
import { type RunningServer, startServer } from './support/server';

// Issue 14's "done when" in real Chromium against the real built server and a Slack-shaped OAuth fake on
// loopback (its "Add to Slack" approves at once): connect Slack from the Integrations page, pick the connection
// in a node (grouped under Connections), run the workflow, see the refresh in the audit log, then revoke the
// app at "Slack" and see "needs reconnect", a run that says so, and a Reconnect that keeps the nodes working.

describeOnEachBackend('OAuth2 connections in Chromium', connectionFlows);

function connectionFlows(backend: Backend) {
  describe(`OAuth2 connections in Chromium on ${backend.name}`, () => {
    const run = randomBytes(4).toString('hex');
    const account = {
      name: 'Olivia Owner',
      email: `olivia-oauth-${run}@example.com`,
      password: 'correct horse battery staple',
    };
    const connectionName = `Ops Slack ${run}`;
    const nodeName = 'Post alert';
    let slack: FakeSlackOAuth;
    let server: RunningServer;
    let browser: Browser;
    let visitor: Visitor;
    let workspaceId = '';
    let connectionId = '';
    let workflowId = '';

    beforeAll(async () => {
      slack = await startFakeSlackOAuth();
      // Tokens that live 30 s, inside the 60 s refresh skew: every run refreshes first (as a 12-hour token
      // would near its end), so the refresh path is what the runs exercise.
      slack.setTokenLifetime(30);
      server = await startServer(backend, {
        LATCHKEY_OUTBOUND_ALLOW: '127.0.0.1',
        LATCHKEY_BASE_URL_SLACK: `${slack.url}/api`,
        LATCHKEY_BASE_URL_SLACK_OAUTH: `${slack.url}/oauth/v2`,
      });
      browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
      visitor = await openVisitor(browser, server.url);
      workspaceId = await signUpThroughPage(visitor.page, account);
    });

    afterAll(async () => {
      await browser?.close();
      await server?.stop();
      await slack?.close();
    });

    it('connects Slack from the Integrations page through the consent screen', async () => {
      const { page } = visitor;
      await page.goto(`/w/${workspaceId}/secrets`);
      // Secrets & API Keys points to Integrations, and its create form offers pasted keys only.
      await page.getByRole('main').getByRole('link', { name: 'Integrations' }).click();
      await page.getByRole('heading', { name: 'Integrations', level: 1 }).waitFor();
      const section = page.locator('section[data-integration="slack"]');
      await section.getByText('No Slack connections yet.').waitFor();
      await assertAccessible(page, 'the Integrations page without connections');

      await section.getByRole('button', { name: 'Connect Slack' }).click();
      const dialog = openDialog(page);
      await dialog.getByRole('textbox', { name: 'Name' }).fill(connectionName);
      await dialog.getByRole('textbox', { name: 'Client ID' }).fill(slack.clientId);
      await dialog.getByLabel('Client secret').fill(slack.clientSecret);
      await assertAccessible(page, 'the connect dialog');
      expect(slack.calls.code).toBe(0);
      await dialog.getByRole('button', { name: 'Connect to Slack' }).click();

      // Slack's consent approves and sends the browser back through /oauth/callback to this page.
      await page.waitForURL((url) => url.pathname === `/w/${workspaceId}/integrations` && url.search === '');
      const notice = page.getByRole('status').filter({ hasText: `“${connectionName}” is connected` });
      await notice.waitFor();
      expect(await notice.textContent()).toContain('as Fake Team · bot U0FAKEBOT · scopes chat:write');
      expect(slack.calls.code).toBe(1);
      const row = section.locator('tr[data-secret-id]', { hasText: connectionName });
      connectionId = (await row.getAttribute('data-secret-id')) ?? '';
      expect(await row.getAttribute('data-connection-status')).toBe('connected');
      const text = (await row.textContent()) ?? '';
      expect(text).toContain('Connected as Fake Team · bot U0FAKEBOT');
      expect(text).toContain('chat:write');
      expect(text).toContain('Olivia Owner (you)');
      await assertAccessible(page, 'the Integrations page with a connection');
      await screenshot(page, backend.name, 'integrations-connected');

      // A connection is not a pasted key: Secrets & API Keys does not list it.
      await page.goto(`/w/${workspaceId}/secrets`);
      await page.getByRole('heading', { name: 'No secrets yet' }).waitFor();
    });

    it('offers the connection in a Slack node, grouped, and a run posts with a refreshed token', async () => {
      const { page } = visitor;
      const workflow = await callProcedure<{ id: string }>(
        page,
        'workflows.create',
        { workspaceId, name: `Alerts ${run}` },
        'mutation',
      );
      workflowId = workflow.id;
      // A pasted bot token too, so the picker has both kinds to group.
      await callProcedure(
        page,
        'secrets.create',
        {
          workspaceId,
          credentialType: 'slackBotToken',
          name: `Pasted bot ${run}`,
          data: { token: `xoxb-fake-pasted-${run}` },
        },
        'mutation',
      );
      await page.goto(`/w/${workspaceId}/workflows/${workflowId}`);
      await page.getByRole('button', { name: 'Add the first node' }).click();
      const dialog = openDialog(page);
      await dialog.getByLabel('Node type').selectOption({ label: 'Slack' });
      await dialog.getByRole('textbox', { name: 'Node name', exact: true }).fill(nodeName);
      await dialog.locator('[data-field="channel"]').locator('input').fill('#ops');
      await dialog.locator('[data-field="text"]').locator('input, textarea').first().fill('Disk is full');
      const picker = dialog.getByLabel('Credential', { exact: true });
      await expect.poll(() => picker.isEnabled()).toBe(true);
      // Both kinds for this node type, grouped: pasted keys, then connections.
      expect(
        await picker
          .locator('optgroup')
          .evaluateAll((groups) => groups.map((group) => (group as HTMLOptGroupElement).label)),
      ).toEqual(['Secrets & API keys', 'Connections']);
      expect(await picker.locator('optgroup[label="Connections"] option').allTextContents()).toEqual([
        `${connectionName} — Slack app (OAuth)`,
      ]);
      expect(await picker.locator('optgroup[label="Secrets & API keys"] option').allTextContents()).toEqual([
        `Pasted bot ${run} — Slack bot token`,
      ]);
      await picker.selectOption({ label: `${connectionName} — Slack app (OAuth)` });
      await dialog.getByRole('button', { name: 'Add node' }).click();
      await expect.poll(() => page.locator('dialog[open]').count()).toBe(0);

      const card = page.locator(`li[data-node-name="${nodeName}"]`);
      const result = card.locator('[data-testid="node-result"]');
      await page.getByRole('button', { name: 'Run workflow' }).click();
      await result.waitFor();
      expect(await result.getAttribute('data-result')).toBe('ok');
      // The code's token was within the skew, so it was refreshed before the call; Slack saw the new one.
      expect(slack.calls.refresh).toBe(1);
      // (The fake numbers what it issues: the code took 1, the first access token 2, the refreshed one 3.)
      expect(slack.posted).toEqual([{ channel: '#ops', token: 'xoxe.xoxb-fake-3' }]);

      // The audit log shows the connection and its refresh.
      await page.getByRole('link', { name: 'Audit log' }).click();
      await page.locator('tr[data-action="secret.refreshed"]').first().waitFor();
      expect(await page.locator('tr[data-action="secret.connected"]').count()).toBe(1);
    });

    it('shows "needs reconnect" once the app is revoked, and Reconnect keeps the node working', async () => {
      const { page } = visitor;
      slack.revokeEverything();
      await page.goto(`/w/${workspaceId}/workflows/${workflowId}`);
      const card = page.locator(`li[data-node-name="${nodeName}"]`);
      const result = card.locator('[data-testid="node-result"]');
      await page.getByRole('button', { name: 'Run workflow' }).click();
      await result.waitFor();
      expect(await result.getAttribute('data-result')).toBe('failed');
      const failure = (await result.textContent()) ?? '';
      expect(failure).toContain(`Needs its Slack connection '${connectionName}' to be reconnected`);
      expect(failure).not.toContain("Node '");
      expect(slack.posted).toHaveLength(1);

      await page.getByRole('link', { name: 'Integrations' }).click();
      const row = page.locator(`tr[data-secret-id="${connectionId}"]`);
      await expect.poll(() => row.getAttribute('data-connection-status')).toBe('needs-reconnect');
      expect(await row.textContent()).toContain('Needs reconnect');
      await assertAccessible(page, 'the Integrations page with a connection that needs reconnecting');
      await screenshot(page, backend.name, 'integrations-needs-reconnect');

      // The node picker says it too.
      await page.goto(`/w/${workspaceId}/workflows/${workflowId}`);
      await card.getByRole('button', { name: /^Edit/ }).click();
      const picker = openDialog(page).getByLabel('Credential', { exact: true });
      await expect
        .poll(async () => (await picker.locator('option:checked').textContent()) ?? '')
        .toContain('(needs reconnect)');
      await page.keyboard.press('Escape');
      await expect.poll(() => page.locator('dialog[open]').count()).toBe(0);

      await page.getByRole('link', { name: 'Integrations' }).click();
      await page.getByRole('button', { name: `Reconnect ${connectionName}` }).click();
      await page.waitForURL((url) => url.pathname === `/w/${workspaceId}/integrations` && url.search === '');
      await page
        .getByRole('status')
        .filter({ hasText: `“${connectionName}” is connected` })
        .waitFor();
      // Same id: the node keeps its credential and runs again.
      expect(await row.getAttribute('data-connection-status')).toBe('connected');
      await page.goto(`/w/${workspaceId}/workflows/${workflowId}`);
      await page.getByRole('button', { name: 'Run workflow' }).click();
      await expect.poll(() => result.getAttribute('data-result')).toBe('ok');
      expect(slack.posted).toHaveLength(2);
    });

    it('a refused consent says so and leaves nothing half-saved', async () => {
      const { page } = visitor;
      const before = await callProcedure<{ items: unknown[] }>(
        page,
        'secrets.list',
        { workspaceId, kind: 'oauth2' },
        'query',
      );
      // A consent that comes back refused, as Slack sends it when the person presses Cancel.
      const started = await callProcedure<{ authorizationUrl: string; secretId: string }>(
        page,
        'secrets.connect',
        {
          workspaceId,
          credentialType: 'slackOAuth',
          name: `Refused ${run}`,
          data: { clientId: slack.clientId, clientSecret: slack.clientSecret },
        },
        'mutation',
      );
      const state = new URL(started.authorizationUrl).searchParams.get('state') ?? '';
      await page.goto(`/oauth/callback?error=access_denied&state=${encodeURIComponent(state)}`);
      await page.waitForURL((url) => url.pathname === `/w/${workspaceId}/integrations` && url.search === '');
      await page
        .getByRole('alert')
        .filter({ hasText: 'Access was not approved at the service, so nothing was connected.' })
        .waitFor();
      const after = await callProcedure<{ items: unknown[] }>(
        page,
        'secrets.list',
        { workspaceId, kind: 'oauth2' },
        'query',
      );
      expect(after.items).toHaveLength(before.items.length);
    });

    it('Rename gives a connection a new name in place: same connection, the node keeps it', async () => {
      const { page } = visitor;
      await page.goto(`/w/${workspaceId}/integrations`);
      const row = page.locator(`tr[data-secret-id="${connectionId}"]`);
      const rename = async (from: string, to: string) => {
        await row.getByRole('button', { name: `Rename ${from}` }).click();
        const dialog = openDialog(page);
        expect(await dialog.getByRole('heading').first().textContent()).toBe('Rename connection');
        const name = dialog.getByRole('textbox', { name: /^Name/ });
        expect(await name.inputValue()).toBe(from);
        await name.fill(to);
        await dialog.getByRole('button', { name: 'Rename', exact: true }).click();
        await page.getByText(`“${from}” is now called “${to}”.`).waitFor();
        await expect.poll(() => row.locator('.secret-name').textContent()).toBe(to);
      };
      await rename(connectionName, `Renamed ${run}`);
      expect(await row.getAttribute('data-connection-status')).toBe('connected');
      await assertAccessible(page, 'the Integrations page after renaming a connection');
      const workflow = await callProcedure<{ nodes: { secretId: string | null; status: string }[] }>(
        page,
        'workflows.get',
        { workflowId },
        'query',
      );
      expect(workflow.nodes).toEqual([expect.objectContaining({ secretId: connectionId, status: 'ok' })]);
      await rename(`Renamed ${run}`, connectionName);
    });

    it('Disconnect deletes the connection and names the node that will need a new credential', async () => {
      const { page } = visitor;
      await page.goto(`/w/${workspaceId}/integrations`);
      await page.getByRole('button', { name: `Disconnect ${connectionName}` }).click();
      const confirm = openDialog(page);
      await confirm.getByText('1 node in 1 workflow will need a new credential').waitFor();
      await confirm.getByRole('button', { name: 'Disconnect' }).click();
      await page
        .locator('section[data-integration="slack"]')
        .getByText('No Slack connections yet.')
        .waitFor();
    });

    it('kept every client secret and token out of the pages, responses and storage', async () => {
      const { page, network, errors } = visitor;
      // The fake's tokens all start with xoxe; the client secret was typed into a form that is gone; the pasted
      // bot token went in through the API.
      const canaries = ['xoxe', slack.clientSecret, `xoxb-fake-pasted-${run}`];
      const html = await page.content();
      expect(canaries.filter((canary) => html.includes(canary))).toEqual([]);
      const storage = await storageDump(page);
      expect(canaries.filter((canary) => storage.includes(canary))).toEqual([]);
      const responses = await network.responses();
      expect(responses.length).toBeGreaterThan(0);
      const leaks = responses.filter((response) => canaries.some((canary) => response.body.includes(canary)));
      expect(leaks.map((response) => response.url)).toEqual([]);
      expect(server.log()).not.toContain('xoxe');
      expect(errors).toEqual([]);
      publishScreenshots(backend.name, ['integrations-connected', 'integrations-needs-reconnect']);
    });
  });
}
