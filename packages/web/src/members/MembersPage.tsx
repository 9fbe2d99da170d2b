import { assignableRoles, isDemotion, type Role, rolePermissions } from '@latchkey/core/roles';
import { plural } from '@latchkey/core/words';
import { skipToken, useMutation, useQuery } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import { FormProvider, useForm } from 'react-hook-form';
import type { Me, Member, PendingInvite, WorkspaceSummary } from '../api/hooks';
import { errorMessage, fieldIssues, queryClient, trpc } from '../api/trpc';
import { navigate, paths, useDocumentTitle } from '../app/router';
import { initials, PageHeader, roleLabel } from '../app/Shell';
import { applyFieldIssues } from '../schema-form/SchemaFields';
import { AffectedNodesList } from '../ui/AffectedNodesList';
import { ConfirmDialog } from '../ui/ConfirmDialog';
import { DataTable } from '../ui/DataTable';
import { Dialog } from '../ui/Dialog';
import { EmptyState, ErrorAlert, Notice, Spinner, useToast } from '../ui/Feedback';
import { formatDateTime } from '../ui/format';
import { SubmitButton } from '../ui/SubmitButton';
import { SelectField, TextField } from '../ui/TextField';
import { Time } from '../ui/Time';

export function MembersPage({ me, workspace }: { me: Me; workspace: WorkspaceSummary }) {
  useDocumentTitle('Members');
  const members = useQuery(trpc.workspaces.members.queryOptions({ workspaceId: workspace.id }));
  const [inviting, setInviting] = useState(false);
  const [removing, setRemoving] = useState<Member | null>(null);
  const [leaving, setLeaving] = useState(false);
  const manage = rolePermissions.manageMembers(workspace.role);
  // One's own row has no controls: “Leave workspace” is the way out.
  const manageable = (member: Member) =>
    member.userId !== me.user.id && rolePermissions.manageMemberWithRole(workspace.role, member.role);

  if (workspace.plan !== 'team')
    return (
      <>
        <PageHeader title="Members" />
        <EmptyState title="Members are part of the team plan">
          <p>
            “{workspace.name}” is a personal workspace: it has one member, you. To share secrets with other
            people, create a workspace on the team plan and invite them there.
          </p>
        </EmptyState>
      </>
    );

  return (
    <>
      <PageHeader
        title="Members"
        description="Everyone here can select the workspace’s secrets in workflow nodes of the matching type. When someone leaves or is removed, the secrets they created are deleted with them."
        actions={
          <>
            <button type="button" className="button" onClick={() => setLeaving(true)}>
              Leave workspace
            </button>
            {manage && (
              <button type="button" className="button button-primary" onClick={() => setInviting(true)}>
                Invite people
              </button>
            )}
          </>
        }
      />
      <div className="stack">
        {members.isPending && <Spinner label="Loading members" />}
        {members.isError && <ErrorAlert>{errorMessage(members.error)}</ErrorAlert>}
        {members.data && (
          <DataTable caption={`Members of ${workspace.name}`} columns={['Name', 'Role', 'Joined']} actions>
            {members.data.map((member) => (
              <tr key={member.userId} data-member-email={member.email}>
                <th scope="row" className="cell-name">
                  <span className="member">
                    <span className="avatar avatar-small" aria-hidden="true">
                      {initials(member.name || member.email)}
                    </span>
                    <span>
                      <span className="cell-main">
                        {member.name}
                        {member.userId === me.user.id ? ' (you)' : ''}
                      </span>
                      <span className="cell-sub">{member.email}</span>
                    </span>
                  </span>
                </th>
                <td>
                  {manageable(member) ? (
                    <RoleSelect workspace={workspace} member={member} />
                  ) : (
                    <span className={`badge badge-role-${member.role}`}>{roleLabel(member.role)}</span>
                  )}
                </td>
                <td>
                  <Time iso={member.joinedAt} />
                </td>
                <td className="cell-actions">
                  {manageable(member) && (
                    <button
                      type="button"
                      className="button button-small button-danger-ghost"
                      onClick={() => setRemoving(member)}
                      aria-label={`Remove ${member.name}`}
                    >
                      Remove
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </DataTable>
        )}
        {manage && <PendingInvites workspace={workspace} />}
      </div>
      <InviteDialog workspace={workspace} open={inviting} onClose={() => setInviting(false)} />
      <RemoveMemberDialog workspace={workspace} member={removing} onClose={() => setRemoving(null)} />
      <LeaveDialog
        me={me}
        workspace={workspace}
        soleOwner={
          workspace.role === 'owner' &&
          (members.data?.filter((member) => member.role === 'owner').length ?? 0) <= 1
        }
        open={leaving}
        onClose={() => setLeaving(false)}
      />
    </>
  );
}

function RoleSelect({ workspace, member }: { workspace: WorkspaceSummary; member: Member }) {
  const setRole = useMutation(trpc.workspaces.setRole.mutationOptions());
  const toast = useToast();
  const roles = assignableRoles(workspace.role);
  const options = roles.includes(member.role) ? roles : [member.role, ...roles];
  async function change(role: Role) {
    try {
      await setRole.mutateAsync({ workspaceId: workspace.id, userId: member.userId, role });
      // A demotion also retires the invites they made.
      await Promise.all([
        queryClient.invalidateQueries({
          queryKey: trpc.workspaces.members.queryKey({ workspaceId: workspace.id }),
        }),
        isDemotion(member.role, role) &&
          queryClient.invalidateQueries({
            queryKey: trpc.workspaces.invites.queryKey({ workspaceId: workspace.id }),
          }),
      ]);
      toast(`${member.name} is now ${role === 'admin' ? 'an' : 'a'} ${role}.`);
    } catch {
      // Shown below.
    }
  }
  return (
    <div>
      <select
        className="input input-compact"
        aria-label={`Role of ${member.name}`}
        value={member.role}
        disabled={setRole.isPending}
        onChange={(event) => change(event.target.value as Role)}
      >
        {options.map((role) => (
          <option key={role} value={role}>
            {roleLabel(role)}
          </option>
        ))}
      </select>
      {setRole.error && (
        <p className="field-error" role="alert">
          {errorMessage(setRole.error)}
        </p>
      )}
    </div>
  );
}

/** Said wherever an invite is made: Latchkey does not verify that an account owns its email address. */
const EMAIL_NOT_VERIFIED =
  'Latchkey does not verify email addresses: whoever holds this link and signs up with this address joins. An invite is only as safe as that mailbox — send the link to the person directly.';

interface InviteValues {
  email: string;
  role: Role;
}

function InviteDialog({
  workspace,
  open,
  onClose,
}: {
  workspace: WorkspaceSummary;
  open: boolean;
  onClose: () => void;
}) {
  return (
    <Dialog open={open} onClose={onClose} title={`Invite people to ${workspace.name}`}>
      <InviteForm workspace={workspace} onClose={onClose} />
    </Dialog>
  );
}

function InviteForm({ workspace, onClose }: { workspace: WorkspaceSummary; onClose: () => void }) {
  const form = useForm<InviteValues>({ defaultValues: { email: '', role: 'member' } });
  const invite = useMutation(trpc.workspaces.invite.mutationOptions());
  const [link, setLink] = useState<{ url: string; email: string; expiresAt: string } | null>(null);
  const [copied, setCopied] = useState(false);
  const copy = useRef<HTMLButtonElement>(null);
  // The invite token is a one-time credential: it lives only in this dialog and goes with it.
  useEffect(() => () => invite.reset(), [invite.reset]);
  // The next thing to do with a new link is copy it.
  useEffect(() => {
    if (link) copy.current?.focus();
  }, [link]);

  const onSubmit = form.handleSubmit(async (values) => {
    try {
      const result = await invite.mutateAsync({
        workspaceId: workspace.id,
        email: values.email.trim(),
        role: values.role,
      });
      await queryClient.invalidateQueries({
        queryKey: trpc.workspaces.invites.queryKey({ workspaceId: workspace.id }),
      });
      setLink({
        // The token rides in the fragment, which browsers never send: no server or proxy log records it.
        url: `${window.location.origin}${paths.invite(result.token)}`,
        email: values.email.trim(),
        expiresAt: result.expiresAt,
      });
      invite.reset();
      form.reset();
    } catch (error) {
      applyFieldIssues(fieldIssues(error), new Set(['email', 'role']), form.setError);
    }
  });

  if (link)
    return (
      <div className="stack">
        <Notice>
          Send this link to <strong>{link.email}</strong>. It is shown only once and works once; it expires{' '}
          {formatDateTime(link.expiresAt)}. You can revoke it under “Pending invites” until it is used.
        </Notice>
        <div className="field">
          <label htmlFor="invite-link" className="field-label">
            Invite link
          </label>
          <div className="copy-row">
            <input
              id="invite-link"
              className="input input-mono"
              readOnly
              value={link.url}
              onFocus={(event) => event.target.select()}
            />
            <button
              type="button"
              className="button"
              ref={copy}
              onClick={async () => {
                await navigator.clipboard?.writeText(link.url).catch(() => undefined);
                setCopied(true);
              }}
            >
              {copied ? 'Copied' : 'Copy'}
            </button>
          </div>
        </div>
        <div className="form-actions">
          <button type="button" className="button button-primary" onClick={onClose}>
            Done
          </button>
        </div>
      </div>
    );

  const roleOptions = assignableRoles(workspace.role).map((role) => ({
    value: role,
    label: roleLabel(role),
  }));
  return (
    <FormProvider {...form}>
      <form className="stack" onSubmit={onSubmit} noValidate aria-label="Invite a person">
        {invite.error && fieldIssues(invite.error).length === 0 && (
          <ErrorAlert>{errorMessage(invite.error)}</ErrorAlert>
        )}
        <TextField
          name="email"
          label="Email"
          type="email"
          required
          autoComplete="off"
          placeholder="colleague@example.com"
          help={EMAIL_NOT_VERIFIED}
          rules={{
            pattern: {
              value: /^[^\s@]+@[^\s@]+$/,
              message: 'Enter an email address like colleague@example.com.',
            },
          }}
        />
        <SelectField
          name="role"
          label="Role"
          options={roleOptions}
          required
          help="Members manage their own secrets and can select any secret in a node. Admins also see and manage every secret and the audit log."
        />
        <div className="form-actions">
          <button type="button" className="button" onClick={onClose}>
            Cancel
          </button>
          <SubmitButton pendingLabel="Creating link…">Create invite link</SubmitButton>
        </div>
      </form>
    </FormProvider>
  );
}

/** Pending invites, for owners and admins: who was invited, by whom, until when; each can be revoked. */
function PendingInvites({ workspace }: { workspace: WorkspaceSummary }) {
  const invites = useQuery(trpc.workspaces.invites.queryOptions({ workspaceId: workspace.id }));
  const [revoking, setRevoking] = useState<PendingInvite | null>(null);
  return (
    <section className="stack" aria-labelledby="pending-invites-title">
      <h2 id="pending-invites-title">Pending invites</h2>
      {invites.isPending && <Spinner label="Loading pending invites" />}
      {invites.isError && <ErrorAlert>{errorMessage(invites.error)}</ErrorAlert>}
      {invites.data && invites.data.length === 0 && (
        <p className="muted">No invite is waiting to be accepted.</p>
      )}
      {invites.data && invites.data.length > 0 && (
        <DataTable
          caption={`Pending invites to ${workspace.name}`}
          columns={['Email', 'Role', 'Invited by', 'Expires']}
          actions
        >
          {invites.data.map((invite) => (
            <tr key={invite.id} data-invite-email={invite.email}>
              <th scope="row" className="cell-name">
                <span className="cell-main">{invite.email}</span>
              </th>
              <td>
                <span className={`badge badge-role-${invite.role}`}>{roleLabel(invite.role)}</span>
              </td>
              <td>
                <span className="cell-main">{invite.invitedBy.name}</span>
                <span className="cell-sub">{invite.invitedBy.email}</span>
              </td>
              <td>
                <Time iso={invite.expiresAt} />
              </td>
              <td className="cell-actions">
                {rolePermissions.inviteWithRole(workspace.role, invite.role) && (
                  <button
                    type="button"
                    className="button button-small button-danger-ghost"
                    onClick={() => setRevoking(invite)}
                    aria-label={`Revoke the invite for ${invite.email}`}
                  >
                    Revoke
                  </button>
                )}
              </td>
            </tr>
          ))}
        </DataTable>
      )}
      <RevokeInviteDialog workspace={workspace} invite={revoking} onClose={() => setRevoking(null)} />
    </section>
  );
}

function RevokeInviteDialog({
  workspace,
  invite,
  onClose,
}: {
  workspace: WorkspaceSummary;
  invite: PendingInvite | null;
  onClose: () => void;
}) {
  const revoke = useMutation(trpc.workspaces.revokeInvite.mutationOptions());
  const toast = useToast();
  async function confirm() {
    if (!invite) return;
    await revoke.mutateAsync({ workspaceId: workspace.id, inviteId: invite.id });
    await queryClient.invalidateQueries({
      queryKey: trpc.workspaces.invites.queryKey({ workspaceId: workspace.id }),
    });
    toast(`The invite for ${invite.email} was revoked.`);
    onClose();
  }
  return (
    <ConfirmDialog
      open={invite !== null}
      onClose={onClose}
      title={invite ? `Revoke the invite for ${invite.email}?` : 'Revoke invite'}
      confirmLabel="Revoke invite"
      pendingLabel="Revoking…"
      onConfirm={confirm}
    >
      <p>The link sent to {invite?.email} stops working at once. To let them in later, send a new invite.</p>
    </ConfirmDialog>
  );
}

/** What removing a member (or leaving) deletes and breaks, saying nothing of what it does not ("0 secrets…"). */
function consequences(name: string, preview: { secrets: number; nodes: { workflowId: string }[] }): string {
  const workflows = new Set(preview.nodes.map((node) => node.workflowId)).size;
  if (preview.secrets === 0) return `No secrets were created by ${name}: nothing is deleted.`;
  const deleted = `${plural(preview.secrets, 'secret')} created by ${name} will be deleted`;
  if (preview.nodes.length === 0)
    return `${deleted}; no workflow node uses ${preview.secrets === 1 ? 'it' : 'them'}.`;
  return `${deleted}; ${plural(preview.nodes.length, 'node')} in ${plural(workflows, 'workflow')} will need a new credential.`;
}

function RemoveMemberDialog({
  workspace,
  member,
  onClose,
}: {
  workspace: WorkspaceSummary;
  member: Member | null;
  onClose: () => void;
}) {
  const preview = useQuery({
    ...trpc.workspaces.removalPreview.queryOptions(
      member ? { workspaceId: workspace.id, userId: member.userId } : skipToken,
    ),
    staleTime: 0,
  });
  const remove = useMutation(trpc.workspaces.removeMember.mutationOptions());
  const toast = useToast();

  async function confirm() {
    if (!member) return;
    const result = await remove.mutateAsync({ workspaceId: workspace.id, userId: member.userId });
    await Promise.all([
      queryClient.invalidateQueries({ queryKey: trpc.workspaces.pathKey() }),
      queryClient.invalidateQueries({ queryKey: trpc.secrets.pathKey() }),
      queryClient.invalidateQueries({ queryKey: trpc.workflows.pathKey() }),
    ]);
    const affected = result.affectedNodes.length;
    toast(
      [
        `${member.name} was removed.`,
        result.deletedSecrets > 0 && `${plural(result.deletedSecrets, 'secret')} deleted.`,
        affected > 0 && `${plural(affected, 'node')} ${affected === 1 ? 'needs' : 'need'} a new credential.`,
      ]
        .filter(Boolean)
        .join(' '),
    );
    onClose();
  }

  return (
    <ConfirmDialog
      open={member !== null}
      onClose={onClose}
      title={member ? `Remove ${member.name}?` : 'Remove member'}
      confirmLabel={member ? `Remove ${member.name}` : 'Remove member'}
      pendingLabel="Removing…"
      ready={preview.data !== undefined}
      onConfirm={confirm}
    >
      <p>
        {member?.name} ({member?.email}) loses access to {workspace.name} immediately.
      </p>
      {preview.isPending && <Spinner label="Checking what will be deleted" />}
      {preview.isError && <ErrorAlert>{errorMessage(preview.error)}</ErrorAlert>}
      {member && preview.data && (
        <Notice tone={preview.data.secrets > 0 || preview.data.nodes.length > 0 ? 'warning' : 'info'}>
          <p className="removal-summary">{consequences(member.name, preview.data)}</p>
          {preview.data.nodes.length > 0 && <AffectedNodesList nodes={preview.data.nodes} />}
        </Notice>
      )}
    </ConfirmDialog>
  );
}

function LeaveDialog({
  me,
  workspace,
  soleOwner,
  open,
  onClose,
}: {
  me: Me;
  workspace: WorkspaceSummary;
  /** The only owner cannot leave: they are told why, before any preview of what leaving would delete. */
  soleOwner: boolean;
  open: boolean;
  onClose: () => void;
}) {
  const preview = useQuery({
    ...trpc.workspaces.removalPreview.queryOptions(
      open && !soleOwner ? { workspaceId: workspace.id, userId: me.user.id } : skipToken,
    ),
    staleTime: 0,
    retry: false,
  });
  const leave = useMutation(trpc.workspaces.leave.mutationOptions());
  async function confirm() {
    await leave.mutateAsync({ workspaceId: workspace.id });
    queryClient.clear();
    navigate('/', { replace: true });
  }
  if (soleOwner)
    return (
      <Dialog open={open} onClose={onClose} title={`You cannot leave ${workspace.name} yet`}>
        <div className="stack">
          <p>
            You are its only owner, and a workspace always keeps one. Make another member an owner first
            (their Role, above), then leave.
          </p>
          <div className="form-actions">
            <button type="button" className="button button-primary" onClick={onClose}>
              OK
            </button>
          </div>
        </div>
      </Dialog>
    );
  return (
    <ConfirmDialog
      open={open}
      onClose={onClose}
      title={`Leave ${workspace.name}?`}
      confirmLabel="Leave workspace"
      pendingLabel="Leaving…"
      onConfirm={confirm}
    >
      <p>You lose access to this workspace, its workflows and its secrets.</p>
      {preview.data && <Notice tone="warning">{consequences('you', preview.data)}</Notice>}
    </ConfirmDialog>
  );
}
