/**
 * An external node editor (another front end, a CLI, a script) using Latchkey's API with the typed tRPC
 * client: it signs in, lists the secrets a node may use, and attaches one to the node. Every input and
 * output below is inferred from the server's `AppRouter` type: no hand-written API types, and a renamed
 * field or procedure on the server breaks this file at compile time. `pnpm test` type-checks it.
 *
 * Run it against a server (`pnpm start`) with Node ≥ 22.6, from the repository root:
 *
 *   LATCHKEY_URL=http://127.0.0.1:3000 LATCHKEY_EMAIL=you@example.com LATCHKEY_PASSWORD=… \
 *   LATCHKEY_WORKFLOW_ID=<a workflow id> node --experimental-strip-types examples/node-editor-client.ts
 *
 * What the API promises, and this client relies on: `secrets.selectable` lists only secrets of the node's
 * own credential types in the workflow's workspace, with names and types, never values; and
 * `workflows.updateNode` refuses any other secret (BAD_REQUEST "… cannot use …"), so a client cannot attach a
 * Slack token to a SendGrid node even if it tries.
 */
import type { AppRouter } from '@latchkey/server';
import { createTRPCClient, httpBatchLink, TRPCClientError } from '@trpc/client';
import type { inferRouterInputs, inferRouterOutputs } from '@trpc/server';

type Inputs = inferRouterInputs<AppRouter>;
type Outputs = inferRouterOutputs<AppRouter>;

/** A node as `workflows.get` returns it: `{ id, name, nodeType, params, secretId, status, … }`. */
export type WorkflowNode = Outputs['workflows']['get']['nodes'][number];
/** A secret a node may use: `{ id, name, credentialType }` (the value never leaves the server). */
export type SelectableSecret = Outputs['secrets']['selectable'][number];
export type SignInInput = Inputs['auth']['signIn'];

const SESSION_COOKIE = 'latchkey_session';

/**
 * A client for a Latchkey server. The session is an HttpOnly cookie set by `auth.signIn`; a browser keeps it
 * by itself, so outside a browser this client keeps it (and only it) and sends it back.
 */
export function createLatchkeyClient(serverUrl: string) {
  let session = '';
  return createTRPCClient<AppRouter>({
    links: [
      httpBatchLink({
        url: new URL('/trpc', serverUrl).toString(),
        headers: () => (session ? { cookie: session } : {}),
        fetch: async (input, init) => {
          const response = await fetch(input, init as RequestInit);
          for (const cookie of response.headers.getSetCookie()) {
            const [pair = ''] = cookie.split(';');
            if (pair.startsWith(`${SESSION_COOKIE}=`))
              session = pair.slice(SESSION_COOKIE.length + 1) ? pair : '';
          }
          return response;
        },
      }),
    ],
  });
}

export type LatchkeyClient = ReturnType<typeof createLatchkeyClient>;

/** The secrets a node may use: those of its node type, in the node's workflow's workspace. */
export async function selectableSecretsFor(
  client: LatchkeyClient,
  workflowId: string,
  nodeId: string,
): Promise<{ node: WorkflowNode; secrets: SelectableSecret[] }> {
  const workflow = await client.workflows.get.query({ workflowId });
  const node = workflow.nodes.find((candidate) => candidate.id === nodeId);
  if (!node) throw new Error(`Workflow '${workflow.name}' has no node ${nodeId}`);
  const secrets = await client.secrets.selectable.query({
    workspaceId: workflow.workspaceId,
    nodeType: node.nodeType,
  });
  return { node, secrets };
}

/** Attaches a secret to a node; the server checks that the secret fits the node's type. */
export async function attachSecret(
  client: LatchkeyClient,
  workflowId: string,
  nodeId: string,
  secretId: SelectableSecret['id'],
): Promise<WorkflowNode> {
  return client.workflows.updateNode.mutate({ workflowId, nodeId, secretId });
}

/** Signs in, then gives every node of the workflow that has no credential the first secret it may use. */
async function main(): Promise<void> {
  const env = (name: string) => {
    const value = process.env[name];
    if (!value) throw new Error(`Set ${name} (see the comment at the top of this file)`);
    return value;
  };
  const client = createLatchkeyClient(env('LATCHKEY_URL'));
  const credentials: SignInInput = { email: env('LATCHKEY_EMAIL'), password: env('LATCHKEY_PASSWORD') };
  const { user } = await client.auth.signIn.mutate(credentials);
  console.log(`Signed in as ${user.name}`);

  const workflowId = env('LATCHKEY_WORKFLOW_ID');
  const workflow = await client.workflows.get.query({ workflowId });
  for (const waiting of workflow.nodes.filter((node) => node.status === 'needs-credential')) {
    const { secrets } = await selectableSecretsFor(client, workflowId, waiting.id);
    const [first] = secrets;
    if (!first) {
      console.log(
        `Node '${waiting.name}' (${waiting.nodeType}): no secret of its type yet; create one first`,
      );
      continue;
    }
    const updated = await attachSecret(client, workflowId, waiting.id, first.id);
    console.log(
      `Node '${updated.name}' now uses '${first.name}' (${first.credentialType}): ${updated.status}`,
    );
  }
  await client.auth.signOut.mutate();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((error: unknown) => {
    // A tRPC error carries the server's code and a message meant for people (never a secret value).
    if (error instanceof TRPCClientError) console.error(`${error.data?.code ?? 'ERROR'}: ${error.message}`);
    else console.error(error);
    process.exitCode = 1;
  });
}
