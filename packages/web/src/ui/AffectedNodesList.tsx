import { type AffectedNode, groupByWorkflow } from '../api/hooks';

/** The workflow nodes a deletion leaves without a credential, by workflow (delete and removal previews). */
export function AffectedNodesList({ nodes }: { nodes: AffectedNode[] }) {
  return (
    <ul className="affected-list">
      {groupByWorkflow(nodes).map((group) => (
        <li key={group.workflowId}>
          <strong>{group.workflowName}</strong>: {group.nodes.map((node) => node.nodeName).join(', ')}
        </li>
      ))}
    </ul>
  );
}
