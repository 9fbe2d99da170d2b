import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../testing/harness.js';
import { type HttpTestServer, signUpOverHttp, startHttpServer } from '../testing/http-harness.js';
import { loggerOptions } from './server.js';

// Issue 12, item 3: an invite token never reaches a log line. The server runs with the production log
// configuration (loggerOptions, at trace level so every request is logged) into a capturing stream.

let app: TestApp;
let http: HttpTestServer;
beforeAll(async () => {
  app = await createTestApp();
  http = await startHttpServer(app.svc, { logger: loggerOptions('trace') });
});
afterAll(async () => {
  await http?.close();
  await app?.close();
});

const logged = (value: string) => http.recorded.logs.filter((line) => line.includes(value));

describe('the request log', () => {
  it('never prints an invite token: not when it is accepted, nor when a client puts it in a URL', async () => {
    const owner = await signUpOverHttp(http, 'Olivia Owner');
    const guest = await signUpOverHttp(http, 'Gina Guest');
    const workspace = await owner.client.trpc.workspaces.create.mutate({ name: 'Acme', plan: 'team' });
    const accepted = await owner.client.trpc.workspaces.invite.mutate({
      workspaceId: workspace.id,
      email: guest.email,
      role: 'member',
    });
    const pending = await owner.client.trpc.workspaces.invite.mutate({
      workspaceId: workspace.id,
      email: 'someone-else@example.test',
      role: 'admin',
    });

    // The real path: the page posts the token from the link's fragment in the JSON body.
    expect(await guest.client.trpc.workspaces.acceptInvite.mutate({ token: accepted.token })).toEqual({
      workspaceId: workspace.id,
      role: 'member',
    });

    // Clients that put the token where a request log would see it: links of the old form, query strings,
    // a tRPC GET with the input in the query, percent-encoded paths, any path segment.
    const token = pending.token;
    const urls = [
      `/invite/${token}`,
      `/invite/${encodeURIComponent(token)}`,
      `//invite/${token}/`,
      `/%69nvite/${token}`,
      `/invite?token=${token}`,
      `/invite/?t=${token}`,
      `/trpc/workspaces.acceptInvite?input=${encodeURIComponent(JSON.stringify({ token }))}`,
      `/trpc/workspaces.acceptInvite/${token}`,
      `/somewhere/${token}/else`,
      `/${token
        .split('')
        .map((c) => `%${c.charCodeAt(0).toString(16)}`)
        .join('')}`,
    ];
    for (const url of urls) {
      const response = await guest.client.fetch(url);
      expect(response.status, url).toBeGreaterThanOrEqual(400);
    }
    await guest.client.fetch(`/invite?token=${token}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token }),
    });

    // No line holds either token, nor a recognisable part of it…
    for (const secret of [accepted.token, pending.token]) {
      expect(logged(secret), 'log lines with the token').toEqual([]);
      expect(logged(secret.slice(0, 24)), 'log lines with the token’s first half').toEqual([]);
      expect(logged(encodeURIComponent(secret))).toEqual([]);
    }
    // …though the log did record these requests (the check above is not vacuous).
    expect(logged('"url":"/invite/[redacted]"').length).toBeGreaterThanOrEqual(4);
    expect(logged('"url":"/trpc/workspaces.acceptInvite"').length).toBeGreaterThanOrEqual(2);
    expect(logged('"url":"/somewhere/[redacted]/else"')).toHaveLength(1);
  });

  it('keeps ids and procedure names readable', async () => {
    const before = http.recorded.logs.length;
    const id = crypto.randomUUID();
    await http.fetch(`/api/workspaces/${id}/audit.jsonl`);
    await http.fetch('/trpc/auth.me,workspaces.list?batch=1&input={}');
    const lines = http.recorded.logs.slice(before).join('\n');
    expect(lines).toContain(`"url":"/api/workspaces/${id}/audit.jsonl"`);
    expect(lines).toContain('"url":"/trpc/auth.me,workspaces.list"');
  });
});
