import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { PGliteOptions } from '@electric-sql/pglite';

type WasmModule = NonNullable<PGliteOptions['pgliteWasmModule']>;
// Node's WebAssembly global (the project's lib settings declare no WebAssembly types).
const { WebAssembly } = globalThis as unknown as {
  WebAssembly: { compile(bytes: Uint8Array): Promise<WasmModule> };
};

let compiled: Promise<WasmModule> | undefined;

/** PGlite's WebAssembly module, compiled once per process (warm-up.ts starts it early). */
export function pgliteWasmModule(): Promise<WasmModule> {
  const dist = path.dirname(createRequire(import.meta.url).resolve('@electric-sql/pglite'));
  compiled ??= readFile(path.join(dist, 'pglite.wasm')).then((bytes) => WebAssembly.compile(bytes));
  return compiled;
}
