export { createServices, StartupError, startLatchkey } from './app.js';
export { type Config, readConfig } from './config.js';
export { DatabaseRoleError, ensureLoginRole } from './db/roles.js';
export type { AffectedNode, SecretMeta } from './secrets/meta.js';
export type { AppRouter } from './trpc/router.js';
export { appRouter, createCaller } from './trpc/router.js';
