import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestApp, signedInUser, type TestApp } from '../testing/harness.js';
import { WorkspaceKeys } from './workspace-keys.js';

// Issue 13: the in-memory caches of unwrapped data keys are bounded in size and age, so a long-running
// instance does not keep every workspace's key it ever touched.

let app: TestApp;
/** Three workspaces, each with its first data key (version 1). */
let workspaceIds: string[];

beforeAll(async () => {
  app = await createTestApp();
  workspaceIds = [];
  for (const name of ['First', 'Second', 'Third']) {
    const { caller } = await signedInUser(app.svc, name);
    workspaceIds.push((await caller.auth.me())?.workspaces[0]?.id as string);
  }
});

afterAll(async () => {
  await app.close();
});

/** Key stores over the app's real master-key provider, counting its unwraps (one per KMS round trip). */
function keyStore(limits: ConstructorParameters<typeof WorkspaceKeys>[1]) {
  const provider = app.svc.keys.provider;
  const unwraps = vi.spyOn(provider, 'unwrapDataKey');
  unwraps.mockClear();
  return { keys: new WorkspaceKeys(provider, limits), unwraps };
}

describe('the data-key cache', () => {
  it('keeps at most `max` keys and drops the least recently used one', async () => {
    const { keys, unwraps } = keyStore({ max: 2, ttlMs: 60_000 });
    const [first, second, third] = workspaceIds as [string, string, string];
    const first1 = await keys.forVersion(app.owner, first, 1);
    await keys.forVersion(app.owner, second, 1);
    expect(await keys.forVersion(app.owner, first, 1)).toBe(first1); // from memory: `first` is now the newest use
    expect(unwraps).toHaveBeenCalledTimes(2);

    await keys.forVersion(app.owner, third, 1); // a third key evicts `second`, the least recently used
    expect(unwraps).toHaveBeenCalledTimes(3);
    await keys.forVersion(app.owner, first, 1);
    expect(unwraps).toHaveBeenCalledTimes(3);
    await keys.forVersion(app.owner, second, 1); // read and unwrapped again
    expect(unwraps).toHaveBeenCalledTimes(4);
    expect(unwraps.mock.calls.at(-1)?.[2]).toBe(second);
  });

  it('unwraps a key again once it is older than the TTL, however often it was used', async () => {
    let now = 1_000;
    const { keys, unwraps } = keyStore({ max: 10, ttlMs: 60_000, clock: { now: () => now } });
    const [first] = workspaceIds as [string];
    await keys.active(app.owner, first);
    now += 59_000;
    await keys.forVersion(app.owner, first, 1);
    expect(keys.lastActive(first)?.version).toBe(1);
    expect(unwraps).toHaveBeenCalledTimes(1);

    now += 2_000; // 61 seconds after the unwrap
    expect(keys.lastActive(first)).toBeUndefined();
    await keys.forVersion(app.owner, first, 1);
    expect(unwraps).toHaveBeenCalledTimes(2);
  });
});
