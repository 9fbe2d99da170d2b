// Imported first by main.ts: on the embedded default (no DATABASE_URL, as config.ts reads it), PGlite's
// WebAssembly compiles on V8's background threads while the rest of the server loads, and connect.ts awaits
// that same compile. A failed compile fails there, with the start-up's error.
import { pgliteWasmModule } from './db/pglite-wasm.js';

if (!process.env.DATABASE_URL) pgliteWasmModule().catch(() => {});
