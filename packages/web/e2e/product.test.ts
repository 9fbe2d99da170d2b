import { randomBytes } from 'node:crypto';
import { fakeSendgrid } from '@latchkey/integration-sendgrid/fake';
import { type Browser, chromium, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assertAccessible,
  callProcedure,
  discardDialog,
  escapeRegExp,
  openDialog,
  openVisitor,
  publishScreenshots,
  screenshot,
  storageDump,
  type Visitor,
} from './support/app';
import { type Backend, chromiumArgs, chromiumPath, describeOnEachBackend } from './support/environment';
import {
  type CredentialTypeInfo,
  fakeValue,
  fetchIntegrations,
  type IntegrationInfo,
  invalidValue,
  type ObjectSchema,
} from './support/schemas';
import { type RunningServer, startServer } from './support/server';

// The product's flows in real Chromium against the real built server: once on a fresh PGlite data dir
// and, with TEST_DATABASE_URL, once more on PostgreSQL (a fresh schema). The test data comes from the
// server's integrations.list, so every registered credential type and node type is exercised.

describeOnEachBackend('Latchkey in Chromium', productFlows);

interface CreatedSecret {
  integration: IntegrationInfo;
  credentialType: CredentialTypeInfo;
  name: string;
  id: string;
  /** Field name → the value typed (public fields only, to check they are shown again where allowed). */
  publicValues: Record<string, string>;
}

interface Account {
  name: string;
  email: string;
  password: string;
}

