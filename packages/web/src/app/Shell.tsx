import { rolePermissions } from '@latchkey/core/roles';
import { useMutation } from '@tanstack/react-query';
import { type ReactNode, useId, useState } from 'react';
import type { Me, WorkspaceSummary } from '../api/hooks';
import { queryClient, trpc } from '../api/trpc';
import { Dialog } from '../ui/Dialog';
import { lazyDialog } from '../ui/lazyDialog';
import { Link, navigate, paths, type WorkspaceSection } from './router';

// The form (and react-hook-form) loads on first use (docs/performance.md "Assets"); the dialog mounts with it,
// so it opens with the focus on the form's first field.
const CreateWorkspaceDialog = lazyDialog(
  () =>
    import('../workspaces/CreateWorkspaceForm').then(
      ({ CreateWorkspaceForm }) =>
        function CreateWorkspaceDialog({ open, onClose }: { open: boolean; onClose: () => void }) {
          return (
            <Dialog open={open} onClose={onClose} title="Create a workspace">
              <CreateWorkspaceForm onCancel={onClose} onCreated={onClose} />
            </Dialog>
          );
        },
    ),
  (props) => props.open,
);

interface ShellProps {
  me: Me;
  workspace: WorkspaceSummary;
  section: WorkspaceSection;
  children: ReactNode;
}

export function Shell({ me, workspace, section, children }: ShellProps) {
  const readAudit = rolePermissions.readAudit(workspace.role);
  const nav: { section: WorkspaceSection; label: string; group: 'build' | 'settings' }[] = [
    { section: 'workflows', label: 'Workflows', group: 'build' },
    { section: 'secrets', label: 'Secrets & API Keys', group: 'settings' },
    { section: 'integrations', label: 'Integrations', group: 'settings' },
    { section: 'members', label: 'Members', group: 'settings' },
    ...(readAudit ? [{ section: 'audit' as const, label: 'Audit log', group: 'settings' as const }] : []),
  ];
  // On a narrow screen the sidebar folds into a menu under the brand; choosing a page folds it again.
  const [menuOpen, setMenuOpen] = useState(false);
  const menuId = useId();
  const navItem = (item: (typeof nav)[number]) => (
    <li key={item.section}>
      <Link
        href={paths.section(workspace.id, item.section)}
        className="nav-link"
        aria-current={item.section === section ? 'page' : undefined}
        onClick={() => setMenuOpen(false)}
      >
        {item.label}
      </Link>
    </li>
  );
  return (
    <div className="app">
      <a href="#main" className="skip-link">
        Skip to content
      </a>
      <aside className="sidebar" data-open={menuOpen || undefined}>
        <div className="brand">
          <span className="brand-mark" aria-hidden="true">
            L
          </span>
          <span className="brand-name">Latchkey</span>
          <button
            type="button"
            className="button button-small menu-toggle"
            aria-expanded={menuOpen}
            aria-controls={menuId}
            onClick={() => setMenuOpen((open) => !open)}
          >
            Menu
          </button>
        </div>
        <div className="sidebar-body" id={menuId}>
          <WorkspaceSwitcher me={me} workspace={workspace} section={section} />
          <nav aria-label="Workspace sections" className="nav">
            <p className="nav-heading">Build</p>
            <ul className="nav-list">{nav.filter((item) => item.group === 'build').map(navItem)}</ul>
            <p className="nav-heading">Settings</p>
            <ul className="nav-list">{nav.filter((item) => item.group === 'settings').map(navItem)}</ul>
          </nav>
          <UserMenu me={me} />
        </div>
      </aside>
      <main className="content" id="main" tabIndex={-1}>
        {children}
      </main>
    </div>
  );
}

function WorkspaceSwitcher({
  me,
  workspace,
  section,
}: {
  me: Me;
  workspace: WorkspaceSummary;
  section: WorkspaceSection;
}) {
  const id = useId();
  const [creating, setCreating] = useState(false);
  return (
    <div className="workspace-switcher">
      <label htmlFor={id} className="field-label field-label-small">
        Workspace
      </label>
      <select
        id={id}
        className="input"
        value={workspace.id}
        onChange={(event) =>
          navigate(paths.section(event.target.value, section === 'audit' ? 'secrets' : section))
        }
      >
        {me.workspaces.map((candidate) => (
          <option key={candidate.id} value={candidate.id}>
            {candidate.name}
          </option>
        ))}
      </select>
      <p className="workspace-meta">
        <span className={`badge badge-plan-${workspace.plan}`}>
          {workspace.plan === 'team' ? 'Team plan' : 'Personal plan'}
        </span>
        <span className="badge badge-role">{roleLabel(workspace.role)}</span>
      </p>
      <button
        type="button"
        className="button button-ghost button-small button-block"
        onClick={() => setCreating(true)}
      >
        + New workspace
      </button>
      <CreateWorkspaceDialog open={creating} onClose={() => setCreating(false)} />
    </div>
  );
}

export function roleLabel(role: string): string {
  return role.charAt(0).toUpperCase() + role.slice(1);
}

function UserMenu({ me }: { me: Me }) {
  const signOut = useMutation(trpc.auth.signOut.mutationOptions());
  async function handleSignOut() {
    try {
      await signOut.mutateAsync();
    } finally {
      queryClient.clear();
      navigate(paths.signIn(), { replace: true });
    }
  }
  return (
    <div className="user-menu">
      <div className="avatar" aria-hidden="true">
        {initials(me.user.name || me.user.email)}
      </div>
      <div className="user-menu-text">
        <span className="user-name">{me.user.name}</span>
        <span className="user-email">{me.user.email}</span>
      </div>
      <button
        type="button"
        className="button button-ghost button-small user-menu-signout"
        onClick={handleSignOut}
        disabled={signOut.isPending}
      >
        Sign out
      </button>
    </div>
  );
}

export function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  return (
    parts.length > 1 ? `${parts[0]?.[0] ?? ''}${parts[parts.length - 1]?.[0] ?? ''}` : name.slice(0, 2)
  ).toUpperCase();
}

export function PageHeader({
  title,
  description,
  actions,
}: {
  title: string;
  description?: ReactNode;
  actions?: ReactNode;
}) {
  return (
    <header className="page-header">
      <div>
        <h1 className="page-title">{title}</h1>
        {description && <p className="page-description">{description}</p>}
      </div>
      {actions && <div className="page-actions">{actions}</div>}
    </header>
  );
}
