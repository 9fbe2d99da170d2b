import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { describe, it } from 'vitest';

// What the browser suite needs from the machine, and what it does when something is missing: in CI (and
// by default) a missing browser or database fails the run with a message; LATCHKEY_TEST_ALLOW_SKIP=1
// (set by scripts/test.mjs on a developer machine that lacks them) skips loudly instead.

export const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const allowSkip = process.env.LATCHKEY_TEST_ALLOW_SKIP === '1';

export const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function chromiumProblem(): string | null {
  if (existsSync(chromiumPath)) return null;
  return `Chromium not found at ${chromiumPath}. Install Debian's package (apt-get install chromium) or set CHROMIUM_PATH; set LATCHKEY_TEST_ALLOW_SKIP=1 to skip the browser suite on a machine without it.`;
}

export interface Backend {
  name: 'PGlite' | 'PostgreSQL';
  /** Extra environment for the server process. */
  env: Record<string, string>;
  /** The start of the server's "Database mode: …" line (startServer checks it). */
  mode: string;
}

export interface PlannedBackend {
  name: Backend['name'];
  backend: Backend | null;
  /** Why it cannot run here (null when it can). */
  problem: string | null;
}

export function plannedBackends(): PlannedBackend[] {
  const pglite: PlannedBackend = {
    name: 'PGlite',
    backend: { name: 'PGlite', env: {}, mode: 'Database mode: embedded' },
    problem: null,
  };
  const url = process.env.TEST_DATABASE_URL;
  if (!url)
    return [
      pglite,
      {
        name: 'PostgreSQL',
        backend: null,
        problem:
          'TEST_DATABASE_URL is not set, so the browser flows cannot run against PostgreSQL (set it, e.g. TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test, or set LATCHKEY_TEST_ALLOW_SKIP=1 to skip them on purpose).',
      },
    ];
  const schema = `web_e2e_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  return [
    pglite,
    {
      name: 'PostgreSQL',
      backend: {
        name: 'PostgreSQL',
        // The one-URL mode, as a newcomer starts it: only DATABASE_URL, the superuser's. The server migrates
        // with it and runs every application statement as latchkey_app, so row-level security binds as in the
        // two-role mode (which the server suite on PostgreSQL runs in throughout).
        env: {
          DATABASE_URL: url,
          LATCHKEY_DATABASE_SCHEMA: schema,
          LATCHKEY_MASTER_KEY: randomBytes(32).toString('base64'),
        },
        mode: 'Database mode: one-URL',
      },
      problem: null,
    },
  ];
}

/**
 * Declares a browser suite once per planned backend: `flows(backend)` where it can run; where Chromium or a
 * database is missing, a test that fails naming what is missing — or, with LATCHKEY_TEST_ALLOW_SKIP=1 only, a
 * loud skip.
 */
export function describeOnEachBackend(suite: string, flows: (backend: Backend) => void): void {
  const missingChromium = chromiumProblem();
  if (missingChromium) {
    if (allowSkip) {
      console.warn(`\n*** SKIPPING ${suite}: ${missingChromium}\n`);
      describe.skip(`${suite} (Chromium is missing)`, () => {
        it('runs in Chromium', () => {});
      });
    } else {
      describe(suite, () => {
        it('finds Chromium', () => {
          throw new Error(missingChromium);
        });
      });
    }
    return;
  }
  for (const planned of plannedBackends()) {
    if (planned.backend) flows(planned.backend);
    else if (allowSkip) {
      console.warn(`\n*** SKIPPING ${suite} on ${planned.name}: ${planned.problem}\n`);
      describe.skip(`${suite} on ${planned.name}`, () => {
        it('runs against this database', () => {});
      });
    } else {
      describe(`${suite} on ${planned.name}`, () => {
        it('has a database to run against', () => {
          throw new Error(planned.problem ?? 'unavailable');
        });
      });
    }
  }
}