function productFlows(backend: Backend) {
  describe(`Latchkey in Chromium on ${backend.name}`, () => {
    const run = randomBytes(4).toString('hex');
    let server: RunningServer;
    let fakeSendGrid: ReturnType<typeof fakeSendgrid>;
    let browser: Browser;
    let owner: Visitor;
    let member: Visitor;
    let integrations: IntegrationInfo[];
    let teamWorkspaceId = '';
    let personalWorkspaceId = '';
    const canaries: string[] = [];
    const created: CreatedSecret[] = [];
    const ownerAccount: Account = {
      name: 'Olivia Owner',
      email: `olivia-${run}@example.com`,
      password: 'correct horse battery staple',
    };
    const memberAccount: Account = {
      name: 'Max Member',
      email: `max-${run}@example.com`,
      password: 'another long passphrase',
    };
    const workflowName = `Customer onboarding ${run}`;
    const memberWorkflowName = `Max alerts ${run}`;
    let memberSecret: { name: string; integration: IntegrationInfo } | null = null;
    let memberNodeName = '';
    /** Integration id → the name of the secret its node in the owner's workflow uses. */
    const nodeSecret = new Map<string, string>();
    const shot = (page: Page, name: string) => screenshot(page, backend.name, name);
    // Obviously fake SendGrid keys (the shape SG.<id>.<secret>, nothing like a real key's lengths): the fake
    // SendGrid accepts the second only. They are canaries too: no page, response or storage may hold them.
    const sendgridKeys = {
      rejected: `SG.fake-rejected-${run}.fake-test-secret`,
      accepted: `SG.fake-accepted-${run}.fake-test-secret`,
    };
    canaries.push(sendgridKeys.rejected, sendgridKeys.accepted);
    const emailWorkflowName = `Welcome emails ${run}`;
    const emailSecretName = `Marketing key ${run}`;
    const emailNodeName = 'Send welcome email';

    function newCanary(): string {
      const canary = `Lk${run}Canary${canaries.length}Zq`;
      canaries.push(canary);
      return canary;
    }

    const credentialTypes = () =>
      integrations.flatMap((integration) =>
        integration.credentialTypes.map((credentialType) => ({ integration, credentialType })),
      );
    /** The SendGrid API key type: the flows that run against the local fake SendGrid use it. */
    const sendgridType = () => {
      const found = credentialTypes().find(({ credentialType }) => credentialType.type === 'sendgridApiKey');
      if (!found) throw new Error('the SendGrid integration is not registered');
      return found;
    };

    beforeAll(async () => {
      fakeSendGrid = await fakeSendgrid({ acceptedKey: sendgridKeys.accepted }).listen();
      // The fake SendGrid speaks plain http: the allow-list must name its host (docs/security.md, claim 32).
      server = await startServer(backend, {
        LATCHKEY_BASE_URL_SENDGRID: fakeSendGrid.url,
        LATCHKEY_OUTBOUND_ALLOW: '127.0.0.1',
      });
      browser = await chromium.launch({ executablePath: chromiumPath, args: chromiumArgs });
      integrations = await fetchIntegrations(server.url);
      owner = await openVisitor(browser, server.url);
    });

    afterAll(async () => {
      await browser?.close();
      await server?.stop();
      await fakeSendGrid?.close();
    });

    it('signs up, with the form checking its fields before sending anything', async () => {
      const { page, network } = owner;
      await page.goto('/');
      await page.waitForURL(/\/signin/);
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await assertAccessible(page, 'the sign-in page');
      await shot(page, 'sign-in');

      await page.getByRole('link', { name: 'Create an account' }).click();
      await page.waitForURL(/\/signup/);
      await page.getByLabel('Your name').fill(ownerAccount.name);
      await page.getByLabel('Email').fill(ownerAccount.email);
      const password = page.getByLabel('Password');
      await password.fill('short');
      await page.getByRole('button', { name: 'Create account' }).click();
      await expect.poll(() => password.getAttribute('aria-invalid')).toBe('true');
      const errorId = (await password.getAttribute('aria-describedby'))?.split(' ').at(-1) ?? '';
      expect(await page.locator(`[id="${errorId}"]`).textContent()).toMatch(/at least/);
      expect(network.procedureCalls('auth.signUp')).toBe(0);
      await assertAccessible(page, 'the sign-up page with a field error');
      await shot(page, 'sign-up-errors');

      await password.fill(ownerAccount.password);
      await page.getByRole('button', { name: 'Create account' }).click();
      await page.waitForURL(/\/w\/[^/]+\/secrets$/);
      personalWorkspaceId = new URL(page.url()).pathname.split('/')[2] ?? '';
      await page.getByRole('heading', { name: 'No secrets yet' }).waitFor();
      await assertAccessible(page, 'the empty secrets page');
      await shot(page, 'secrets-empty');
    });

    it('creates a team workspace from the workspace switcher', async () => {
      const { page } = owner;
      await page.getByRole('button', { name: '+ New workspace' }).click();
      const dialog = openDialog(page);
      await dialog.getByLabel('Workspace name').fill(`Acme ${run}`);
      await dialog.getByRole('radio', { name: /^Team/ }).check();
      await assertAccessible(page, 'the create-workspace dialog');
      await shot(page, 'create-workspace-dialog');
      await dialog.getByRole('button', { name: 'Create workspace' }).click();
      await page.waitForURL(
        (url) => /\/w\/[^/]+\/secrets$/.test(url.pathname) && !url.pathname.includes(personalWorkspaceId),
      );
      teamWorkspaceId = new URL(page.url()).pathname.split('/')[2] ?? '';
      expect(teamWorkspaceId).not.toBe('');
      expect(await page.getByRole('combobox', { name: 'Workspace', exact: true }).inputValue()).toBe(
        teamWorkspaceId,
      );
      await page.locator('.sidebar').getByText('Team plan').waitFor();
      const me = await callProcedure<{ workspaces: { id: string; plan: string; role: string }[] }>(
        page,
        'auth.me',
        null,
        'query',
      );
      expect(me.workspaces.find((workspace) => workspace.id === teamWorkspaceId)).toMatchObject({
        plan: 'team',
        role: 'owner',
      });
    });

    it('renders each credential type’s form from its JSON Schema, with keyboard-friendly dialogs', async () => {
      const { page } = owner;
      const newSecret = page.getByRole('button', { name: 'New secret' }).first();
      await newSecret.click();
      const dialog = openDialog(page);
      // (The dialog's code may still be on its way: src/ui/lazyDialog.tsx.)
      await expect
        .poll(() => page.evaluate(() => Boolean(document.activeElement?.closest('dialog[open]'))))
        .toBe(true);

      for (const { integration, credentialType } of credentialTypes()) {
        await dialog.getByLabel('Integration').selectOption({ label: integration.displayName });
        if (integration.credentialTypes.length > 1)
          await dialog
            .getByRole('radio', { name: new RegExp(`^${escapeRegExp(credentialType.displayName)}`) })
            .check();
        await dialog.getByRole('group', { name: credentialType.displayName, exact: true }).waitFor();
        await assertSchemaForm(
          dialog,
          credentialType.jsonSchema,
          `${integration.displayName} / ${credentialType.displayName}`,
        );
      }

      // A secret field is masked, and its toggle shows what was typed while typing.
      const { integration, credentialType } =
        credentialTypes().find(({ credentialType }) => credentialType.secretFields.length > 0) ?? {};
      if (!integration || !credentialType) throw new Error('no credential type has a secret field');
      await dialog.getByLabel('Integration').selectOption({ label: integration.displayName });
      if (integration.credentialTypes.length > 1)
        await dialog
          .getByRole('radio', { name: new RegExp(`^${escapeRegExp(credentialType.displayName)}`) })
          .check();
      const secretInput = fieldControl(dialog, credentialType.secretFields[0] as string);
      await secretInput.fill('typed-but-not-saved');
      expect(await secretInput.getAttribute('type')).toBe('password');
      const toggle = dialog.locator(`[data-field="${credentialType.secretFields[0]}"] .secret-toggle`);
      await toggle.click();
      expect(await secretInput.getAttribute('type')).toBe('text');
      expect(await toggle.getAttribute('aria-pressed')).toBe('true');
      await toggle.click();
      expect(await secretInput.getAttribute('type')).toBe('password');

      // Tab stays inside the modal; Escape on a half-filled form asks before discarding it, then closes it and
      // gives focus back to the button that opened it.
      for (let i = 0; i < 25; i++) {
        await page.keyboard.press('Tab');
        const inside = await page.evaluate(
          () =>
            document.activeElement === document.body ||
            Boolean(document.activeElement?.closest('dialog[open]')),
        );
        expect(inside).toBe(true);
      }
      await page.keyboard.press('Escape');
      const prompt = dialog.getByRole('alert').filter({ hasText: 'Discard what you typed?' });
      await prompt.waitFor();
      expect(await page.locator('dialog[open]').count()).toBe(1);
      const keep = prompt.getByRole('button', { name: 'Keep editing' });
      expect(await keep.evaluate((button) => button === document.activeElement)).toBe(true);
      await assertAccessible(page, 'the discard question of a half-filled form');
      await keep.click();
      await expect.poll(() => prompt.count()).toBe(0);
      expect(await secretInput.inputValue()).toBe('typed-but-not-saved');
      await page.keyboard.press('Escape');
      await prompt.getByRole('button', { name: 'Discard' }).click();
      await expect.poll(() => page.locator('dialog[open]').count()).toBe(0);
      await expect.poll(() => newSecret.evaluate((button) => button === document.activeElement)).toBe(true);
      // An untouched form closes at once.
      await newSecret.click();
      await openDialog(page).getByLabel('Integration').waitFor();
      await page.keyboard.press('Escape');
      await expect.poll(() => page.locator('dialog[open]').count()).toBe(0);
    });

    it('shows field errors for invalid input and saves nothing', async () => {
      const { page, network } = owner;
      const target = credentialTypes().find(({ credentialType }) =>
        Object.entries(credentialType.jsonSchema.properties).some(
          ([name, property]) =>
            credentialType.jsonSchema.required?.includes(name) && invalidValue(property) !== null,
        ),
      );
      if (!target) throw new Error('no credential type has a required field with a pattern');
      const { integration, credentialType } = target;
      const [patterned, property] = Object.entries(credentialType.jsonSchema.properties).find(
        ([name, candidate]) =>
          credentialType.jsonSchema.required?.includes(name) && invalidValue(candidate) !== null,
      ) as [string, (typeof credentialType.jsonSchema.properties)[string]];

      await page.getByRole('button', { name: 'New secret' }).first().click();
      const dialog = openDialog(page);
      await selectCredentialType(dialog, integration, credentialType);
      await fieldControl(dialog, patterned).fill(invalidValue(property) as string);
      await dialog.getByRole('button', { name: 'Save secret' }).click();

      const nameInput = dialog.getByRole('textbox', { name: 'Name', exact: true });
      await expect.poll(() => nameInput.getAttribute('aria-invalid')).toBe('true');
      const patternedInput = fieldControl(dialog, patterned);
      expect(await patternedInput.getAttribute('aria-invalid')).toBe('true');
      const describedBy = (await patternedInput.getAttribute('aria-describedby')) ?? '';
      const messages = await Promise.all(
        describedBy.split(' ').map((id) => page.locator(`[id="${id}"]`).textContent()),
      );
      // The schema's own sentence for its format (its backticked parts show as code), else the field's label.
      expect(messages.join(' ')).toContain(
        property.patternMessage?.replaceAll('`', '') ?? property.label ?? patterned,
      );
      expect(await dialog.locator('.field-error[role="alert"]').count()).toBeGreaterThanOrEqual(2);
      expect(network.procedureCalls('secrets.create')).toBe(0);
      await assertAccessible(page, 'the create-secret dialog with field errors');
      await shot(page, 'create-secret-errors');

      // A value the browser accepts but the server refuses (a control character in the name): the
      // server's field issue appears next to the name field.
      for (const [name, fieldProperty] of Object.entries(credentialType.jsonSchema.properties))
        await fillField(dialog, name, fakeValue(fieldProperty, newCanary()));
      await nameInput.fill('Tab\tin the name');
      const response = page.waitForResponse((candidate) => candidate.url().includes('secrets.create'));
      await dialog.getByRole('button', { name: 'Save secret' }).click();
      expect((await response).status()).toBe(400);
      await expect.poll(() => nameInput.getAttribute('aria-invalid')).toBe('true');
      const nameErrorId = (await nameInput.getAttribute('aria-describedby'))?.split(' ').at(-1) ?? '';
      expect((await page.locator(`[id="${nameErrorId}"]`).textContent())?.length ?? 0).toBeGreaterThan(0);
      await discardDialog(page);

      const listed = await callProcedure<{ items: unknown[] }>(
        page,
        'secrets.list',
        { workspaceId: teamWorkspaceId },
        'query',
      );
      expect(listed.items).toEqual([]);
    });

    it('creates one secret of every credential type through the generated forms', async () => {
      const { page } = owner;
      // The picture for the docs: the richest form that needs no credential-type choice.
      const size = (candidate: { integration: IntegrationInfo; credentialType: CredentialTypeInfo }) =>
        Object.keys(candidate.credentialType.jsonSchema.properties).length * 2 +
        (candidate.integration.credentialTypes.length === 1 ? 1 : 0);
      const mostFields = credentialTypes().reduce((best, candidate) =>
        size(candidate) > size(best) ? candidate : best,
      );
      for (const { integration, credentialType } of credentialTypes()) {
        await page.getByRole('button', { name: 'New secret' }).first().click();
        const dialog = openDialog(page);
        await selectCredentialType(dialog, integration, credentialType);
        const name = `${credentialType.displayName} (test ${run.slice(0, 4)})`;
        await dialog.getByRole('textbox', { name: 'Name', exact: true }).fill(name);
        const publicValues: Record<string, string> = {};
        for (const [field, property] of Object.entries(credentialType.jsonSchema.properties)) {
          const value = fakeValue(property, property.secret ? newCanary() : '');
          if (!property.secret) publicValues[field] = value;
          await fillField(dialog, field, value);
        }
        if (credentialType === mostFields.credentialType) {
          await assertAccessible(page, 'the filled create-secret dialog');
          await shot(page, 'create-secret-dialog');
        }
        await dialog.getByRole('button', { name: 'Save secret' }).click();
        await expect.poll(() => page.locator('dialog[open]').count()).toBe(0);
        const row = page.locator('tr[data-secret-id]', { hasText: name });
        await row.waitFor();
        created.push({
          integration,
          credentialType,
          name,
          id: (await row.getAttribute('data-secret-id')) ?? '',
          publicValues,
        });
      }

      const rows = page.locator('tr[data-secret-id]');
      expect(await rows.count()).toBe(credentialTypes().length);
      for (const secret of created) {
        const text = ((await page.locator(`tr[data-secret-id="${secret.id}"]`).textContent()) ?? '').replace(
          /\s+/g,
          ' ',
        );
        expect(text).toContain(secret.integration.displayName);
        // The Type column in words: the integration and the credential type, no internal node type id.
        expect(
          await page.locator(`tr[data-secret-id="${secret.id}"] .cell-type > *`).allTextContents(),
        ).toEqual([secret.integration.displayName, secret.credentialType.displayName]);
        expect(text).toContain(secret.credentialType.displayName);
        expect(text).toContain(ownerAccount.name);
        expect(text).toContain('Never');
        // Public values as people read them: a choice by its label (Mailgun's region "US", not "us").
        for (const [field, value] of Object.entries(secret.publicValues)) {
          const property = secret.credentialType.jsonSchema.properties[field];
          expect(text).toContain(`${property?.label}: ${property?.choiceLabels?.[value] ?? value}`);
        }
        expect(await page.locator(`tr[data-secret-id="${secret.id}"] [data-rotated]`).count()).toBe(0);
      }
      expect(
        created.some((secret) =>
          Object.values(secret.credentialType.jsonSchema.properties).some(
            (property) => property.choiceLabels,
          ),
        ),
      ).toBe(true);
      await assertAccessible(page, 'the secrets list');
      await shot(page, 'secrets-list');
    });

    it('never shows a saved value again: not in the page, a response, or browser storage', async () => {
      const { page, network } = owner;
      // The create form starts empty again.
      await page.getByRole('button', { name: 'New secret' }).first().click();
      const dialog = openDialog(page);
      const first = created[0] as CreatedSecret;
      await selectCredentialType(dialog, first.integration, first.credentialType);
      for (const field of first.credentialType.secretFields)
        expect(await fieldControl(dialog, field).inputValue()).toBe('');
      await page.keyboard.press('Escape');

      // Rotation: public fields are shown again, secret fields start empty, and the id stays the same.
      const rotated =
        created.find(
          (secret) =>
            Object.keys(secret.publicValues).length > 0 && secret.credentialType.secretFields.length > 0,
        ) ?? first;
      await page.getByRole('button', { name: `Rotate ${rotated.name}` }).click();
      const rotate = openDialog(page);
      expect(await rotate.textContent()).toMatch(/delet\w* the secret and creat\w* a new one/i);
      for (const [field, value] of Object.entries(rotated.publicValues))
        expect(await fieldControl(rotate, field).inputValue()).toBe(value);
      for (const field of rotated.credentialType.secretFields) {
        expect(await fieldControl(rotate, field).inputValue()).toBe('');
        await fillField(
          rotate,
          field,
          fakeValue(rotated.credentialType.jsonSchema.properties[field] ?? {}, newCanary()),
        );
      }
      await assertAccessible(page, 'the rotate dialog');
      await shot(page, 'rotate-secret-dialog');
      await rotate.getByRole('button', { name: 'Replace value' }).click();
      await expect.poll(() => page.locator('dialog[open]').count()).toBe(0);
      await page.locator(`tr[data-secret-id="${rotated.id}"] [data-rotated]`).waitFor();

      // The page's JavaScript heap (form state, the TanStack mutation cache, React's trees) holds none
      // of the values typed, once their dialogs are closed: a heap snapshot (taken after a full GC).
      await page.waitForTimeout(300);
      const heap = await heapStrings(page);
      expect(heap.length).toBeGreaterThan(100_000);
      expect(canaries.filter((canary) => heap.includes(canary))).toEqual([]);

      await page.reload();
      await page.locator('tr[data-secret-id]').first().waitFor();
      await assertNoSecretValues(owner, canaries);
      // The check above is meaningful: the values did travel, in the requests that saved them.
      expect(
        network.requests.filter((request) => canaries.some((c) => request.postData?.includes(c))).length,
      ).toBeGreaterThan(created.length - 1);
    });

    it('filters the list by integration and by creator, and searches by name', async () => {
      const { page } = owner;
      const byIntegration =
        integrations.find((integration) => integration.credentialTypes.length > 1) ?? integrations[0];
      if (!byIntegration) throw new Error('no integrations');
      await page
        .getByLabel('Integration', { exact: true })
        .selectOption({ label: byIntegration.displayName });
      await expect
        .poll(() => page.locator('tr[data-secret-id]').count())
        .toBe(created.filter((secret) => secret.integration.id === byIntegration.id).length);
      for (const text of await page.locator('tr[data-secret-id]').allTextContents())
        expect(text).toContain(byIntegration.displayName);
      await page.getByLabel('Integration', { exact: true }).selectOption({ label: 'All integrations' });

      const wanted = created.at(-1) as CreatedSecret;
      await page.getByLabel('Search by name').fill(wanted.name);
      await expect.poll(() => page.locator('tr[data-secret-id]').allTextContents()).toHaveLength(1);
      expect(await page.locator('tr[data-secret-id] .secret-name').textContent()).toBe(wanted.name);
      await page.getByLabel('Search by name').fill(`no such secret ${run}`);
      await page.getByText('No secrets match these filters.').waitFor();
      // "Clear filters" empties every filter and brings the whole list back.
      await page.getByRole('button', { name: 'Clear filters' }).click();
      expect(await page.getByLabel('Search by name').inputValue()).toBe('');
      await expect.poll(() => page.locator('tr[data-secret-id]').count()).toBe(created.length);

      await page.getByLabel('Created by').selectOption({ label: `${ownerAccount.name} (you)` });
      await expect.poll(() => page.locator('tr[data-secret-id]').count()).toBe(created.length);
      await page.getByLabel('Created by').selectOption({ label: 'Anyone' });
    });

    it('pages through a long list with “Load more”', async () => {
      const { page } = owner;
      const { integration, credentialType } = credentialTypes()[0] as ReturnType<
        typeof credentialTypes
      >[number];
      const total = 27;
      for (let i = 0; i < total; i++) {
        const data = Object.fromEntries(
          Object.entries(credentialType.jsonSchema.properties).map(([field, property]) => [
            field,
            fakeValue(property, newCanary()),
          ]),
        );
        await callProcedure(
          page,
          'secrets.create',
          { workspaceId: personalWorkspaceId, credentialType: credentialType.type, name: `Bulk ${i}`, data },
          'mutation',
        );
      }
      await page.goto(`/w/${personalWorkspaceId}/secrets`);
      const rows = page.locator('tr[data-secret-id]');
      await rows.first().waitFor();
      const firstPage = await rows.count();
      expect(firstPage).toBeLessThan(total);
      const loadMore = page.getByRole('button', { name: 'Load more' });
      while (await loadMore.isVisible()) {
        const before = await rows.count();
        await loadMore.click();
        await expect.poll(() => rows.count()).toBeGreaterThan(before);
      }
      expect(await rows.count()).toBe(total);
      const names = await page.locator('tr[data-secret-id] .secret-name').allTextContents();
      expect(new Set(names).size).toBe(total);
      expect(await rows.first().textContent()).toContain(integration.displayName);
      await page.goto(`/w/${teamWorkspaceId}/secrets`);
      await page.locator('tr[data-secret-id]').first().waitFor();
    });

    it('offers each node type only the secrets of its own integration in the node editor', async () => {
      const { page } = owner;
      await page.getByRole('link', { name: 'Workflows' }).click();
      await page.getByRole('heading', { name: 'Workflows', level: 1 }).waitFor();
      await page.getByRole('heading', { name: 'No workflows yet' }).waitFor();
      await page.getByRole('textbox', { name: 'New workflow' }).fill(workflowName);
      await page.getByRole('button', { name: 'Create workflow' }).click();
      await page.getByRole('heading', { name: workflowName, level: 1 }).waitFor();

      for (const integration of integrations) {
        await page
          .getByRole('button', { name: /^Add (the first )?node$/ })
          .first()
          .click();
        const dialog = openDialog(page);
        await dialog.getByLabel('Node type').selectOption({ label: integration.displayName });
        const picker = dialog.getByLabel('Credential', { exact: true });
        await expect.poll(() => picker.isEnabled()).toBe(true);
        const offered = (await picker.locator('option').allTextContents())
          .slice(1)
          .map((text) => text.split(' — ')[0]);
        const expected = created
          .filter((secret) => secret.integration.id === integration.id)
          .map((secret) => secret.name);
        expect(offered.sort()).toEqual(expected.sort());

        const nodeName = `${integration.displayName} step`;
        await dialog.getByRole('textbox', { name: 'Node name', exact: true }).fill(nodeName);
        await fillRequiredParams(dialog, integration.paramsSchema);
        await picker.selectOption({ index: 1 });
        if (integration === integrations[0]) {
          await assertAccessible(page, 'the add-node dialog');
          await shot(page, 'node-dialog');
        }
        await dialog.getByRole('button', { name: 'Add node' }).click();
        await expect.poll(() => page.locator('dialog[open]').count()).toBe(0);
        const card = page.locator(`li[data-node-name="${nodeName}"]`);
        await card.waitFor();
        expect(await card.textContent()).toContain(offered[0] as string);
        nodeSecret.set(integration.id, offered[0] as string);
      }
      await assertAccessible(page, 'the workflow editor');
      await shot(page, 'workflow-editor');
    });

    it('deletes a secret only after naming the nodes that use it, and the node can then be fixed', async () => {
      const { page } = owner;
      const integration =
        integrations.find((candidate) => candidate.credentialTypes.length > 1) ?? integrations[0];
      if (!integration) throw new Error('no integrations');
      const nodeName = `${integration.displayName} step`;
      const card = page.locator(`li[data-node-name="${nodeName}"]`);
      const usedName = nodeSecret.get(integration.id) ?? '';
      expect(usedName).not.toBe('');

      await page.getByRole('link', { name: 'Secrets & API Keys' }).click();
      await page.getByRole('button', { name: `Delete ${usedName}` }).click();
      const dialog = openDialog(page);
      await dialog.getByText('1 node in 1 workflow will need a new credential').waitFor();
      expect(await dialog.textContent()).toContain(`${workflowName}: ${nodeName}`);
      await assertAccessible(page, 'the delete-secret dialog');
      await shot(page, 'delete-secret-dialog');
      await dialog.getByRole('button', { name: 'Delete secret' }).click();
      await expect.poll(() => page.locator('tr[data-secret-id]', { hasText: usedName }).count()).toBe(0);
      // The Delete button that opened the dialog is gone with its row: focus goes to the page's heading.
      await expect
        .poll(() => page.evaluate(() => document.activeElement?.textContent))
        .toBe('Secrets & API Keys');
      const deletedIndex = created.findIndex((secret) => secret.name === usedName);
      created.splice(deletedIndex, 1);

      await page.getByRole('link', { name: 'Workflows' }).click();
      await page
        .locator(`tr[data-workflow-name="${workflowName}"]`, { hasText: 'Needs attention' })
        .waitFor();
      await page.getByRole('link', { name: workflowName }).click();
      await card.locator('[data-testid="needs-credential"]').waitFor();
      expect(await card.textContent()).toContain(usedName);
      // The banner and the Run button say the same: the flagged node will fail, the others run.
      expect(await page.locator('#needs-credential-banner').textContent()).toContain(
        '1 node needs a credential: a run fails it, naming it, and runs the other',
      );
      expect(await page.getByRole('button', { name: /^Run workflow/ }).textContent()).toBe(
        'Run workflow (1 node will fail)',
      );

      // "Choose credential" opens the editor on the picker; choosing another credential clears the marker.
      await page.getByRole('button', { name: `Choose credential for ${nodeName}` }).click();
      const editor = openDialog(page);
      const picker = editor.getByLabel('Credential', { exact: true });
      await expect.poll(() => picker.isEnabled()).toBe(true);
      await expect.poll(() => picker.evaluate((element) => element === document.activeElement)).toBe(true);
      const remaining = created.find((secret) => secret.integration.id === integration.id);
      if (remaining)
        await picker.selectOption({ label: `${remaining.name} — ${remaining.credentialType.displayName}` });
      else throw new Error(`expected a second ${integration.displayName} secret to choose`);
      await editor.getByRole('button', { name: 'Save node' }).click();
      await expect.poll(() => card.locator('[data-testid="needs-credential"]').count()).toBe(0);
      expect(await card.textContent()).toContain(remaining.name);
    });

    it('invites a second person, who joins, creates a secret inline in a node editor and uses it', async () => {
      const { page, network } = owner;
      await page.getByRole('link', { name: 'Members' }).click();
      await page.getByRole('heading', { name: 'Members', level: 1 }).waitFor();
      // The only owner learns why they cannot leave, before any preview of what leaving would delete.
      await page.getByRole('button', { name: 'Leave workspace' }).click();
      const cannotLeave = openDialog(page);
      await cannotLeave.getByRole('heading', { name: /^You cannot leave/ }).waitFor();
      expect(await cannotLeave.textContent()).toContain('You are its only owner');
      expect(await cannotLeave.getByRole('button', { name: 'Leave workspace' }).count()).toBe(0);
      expect(network.procedureCalls('workspaces.removalPreview')).toBe(0);
      await cannotLeave.getByRole('button', { name: 'OK' }).click();
      await expect.poll(() => page.locator('dialog[open]').count()).toBe(0);

      await page.getByRole('button', { name: 'Invite people' }).click();
      let dialog = openDialog(page);
      await dialog.getByLabel('Email').fill(memberAccount.email);
      await dialog.getByLabel('Role').selectOption('member');
      await dialog.getByRole('button', { name: 'Create invite link' }).click();
      const linkInput = dialog.getByLabel('Invite link');
      await linkInput.waitFor();
      const link = await linkInput.inputValue();
      // Focus is on what comes next: copying the link.
      expect(
        await dialog
          .getByRole('button', { name: 'Copy' })
          .evaluate((button) => button === document.activeElement),
      ).toBe(true);
      expect(link).toMatch(new RegExp(`^${escapeRegExp(server.url)}/invite#token=[^/]+$`));
      await assertAccessible(page, 'the invite dialog with its link');
      await shot(page, 'invite-dialog');
      await dialog.getByRole('button', { name: 'Done' }).click();
      // Shown once: opening the dialog again starts a new invite.
      await page.getByRole('button', { name: 'Invite people' }).click();
      dialog = openDialog(page);
      expect(await dialog.getByLabel('Invite link').count()).toBe(0);
      expect(await page.content()).not.toContain(link);
      await page.keyboard.press('Escape');

      member = await openVisitor(browser, server.url);
      const memberPage = member.page;
      await memberPage.goto(link);
      await memberPage.getByRole('heading', { name: /^Join / }).waitFor();
      await assertAccessible(memberPage, 'the invite page');
      await shot(memberPage, 'accept-invite');
      await memberPage.getByRole('link', { name: 'Create an account' }).click();
      await memberPage.getByLabel('Your name').fill(memberAccount.name);
      await memberPage.getByLabel('Email').fill(memberAccount.email);
      await memberPage.getByLabel('Password').fill(memberAccount.password);
      await memberPage.getByRole('button', { name: 'Create account' }).click();
      await memberPage.waitForURL(/\/invite$/);
      await memberPage.getByRole('button', { name: 'Accept invitation' }).click();
      await memberPage.waitForURL(new RegExp(`/w/${teamWorkspaceId}/secrets$`));

      // Members see the secrets they created, not everyone's.
      await memberPage.getByRole('heading', { name: 'No secrets yet' }).waitFor();
      for (const secret of created) expect(await memberPage.content()).not.toContain(secret.name);
      await assertAccessible(memberPage, 'a member’s secrets page');
      await shot(memberPage, 'member-secrets');

      await memberPage.getByRole('link', { name: 'Workflows' }).click();
      await memberPage.locator(`tr[data-workflow-name="${workflowName}"]`).waitFor();
      await memberPage.getByRole('textbox', { name: 'New workflow' }).fill(memberWorkflowName);
      await memberPage.getByRole('button', { name: 'Create workflow' }).click();
      await memberPage.getByRole('heading', { name: memberWorkflowName, level: 1 }).waitFor();
      await memberPage
        .getByRole('button', { name: /^Add (the first )?node$/ })
        .first()
        .click();
      const nodeDialog = openDialog(memberPage);
      const integration =
        integrations.find((candidate) => candidate.credentialTypes.length === 1) ??
        (integrations[0] as IntegrationInfo);
      await nodeDialog.getByLabel('Node type').selectOption({ label: integration.displayName });
      const picker = nodeDialog.getByLabel('Credential', { exact: true });
      await expect.poll(() => picker.isEnabled()).toBe(true);
      // A member may select any secret of the workspace that fits the node type.
      const offered = (await picker.locator('option').allTextContents())
        .slice(1)
        .map((text) => text.split(' — ')[0]);
      expect(offered.sort()).toEqual(
        created
          .filter((s) => s.integration.id === integration.id)
          .map((s) => s.name)
          .sort(),
      );

      await nodeDialog.getByRole('button', { name: 'Create new…' }).click();
      const secretDialog = openDialog(memberPage);
      await secretDialog.getByRole('heading', { name: 'New secret' }).waitFor();
      expect(await memberPage.locator('dialog[open]').count()).toBe(2);
      expect(await secretDialog.getByLabel('Integration').locator('option').allTextContents()).toEqual([
        integration.displayName,
      ]);
      const credentialType = integration.credentialTypes[0] as CredentialTypeInfo;
      const secretName = `Max's ${integration.displayName} key ${run}`;
      await secretDialog.getByRole('textbox', { name: 'Name', exact: true }).fill(secretName);
      for (const [field, property] of Object.entries(credentialType.jsonSchema.properties))
        await fillField(secretDialog, field, fakeValue(property, property.secret ? newCanary() : ''));
      await secretDialog.getByRole('button', { name: 'Save secret' }).click();
      await expect.poll(() => memberPage.locator('dialog[open]').count()).toBe(1);
      // The new secret is preselected in the picker.
      await expect
        .poll(async () => ((await picker.locator('option:checked').textContent()) ?? '').split(' — ')[0])
        .toBe(secretName);
      // Its "saved" toast is drawn above the node editor that is still open (and its backdrop), not under it.
      const toast = memberPage.locator('.toast', { hasText: `Secret “${secretName}” saved` });
      await toast.waitFor();
      // (The region is in the top layer, re-entered as each toast appears, so it is drawn over the dialog that
      // was opened before; a page element under a modal dialog's backdrop is not in the top layer at all.
      // Hit-testing cannot tell: the page outside a modal dialog is inert.)
      expect(
        await memberPage
          .locator('.toasts')
          .evaluate((element) => [
            element.matches(':popover-open'),
            getComputedStyle(element).getPropertyValue('overlay'),
          ]),
      ).toEqual([true, 'auto']);
      expect(await memberPage.locator('dialog[open]').count()).toBe(1);

      memberNodeName = `Notify ${run}`;
      await nodeDialog.getByRole('textbox', { name: 'Node name', exact: true }).fill(memberNodeName);
      await fillRequiredParams(nodeDialog, integration.paramsSchema);
      await nodeDialog.getByRole('button', { name: 'Add node' }).click();
      await expect.poll(() => memberPage.locator('dialog[open]').count()).toBe(0);
      const card = memberPage.locator(`li[data-node-name="${memberNodeName}"]`);
      await card.waitFor();
      expect(await card.textContent()).toContain(secretName);
      memberSecret = { name: secretName, integration };

      await memberPage.getByRole('link', { name: 'Secrets & API Keys' }).click();
      await memberPage.locator('tr[data-secret-id]', { hasText: secretName }).waitFor();
      expect(await memberPage.locator('tr[data-secret-id]').count()).toBe(1);
      await assertNoSecretValues(member, canaries);
    });

    it('changes a member’s role, then removes them after showing what will be deleted', async () => {
      const { page } = owner;
      if (!memberSecret) throw new Error('the member flow did not run');
      await page.reload();
      const row = page.locator(`tr[data-member-email="${memberAccount.email}"]`);
      await row.waitFor();
      const role = page.getByLabel(`Role of ${memberAccount.name}`);
      await role.selectOption('admin');
      await page.getByText(`${memberAccount.name} is now an admin.`).waitFor();
      await page.reload();
      await expect.poll(() => page.getByLabel(`Role of ${memberAccount.name}`).inputValue()).toBe('admin');
      await assertAccessible(page, 'the members page');
      await shot(page, 'members');

      await page.getByRole('button', { name: `Remove ${memberAccount.name}` }).click();
      const dialog = openDialog(page);
      const summary = dialog.locator('.removal-summary');
      await summary.waitFor();
      expect(await summary.textContent()).toBe(
        `1 secret created by ${memberAccount.name} will be deleted; 1 node in 1 workflow will need a new credential.`,
      );
      expect(await dialog.textContent()).toContain(`${memberWorkflowName}: ${memberNodeName}`);
      await assertAccessible(page, 'the remove-member dialog');
      await shot(page, 'remove-member-dialog');
      await dialog.getByRole('button', { name: `Remove ${memberAccount.name}` }).click();
      await expect.poll(() => row.count()).toBe(0);

      await page.getByRole('link', { name: 'Secrets & API Keys' }).click();
      await page.locator('tr[data-secret-id]').first().waitFor();
      expect(await page.locator('tr[data-secret-id]', { hasText: memberSecret.name }).count()).toBe(0);
      expect(await page.locator('tr[data-secret-id]').count()).toBe(created.length);

      await page.getByRole('link', { name: 'Workflows' }).click();
      await page
        .locator(`tr[data-workflow-name="${memberWorkflowName}"]`, { hasText: 'Needs attention' })
        .waitFor();
      await assertAccessible(page, 'the workflow list');
      await shot(page, 'workflows');
      expect(await page.locator(`tr[data-workflow-name="${workflowName}"]`).textContent()).toContain('Ready');
      await page.getByRole('link', { name: memberWorkflowName }).click();
      const card = page.locator(`li[data-node-name="${memberNodeName}"]`);
      await card.locator('[data-testid="needs-credential"]').waitFor();
      expect(await card.textContent()).toContain(memberSecret.name);
      await assertAccessible(page, 'a workflow with a node that needs a credential');
      await shot(page, 'workflow-needs-credential');

      // The removed member has no access any more.
      await member.page.reload();
      await member.page.getByRole('heading', { name: 'This workspace does not exist' }).waitFor();
    });

    it('shows owners the audit log of what happened', async () => {
      const { page } = owner;
      await page.getByRole('link', { name: 'Audit log' }).click();
      await page.getByRole('heading', { name: 'Audit log', level: 1 }).waitFor();
      const rows = page.locator('tbody tr');
      await rows.first().waitFor();
      const text = await page.locator('table').textContent();
      expect(text).toContain((created[0] as CreatedSecret).name);
      expect(text).toContain(memberAccount.name);
      await assertAccessible(page, 'the audit log');
      await shot(page, 'audit-log');
    });

    it('tests a SendGrid key before saving it, and the saved secret from the list', async () => {
      const { page, network } = owner;
      const { integration: sendgrid, credentialType } = sendgridType();
      expect(credentialType.testable).toBe(true);
      const keyField = credentialType.secretFields[0] as string;
      const fakeCalls = () =>
        fakeSendGrid.requests.map(
          (request) => `${request.method} ${request.path} ${request.headers.authorization}`,
        );
      const callsBefore = fakeCalls().length;

      // A workspace of its own, so the pictures show this flow only.
      await page.getByRole('button', { name: '+ New workspace' }).click();
      let dialog = openDialog(page);
      await dialog.getByLabel('Workspace name').fill(`Email ${run}`);
      await dialog.getByRole('button', { name: 'Create workspace' }).click();
      await page.waitForURL(
        (url) =>
          /\/w\/[^/]+\/secrets$/.test(url.pathname) &&
          ![teamWorkspaceId, personalWorkspaceId].some((id) => url.pathname.includes(id)),
      );
      await page.getByRole('heading', { name: 'No secrets yet' }).waitFor();

      await page.getByRole('button', { name: 'New secret' }).first().click();
      dialog = openDialog(page);
      const testButton = dialog.getByRole('button', { name: 'Test', exact: true });
      // A credential type without a test request offers no Test button.
      const untestable = credentialTypes().find(({ credentialType }) => !credentialType.testable);
      if (untestable) {
        await selectCredentialType(dialog, untestable.integration, untestable.credentialType);
        expect(await testButton.count()).toBe(0);
      }
      await selectCredentialType(dialog, sendgrid, credentialType);
      await testButton.waitFor();
      const nameInput = dialog.getByRole('textbox', { name: 'Name', exact: true });
      await nameInput.fill(emailSecretName);
      const keyInput = fieldControl(dialog, keyField);

      // The form's own checks come first: a malformed key is not sent anywhere.
      await keyInput.fill('not a key');
      await testButton.click();
      await expect.poll(() => keyInput.getAttribute('aria-invalid')).toBe('true');
      expect(network.procedureCalls('secrets.test')).toBe(0);

      // A key the service refuses: the answer appears in the live region and the form keeps its values.
      const region = dialog.locator('.test-result-region');
      expect(await region.getAttribute('role')).toBe('status');
      await keyInput.fill(sendgridKeys.rejected);
      await testButton.click();
      await region.locator('[data-test-result="failed"]').waitFor();
      expect(await region.textContent()).toContain('rejected by SendGrid');
      expect(await keyInput.inputValue()).toBe(sendgridKeys.rejected);
      expect(await nameInput.inputValue()).toBe(emailSecretName);
      await assertAccessible(page, 'the create-secret dialog after a failed test');
      await shot(page, 'create-secret-test-failed');

      // Editing the value retires the old answer; the accepted key passes.
      await keyInput.fill(sendgridKeys.accepted);
      await expect.poll(() => region.textContent()).toBe('');
      await testButton.click();
      await region.locator('[data-test-result="ok"]').waitFor();
      expect(await region.textContent()).toContain('SendGrid accepted the API key');
      expect(await keyInput.inputValue()).toBe(sendgridKeys.accepted);
      await assertAccessible(page, 'the create-secret dialog after a passed test');
      await shot(page, 'create-secret-test-ok');

      // SendGrid saw each key once, as typed; the browser got back only {ok, message}.
      expect(fakeCalls().slice(callsBefore)).toEqual([
        `GET /v3/scopes Bearer ${sendgridKeys.rejected}`,
        `GET /v3/scopes Bearer ${sendgridKeys.accepted}`,
      ]);
      const testResponses = (await network.responses()).filter((response) =>
        response.url.includes('secrets.test'),
      );
      expect(testResponses).toHaveLength(2);
      for (const response of testResponses) {
        expect(response.status).toBe(200);
        expect(response.body).not.toContain('fake-test-secret');
      }

      await dialog.getByRole('button', { name: 'Save secret' }).click();
      await expect.poll(() => page.locator('dialog[open]').count()).toBe(0);
      const row = page.locator('tr[data-secret-id]', { hasText: emailSecretName });
      await row.waitFor();
      // Testing unsaved values is not a use of the saved secret.
      expect(await row.textContent()).toContain('Never');
      expect(await row.textContent()).toContain('Not tested');

      // Neither key stays in the page's memory (form state, the mutation cache) once the dialog is closed.
      await page.waitForTimeout(300);
      const heap = await heapStrings(page);
      expect([sendgridKeys.rejected, sendgridKeys.accepted].filter((key) => heap.includes(key))).toEqual([]);

      // Testing the saved secret: the list shows the result (not as a use: "Last used" counts runs).
      await row.getByRole('button', { name: `Test ${emailSecretName}` }).click();
      await row.locator('[data-last-test="ok"]').waitFor();
      const rowText = (await row.textContent()) ?? '';
      expect(rowText).toContain('Test passed');
      expect(rowText).toContain('SendGrid accepted the API key');
      // "Last used" counts workflow runs only: the test shows under "Last test".
      expect(await row.locator('.cell-last-used').textContent()).toBe('Never');
      await page
        .getByRole('status')
        .filter({ hasText: `Test of “${emailSecretName}” passed` })
        .waitFor();
      expect(fakeCalls().at(-1)).toBe(`GET /v3/scopes Bearer ${sendgridKeys.accepted}`);
      await assertAccessible(page, 'the secrets list with a tested secret');
      await shot(page, 'secrets-list-tested');

      // Rotation can try a new value first; that does not change the saved secret's recorded result.
      await page.getByRole('button', { name: `Rotate ${emailSecretName}` }).click();
      const rotate = openDialog(page);
      await fieldControl(rotate, keyField).fill(sendgridKeys.rejected);
      await rotate.getByRole('button', { name: 'Test', exact: true }).click();
      await rotate.locator('[data-test-result="failed"]').waitFor();
      expect(await rotate.locator('.test-result-region').textContent()).toContain('rejected by SendGrid');
      await assertAccessible(page, 'the rotate dialog after a failed test');
      await discardDialog(page);
      await page.reload();
      await row.locator('[data-last-test="ok"]').waitFor();
    });

    it('runs a workflow against the configured SendGrid, then fails naming the node once its secret is deleted', async () => {
      const { page } = owner;
      const { integration: sendgrid, credentialType } = sendgridType();
      const sends = () =>
        fakeSendGrid.requests.filter(
          (request) => request.method === 'POST' && request.path === '/v3/mail/send',
        );
      expect(sends()).toHaveLength(0);

      await page.getByRole('link', { name: 'Workflows' }).click();
      await page.getByRole('heading', { name: 'No workflows yet' }).waitFor();
      await page.getByRole('textbox', { name: 'New workflow' }).fill(emailWorkflowName);
      await page.getByRole('button', { name: 'Create workflow' }).click();
      await page.getByRole('heading', { name: emailWorkflowName, level: 1 }).waitFor();
      const runButton = page.getByRole('button', { name: 'Run workflow' });
      expect(await runButton.isDisabled()).toBe(true);

      await page
        .getByRole('button', { name: /^Add (the first )?node$/ })
        .first()
        .click();
      const dialog = openDialog(page);
      await dialog.getByLabel('Node type').selectOption({ label: sendgrid.displayName });
      await dialog.getByRole('textbox', { name: 'Node name', exact: true }).fill(emailNodeName);
      await fillField(dialog, 'from', 'team@example.com');
      await fillField(dialog, 'to', 'new.customer@example.com');
      await fillField(dialog, 'subject', 'Welcome!');
      await fillField(dialog, 'text', 'Thanks for signing up.');
      const picker = dialog.getByLabel('Credential', { exact: true });
      await expect.poll(() => picker.isEnabled()).toBe(true);
      await picker.selectOption({ label: `${emailSecretName} — ${credentialType.displayName}` });
      await dialog.getByRole('button', { name: 'Add node' }).click();
      await expect.poll(() => page.locator('dialog[open]').count()).toBe(0);
      const card = page.locator(`li[data-node-name="${emailNodeName}"]`);
      await card.waitFor();

      const runStatus = page.locator('[data-testid="run-status"]');
      expect(await runStatus.getAttribute('role')).toBe('status');
      const result = card.locator('[data-testid="node-result"]');
      await runButton.click();
      await result.waitFor();
      expect(await result.getAttribute('data-result')).toBe('ok');
      expect(await result.textContent()).toContain('accepted by SendGrid');
      expect(await runStatus.textContent()).toContain(`${emailNodeName} succeeded`);
      expect(sends()).toHaveLength(1);
      const [sent] = sends();
      expect(sent?.headers.authorization).toBe(`Bearer ${sendgridKeys.accepted}`);
      expect(JSON.parse(sent?.body ?? '{}')).toMatchObject({
        personalizations: [{ to: [{ email: 'new.customer@example.com' }] }],
        from: { email: 'team@example.com' },
        subject: 'Welcome!',
      });
      await assertAccessible(page, 'a workflow after a successful run');
      await shot(page, 'workflow-run-ok');

      // Deleting the secret names the node that uses it.
      await page.getByRole('link', { name: 'Secrets & API Keys' }).click();
      await page.getByRole('button', { name: `Delete ${emailSecretName}` }).click();
      const confirm = openDialog(page);
      await confirm.getByText('1 node in 1 workflow will need a new credential').waitFor();
      expect(await confirm.textContent()).toContain(`${emailWorkflowName}: ${emailNodeName}`);
      await confirm.getByRole('button', { name: 'Delete secret' }).click();
      await expect
        .poll(() => page.locator('tr[data-secret-id]', { hasText: emailSecretName }).count())
        .toBe(0);

      // The next run fails for that node, saying which node and what happened, and sends nothing.
      await page.getByRole('link', { name: 'Workflows' }).click();
      await page
        .locator(`tr[data-workflow-name="${emailWorkflowName}"]`, { hasText: 'Needs attention' })
        .waitFor();
      await page.getByRole('link', { name: emailWorkflowName }).click();
      await card.locator('[data-testid="needs-credential"]').waitFor();
      await runButton.click();
      await result.waitFor();
      expect(await result.getAttribute('data-result')).toBe('failed');
      const failure = (await result.textContent()) ?? '';
      // The card shows the node's name already: its result says what happened without repeating it.
      expect(failure).not.toContain(`Node '`);
      expect(failure).toContain('Needs a SendGrid credential');
      expect(failure).toMatch(/was deleted/);
      expect(await runStatus.textContent()).toContain(`Node '${emailNodeName}'`);
      expect(await runStatus.textContent()).toContain('The workflow ran: its node failed.');
      expect(sends()).toHaveLength(1);
      await assertAccessible(page, 'a workflow after a failed run');
      await shot(page, 'workflow-run-failed');
      await assertNoSecretValues(owner, canaries);
    });

    it('kept every secret value out of both people’s pages, responses and storage, then signs out', async () => {
      await assertNoSecretValues(owner, canaries);
      await assertNoSecretValues(member, canaries);
      // No script error, Content-Security-Policy violation or React warning along the way.
      expect([...owner.errors, ...member.errors]).toEqual([]);
      const { page } = owner;
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.waitForURL(/\/signin/);
      await page.goto(`/w/${teamWorkspaceId}/secrets`);
      await page.waitForURL(/\/signin\?next=/);
      expect(await callProcedure(page, 'auth.me', null, 'query')).toBeNull();

      // Signing in again: a wrong password is refused with an announced error, the right one returns to the page asked for.
      await page.getByLabel('Email').fill(ownerAccount.email);
      await page.getByLabel('Password').fill('not the password at all');
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('alert').filter({ hasText: 'do not match' }).waitFor();
      await page.getByLabel('Password').fill(ownerAccount.password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForURL(new RegExp(`/w/${teamWorkspaceId}/secrets$`));
      await page.locator('tr[data-secret-id]').first().waitFor();
      expect(await page.locator('tr[data-secret-id]').count()).toBe(created.length);

      publishScreenshots(backend.name, [
        'secrets-list',
        'create-secret-dialog',
        'workflow-needs-credential',
        'remove-member-dialog',
        'create-secret-test-failed',
        'workflow-run-failed',
      ]);
    });
  });
}

/** The JavaScript heap of the page as one string (a V8 heap snapshot through the DevTools protocol). */
async function heapStrings(page: Page): Promise<string> {
  const session = await page.context().newCDPSession(page);
  const chunks: string[] = [];
  session.on('HeapProfiler.addHeapSnapshotChunk', (event) => {
    chunks.push(event.chunk);
  });
  await session.send('HeapProfiler.enable');
  await session.send('HeapProfiler.collectGarbage');
  await session.send('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
  await session.detach();
  return chunks.join('');
}

/** The form control of a schema field, found by the field's property name. */
function fieldControl(scope: Locator, field: string): Locator {
  return scope.locator(`[data-field="${field}"]`).locator('input, select, textarea').first();
}

async function fillField(scope: Locator, field: string, value: string): Promise<void> {
  const control = fieldControl(scope, field);
  if ((await control.evaluate((element) => element.tagName)) === 'SELECT') await control.selectOption(value);
  else await control.fill(value);
}

/** Node parameters: the required ones, with schema-derived fake values (optional ones stay empty). */
async function fillRequiredParams(dialog: Locator, schema: ObjectSchema): Promise<void> {
  for (const [field, property] of Object.entries(schema.properties))
    if (schema.required?.includes(field)) await fillField(dialog, field, fakeValue(property, 'param'));
}

async function selectCredentialType(
  dialog: Locator,
  integration: IntegrationInfo,
  credentialType: CredentialTypeInfo,
) {
  await dialog.getByLabel('Integration').selectOption({ label: integration.displayName });
  if (integration.credentialTypes.length > 1)
    await dialog
      .getByRole('radio', { name: new RegExp(`^${escapeRegExp(credentialType.displayName)}`) })
      .check();
  await dialog.getByRole('group', { name: credentialType.displayName, exact: true }).waitFor();
}

/** Every property of the schema is rendered as the schema says: label, help, placeholder, required, secret, enum, multiline. */
async function assertSchemaForm(dialog: Locator, schema: ObjectSchema, what: string): Promise<void> {
  const rendered = await dialog
    .locator('fieldset [data-field]')
    .evaluateAll((elements) => elements.map((element) => element.getAttribute('data-field')));
  expect(rendered, what).toEqual(Object.keys(schema.properties));
  for (const [name, property] of Object.entries(schema.properties)) {
    const field = dialog.locator(`[data-field="${name}"]`);
    const control = fieldControl(dialog, name);
    const label = await field.locator('label').textContent();
    expect(label, `${what}: label of ${name}`).toContain(property.label ?? name);
    const required = schema.required?.includes(name) ?? false;
    expect(await field.locator('.required-mark').count(), `${what}: required mark of ${name}`).toBe(
      required ? 1 : 0,
    );
    expect(await control.getAttribute('aria-required'), `${what}: aria-required of ${name}`).toBe(
      required ? 'true' : null,
    );
    if (property.help) expect(await field.locator('.field-help').textContent()).toContain(property.help);
    if (property.placeholder) expect(await control.getAttribute('placeholder')).toBe(property.placeholder);
    const tag = await control.evaluate((element) => element.tagName);
    if (property.enum) {
      expect(tag, `${what}: ${name} is a select`).toBe('SELECT');
      const options = await control
        .locator('option')
        .evaluateAll((nodes) => nodes.map((node) => (node as HTMLOptionElement).value));
      expect(options.filter(Boolean)).toEqual(property.enum);
    } else if (property.secret && !property.multiline) {
      expect(await control.getAttribute('type'), `${what}: ${name} is masked`).toBe('password');
      expect(await field.locator('.secret-toggle').count()).toBe(1);
    } else if (property.multiline) {
      expect(tag, `${what}: ${name} is multi-line`).toBe('TEXTAREA');
    } else {
      expect(await control.getAttribute('type'), `${what}: ${name} is a text input`).toBe('text');
    }
  }
}

async function assertNoSecretValues(visitor: Visitor, canaries: string[]): Promise<void> {
  expect(canaries.length).toBeGreaterThan(0);
  const html = await visitor.page.content();
  expect(canaries.filter((canary) => html.includes(canary))).toEqual([]);
  // Live form values are not in page.content() (they are properties, not attributes): check them too.
  const typed = await visitor.page.evaluate(() =>
    [...document.querySelectorAll('input, textarea')]
      .map((element) => (element as HTMLInputElement).value)
      .join('\n'),
  );
  expect(canaries.filter((canary) => typed.includes(canary))).toEqual([]);
  const storage = await storageDump(visitor.page);
  expect(canaries.filter((canary) => storage.includes(canary))).toEqual([]);
  const responses = await visitor.network.responses();
  expect(responses.length).toBeGreaterThan(0);
  const leaks = responses.filter((response) => canaries.some((canary) => response.body.includes(canary)));
  expect(leaks.map((response) => response.url)).toEqual([]);
}
