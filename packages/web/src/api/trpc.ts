import type { AppRouter } from '@latchkey/server';
import { MutationCache, QueryCache, QueryClient } from '@tanstack/react-query';
import { createTRPCClient, httpBatchLink } from '@trpc/client';
import type { inferRouterOutputs } from '@trpc/server';
import { createTRPCOptionsProxy } from '@trpc/tanstack-react-query';

export type { AppRouter };
export type RouterOutputs = inferRouterOutputs<AppRouter>;

/** A call answered UNAUTHORIZED means the session ended (signed out elsewhere, expired): show sign-in. */
function onSessionEnded(error: unknown) {
  if (errorCode(error) === 'UNAUTHORIZED') queryClient.setQueryData(trpc.auth.me.queryKey(), null);
}

export const queryClient = new QueryClient({
  queryCache: new QueryCache({ onError: onSessionEnded }),
  mutationCache: new MutationCache({ onError: onSessionEnded }),
  defaultOptions: {
    queries: { staleTime: 10_000, retry: (count, error) => count < 2 && !isClientError(error) },
    // A mutation keeps its variables in the cache until it is garbage-collected. Secret values are
    // mutation variables (secrets.create / secrets.replace), so no mutation outlives its component.
    mutations: { gcTime: 0, retry: false },
  },
});

// The session is an HttpOnly cookie; the browser sends it on same-origin requests by itself.
export const trpcClient = createTRPCClient<AppRouter>({
  // The server refuses batches of more than 10 calls (MAX_BATCH_SIZE in packages/server/src/http/server.ts).
  links: [httpBatchLink({ url: '/trpc', maxItems: 10 })],
});

export const trpc = createTRPCOptionsProxy<AppRouter>({ client: trpcClient, queryClient });

function isClientError(error: unknown): boolean {
  const code = errorCode(error);
  return code !== null && code !== 'INTERNAL_SERVER_ERROR' && code !== 'TIMEOUT';
}

/** The tRPC error code (`BAD_REQUEST`, `UNAUTHORIZED`, …) of a failed call, or null for a network failure. */
export function errorCode(error: unknown): string | null {
  const data = (error as { data?: { code?: unknown } } | null)?.data;
  return typeof data?.code === 'string' ? data.code : null;
}

export interface FieldIssue {
  path: string[];
  message: string;
}

/** Field-level issues of a BAD_REQUEST, with paths relative to the procedure's input. */
export function fieldIssues(error: unknown): FieldIssue[] {
  const issues = (error as { data?: { issues?: unknown } } | null)?.data?.issues;
  if (!Array.isArray(issues)) return [];
  return issues.flatMap((issue): FieldIssue[] => {
    if (!issue || typeof issue !== 'object') return [];
    const { path, message } = issue as { path?: unknown; message?: unknown };
    if (!Array.isArray(path) || typeof message !== 'string') return [];
    return [{ path: path.map(String), message }];
  });
}

/** A sentence for an error banner. Server messages never contain secret values (DESIGN §1 rule 2). */
export function errorMessage(error: unknown): string {
  if (!error) return '';
  const code = errorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  if (code === null && /fetch|network/i.test(message))
    return 'Cannot reach the Latchkey server. Check your connection and try again.';
  if (code === 'UNAUTHORIZED') return 'Your session has ended. Sign in again.';
  if (code === 'NOT_FOUND' && !message) return 'Not found.';
  return message || 'Something went wrong.';
}
