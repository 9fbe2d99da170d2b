// `node dist/main.js` (`pnpm start`): the server as one file when `pnpm build` made it (dist/start.bundle.js,
// rolldown.config.mjs: no resolving and compiling of hundreds of modules at start-up), else its modules.
import { existsSync } from 'node:fs';

const bundle = new URL('./start.bundle.js', import.meta.url);
if (existsSync(bundle)) await import(bundle.href);
else await import('./start.js');
