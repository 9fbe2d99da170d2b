// Imported first by main.ts: on the embedded default (no database URL in the configuration), PGlite's
// WebAssembly compiles on V8's background threads while the rest of the server loads, and connect.ts awaits
// that same compile. A failed compile fails there, with the start-up's error.
import { readConfig } from './config.js';
import { pgliteWasmModule } from './db/pglite-wasm.js';

/** Whether the configuration names no PostgreSQL; a bad environment is main.ts's to report, not this warm-up's. */
function embedded(): boolean {
  try {
    return !readConfig().databaseUrl;
  } catch {
    return false;
  }
}

if (embedded()) pgliteWasmModule().catch(() => {});
