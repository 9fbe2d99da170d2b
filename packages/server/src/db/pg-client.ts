import type pg from 'pg';

let pgModule: Promise<typeof pg> | undefined;

/**
 * The PostgreSQL client, loaded on first use: the embedded default never loads pg's modules (start-up,
 * docs/performance.md).
 */
export function loadPg(): Promise<typeof pg> {
  pgModule ??= import('pg').then(({ default: client }) => {
    // int8 (bigserial, count(*)) as string, never a lossy number; timestamps as Date (pg default).
    client.types.setTypeParser(20, (value) => value);
    return client;
  });
  return pgModule;
}
