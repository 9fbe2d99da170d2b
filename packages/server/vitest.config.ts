import { defineConfig } from 'vitest/config';

// The server suite runs on both storage backends: PGlite always, PostgreSQL when TEST_DATABASE_URL is set.
// In CI a missing PostgreSQL is a failure, not a silent skip.
const ci = ['1', 'true'].includes(String(process.env.CI ?? '').toLowerCase());
const postgres = Boolean(process.env.TEST_DATABASE_URL);
if (!postgres) {
  if (ci && process.env.LATCHKEY_TEST_ALLOW_SKIP !== '1') {
    throw new Error('TEST_DATABASE_URL is required in CI: the server suite must also run on PostgreSQL');
  }
  console.warn('\n*** TEST_DATABASE_URL is not set: the server suite runs on PGlite only ***\n');
}

const backendIndependent = ['src/crypto/**', 'src/identity/passwords.test.ts', 'src/architecture.test.ts'];
// Fault tests kill and restart real processes around PostgreSQL; PGlite is one process per data directory.
const postgresOnly = ['src/faults/**'];

export default defineConfig({
  resolve: { conditions: ['development'] },
  ssr: { resolve: { conditions: ['development'] } },
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'pglite',
          include: ['src/**/*.test.ts'],
          exclude: postgresOnly,
          env: { LATCHKEY_TEST_BACKEND: 'pglite' },
        },
      },
      ...(postgres
        ? [
            {
              extends: true,
              test: {
                name: 'postgres',
                include: ['src/**/*.test.ts'],
                exclude: backendIndependent,
                env: { LATCHKEY_TEST_BACKEND: 'postgres' },
              },
            },
          ]
        : []),
    ],
  },
});
