import { auditRouter } from './routers/audit.js';
import { authRouter } from './routers/auth.js';
import { integrationsRouter } from './routers/integrations.js';
import { secretsRouter } from './routers/secrets.js';
import { workflowsRouter } from './routers/workflows.js';
import { workspacesRouter } from './routers/workspaces.js';
import { createCallerFactory, router } from './trpc.js';

export const appRouter = router({
  auth: authRouter,
  workspaces: workspacesRouter,
  integrations: integrationsRouter,
  secrets: secretsRouter,
  workflows: workflowsRouter,
  audit: auditRouter,
});

export type AppRouter = typeof appRouter;
export const createCaller = createCallerFactory(appRouter);
