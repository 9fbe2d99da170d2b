export type { AppRouter } from './trpc/router.js';
export { appRouter, createCaller } from './trpc/router.js';
export { startLatchkey, createServices, StartupError } from './app.js';
export { readConfig, type Config } from './config.js';
export type { SecretMeta, AffectedNode } from './secrets/secrets.js';
