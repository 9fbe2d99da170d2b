import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import react from '@vitejs/plugin-react';
import { defineConfig, type Plugin } from 'vite';

// The server serves dist/ at `/` with an SPA fallback, so the app is built for base '/'.
// In development the API runs on its own port (pnpm start in another terminal) and Vite proxies to it.
const apiTarget = process.env.LATCHKEY_API_URL ?? 'http://127.0.0.1:3000';

const COMPRESSIBLE = /\.(?:js|css|html|svg|json|txt)$/;

/**
 * Writes `file.br` and `file.gz` beside every text file of the build (the server sends them with
 * `Content-Encoding` when the browser accepts it: @fastify/static's `preCompressed`), at the highest levels,
 * since this runs once per build and not per request. A variant that would not be smaller is not written.
 */
function precompress(): Plugin {
  let outDir = '';
  return {
    name: 'latchkey-precompress',
    apply: 'build',
    configResolved(config) {
      outDir = path.resolve(config.root, config.build.outDir);
    },
    writeBundle: {
      order: 'post',
      handler() {
        const files = readdirSync(outDir, { recursive: true, encoding: 'utf8' });
        for (const file of files.filter((name) => COMPRESSIBLE.test(name))) {
          const full = path.join(outDir, file);
          const original = readFileSync(full);
          const variants = {
            br: brotliCompressSync(original, {
              params: {
                [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT,
                [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
                [constants.BROTLI_PARAM_SIZE_HINT]: original.length,
              },
            }),
            gz: gzipSync(original, { level: 9 }),
          };
          for (const [extension, body] of Object.entries(variants))
            if (body.length < original.length) writeFileSync(`${full}.${extension}`, body);
        }
      },
    },
  };
}

// React and the API client libraries change only with a dependency upgrade: one chunk of their own stays
// cached across releases of the app. Libraries only some pages use (react-hook-form, downshift) stay with the
// lazily loaded chunks of those pages (src/app/App.tsx, docs/performance.md "Assets").
const VENDOR =
  /[\\/]node_modules[\\/](?:\.pnpm[\\/][^\\/]+[\\/]node_modules[\\/])?(?:react|react-dom|scheduler|@tanstack|@trpc)[\\/]/;

export default defineConfig({
  base: '/',
  plugins: [react(), precompress()],
  server: {
    proxy: {
      '/trpc': { target: apiTarget, changeOrigin: false },
      '/healthz': { target: apiTarget, changeOrigin: false },
    },
  },
  build: {
    outDir: 'dist',
    sourcemap: false,
    rolldownOptions: {
      output: { codeSplitting: { groups: [{ name: 'vendor', test: VENDOR }] } },
    },
  },
});
