import { readConfig } from './config.js';
import { openDatabase } from './db/connect.js';
import { migrateToLatest } from './db/migrations.js';

// Applies pending migrations and exits (the server also migrates on start).
const config = readConfig();
const database = await openDatabase(
  config.databaseUrl
    ? {
        // Migrations run as the tables' owner: LATCHKEY_OWNER_DATABASE_URL, or DATABASE_URL when that is it.
        kind: 'postgres',
        url: config.ownerDatabaseUrl ?? config.databaseUrl,
        ownerUrl: config.ownerDatabaseUrl ?? config.databaseUrl,
        schema: config.databaseSchema,
      }
    : { kind: 'pglite', dataDir: config.dataDir },
);
try {
  const applied = await migrateToLatest(database.owner ?? database.db, database.schema);
  console.log(applied.length ? `Applied: ${applied.join(', ')}` : 'The database is up to date.');
} finally {
  await database.close();
}
