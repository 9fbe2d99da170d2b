#!/usr/bin/env node
// `pnpm latchkey …` / `node packages/server/dist/cli.js …`: operator commands (see cli/index.ts, docs/operations.md).
import { runCli } from './cli/index.js';

const code = await runCli(process.argv.slice(2), {
  env: process.env,
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
});
process.exitCode = code;
// Everything is closed by now; should a driver keep a handle open, still exit soon.
setTimeout(() => process.exit(code), 2000).unref();
