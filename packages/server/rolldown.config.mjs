// `pnpm build`'s second step: the server (dist/start.js, as tsc compiled it) as one ES module,
// dist/start.bundle.js (next to start.js, so config.ts's path to the web app, relative to its own file, still holds),
// which dist/main.js loads when it exists — a start-up then reads and compiles one file
// instead of resolving and loading hundreds (docs/performance.md "Memory and start-up of the embedded default").
// Left outside: packages that read files next to their own code — PGlite (its .wasm and .data files) — and pg,
// which only PostgreSQL loads (db/pg-client.ts).
import { defineConfig } from 'rolldown';

export default defineConfig({
  input: 'dist/start.js',
  platform: 'node',
  external: [/^@electric-sql\/pglite(\/|$)/, /^pg(\/|$)/],
  output: {
    file: 'dist/start.bundle.js',
    format: 'esm',
    codeSplitting: false,
    sourcemap: true,
  },
});
