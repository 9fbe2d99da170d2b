import { useQuery } from '@tanstack/react-query';
import { type RouterOutputs, trpc } from './trpc';

export type Me = NonNullable<RouterOutputs['auth']['me']>;
export type WorkspaceSummary = Me['workspaces'][number];
export type Integration = RouterOutputs['integrations']['list'][number];
export type CredentialType = Integration['credentialTypes'][number];
export type SecretMeta = RouterOutputs['secrets']['list']['items'][number];
export type Member = RouterOutputs['workspaces']['members'][number];
export type PendingInvite = RouterOutputs['workspaces']['invites'][number];
export type AffectedNode = RouterOutputs['secrets']['usage'][number];
export type Workflow = RouterOutputs['workflows']['get'];
export type WorkflowNode = Workflow['nodes'][number];
export type AuditEvent = RouterOutputs['audit']['list']['items'][number];

export function useMe() {
  return useQuery({ ...trpc.auth.me.queryOptions(), staleTime: 30_000 });
}

/** The registered integrations with their credential types and JSON Schemas. They change only on a deploy. */
export function useIntegrations() {
  return useQuery({ ...trpc.integrations.list.queryOptions(), staleTime: Number.POSITIVE_INFINITY });
}

/** Looks a credential type up across integrations: the list and the pickers show display names. */
export function findCredentialType(
  integrations: Integration[] | undefined,
  type: string,
): { integration: Integration; credentialType: CredentialType } | null {
  for (const integration of integrations ?? []) {
    const credentialType = integration.credentialTypes.find((candidate) => candidate.type === type);
    if (credentialType) return { integration, credentialType };
  }
  return null;
}

export function findIntegrationByNodeType(integrations: Integration[] | undefined, nodeType: string) {
  return integrations?.find((integration) => integration.nodeType === nodeType) ?? null;
}

/** Groups affected nodes by workflow, for the "these nodes will need a new credential" lists. */
export function groupByWorkflow(
  nodes: AffectedNode[],
): { workflowId: string; workflowName: string; nodes: AffectedNode[] }[] {
  const groups = new Map<string, { workflowId: string; workflowName: string; nodes: AffectedNode[] }>();
  for (const node of nodes) {
    const group = groups.get(node.workflowId) ?? {
      workflowId: node.workflowId,
      workflowName: node.workflowName,
      nodes: [],
    };
    group.nodes.push(node);
    groups.set(node.workflowId, group);
  }
  return [...groups.values()];
}
