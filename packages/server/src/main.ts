// `node dist/main.js` (`pnpm start`): the server as one file when `pnpm build` made it (dist/bundle/start.js,
// scripts/bundle.mjs: no module resolution and compilation of hundreds of files at start-up), else its modules.
import { existsSync } from 'node:fs';

const bundle = new URL('./bundle/start.js', import.meta.url);
if (existsSync(bundle)) await import(bundle.href);
else await import('./start.js');
