/**
 * Every audit event type, with the words the audit log shows for it. The server's `AuditAction` is the keys
 * of this table, so a new event type cannot be recorded without a label (and appears in the log's filter).
 */
export const AUDIT_EVENT_LABELS = {
  'secret.created': 'Secret created',
  'secret.imported': 'Secret imported',
  'secret.replaced': 'Secret rotated',
  'secret.renamed': 'Secret renamed',
  'secret.deleted': 'Secret deleted',
  'secret.used': 'Secret used',
  'secret.refused_destination': 'Secret kept from a destination',
  'secret.tested': 'Secret tested',
  'secret.connected': 'Connection connected',
  'secret.reconnected': 'Connection reconnected',
  'secret.refreshed': 'Connection token refreshed',
  'secret.refresh_failed': 'Connection token refresh failed',
  'secret.connect_failed': 'Connection failed',
  'secret.needs_allowed_domains': 'Secret needs allowed domains',
  'member.invited': 'Member invited',
  'member.invite_revoked': 'Invite revoked',
  'member.joined': 'Member joined',
  'member.removed': 'Member removed',
  'member.left': 'Member left',
  'member.role_changed': 'Role changed',
  'workflow.created': 'Workflow created',
  'workflow.renamed': 'Workflow renamed',
  'workflow.deleted': 'Workflow deleted',
  'workflow.node_added': 'Node added',
  'workflow.node_changed': 'Node changed',
  'workflow.node_removed': 'Node removed',
  'workflow.run': 'Workflow run',
  'workspace.created': 'Workspace created',
  'workspace.data_key_rotated': 'Data key rotated',
  'audit.exported': 'Audit log exported',
} as const;

export type AuditAction = keyof typeof AUDIT_EVENT_LABELS;

/** The words for an event type; an unknown one (from a newer server) as it is. */
export function auditEventLabel(action: string): string {
  return (AUDIT_EVENT_LABELS as Record<string, string>)[action] ?? action;
}
