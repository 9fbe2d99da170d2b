import { publicProcedure, router } from '../trpc.js';

/** What the registry knows: every integration, its node type and its credential types' schemas. */
export const integrationsRouter = router({
  list: publicProcedure.query(({ ctx }) => ctx.svc.registry.describe()),
});
