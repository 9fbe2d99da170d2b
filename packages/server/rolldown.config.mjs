// `pnpm build`'s second step: the server (dist/start.js, as tsc compiled it) as one ES module,
// dist/bundle/start.js, which dist/main.js loads when it exists — a start-up then reads and compiles one file
// instead of resolving and loading hundreds (docs/performance.md "Memory and start-up of the embedded default").
// Left outside: packages that read files next to their own code — PGlite (its .wasm and .data files) — and pg,
// which only PostgreSQL loads (db/pg-client.ts).
import { defineConfig } from 'rolldown';

export default defineConfig({
  input: 'dist/start.js',
  platform: 'node',
  external: [/^@electric-sql\/pglite(\/|$)/, /^pg(\/|$)/],
  output: {
    dir: 'dist/bundle',
    format: 'esm',
    codeSplitting: false,
    sourcemap: true,
  },
});
