import { readConfig } from './config.js';
import { databaseTarget, openDatabase } from './db/connect.js';
import { migrateToLatest } from './db/migrations.js';

// Applies pending migrations and exits (the server also migrates on start).
const config = readConfig();
// Migrations run as the tables' owner.
const database = await openDatabase(databaseTarget(config, 'owner'));
try {
  const applied = await migrateToLatest(database.owner ?? database.db, database.schema);
  console.log(applied.length ? `Applied: ${applied.join(', ')}` : 'The database is up to date.');
} finally {
  await database.close();
}
