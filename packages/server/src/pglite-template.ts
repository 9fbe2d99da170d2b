// Run by `pnpm build` after compiling: an initialized PGlite data directory in dist/, which a fresh data
// directory is copied from (db/pglite-data-dir.ts), so that the server never runs initdb itself.
import { writeTemplate } from './db/pglite-data-dir.js';

await writeTemplate();
