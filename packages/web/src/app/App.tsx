import { useMe } from '../api/hooks';
import { errorMessage } from '../api/trpc';
import { AuditPage } from '../audit/AuditPage';
import { SignInPage, SignUpPage } from '../auth/AuthPages';
import { IntegrationsPage } from '../integrations/IntegrationsPage';
import { AcceptInvitePage } from '../members/AcceptInvitePage';
import { MembersPage } from '../members/MembersPage';
import { SecretsPage } from '../secrets/SecretsPage';
import { ErrorAlert, Spinner } from '../ui/Feedback';
import { WorkflowEditorPage } from '../workflows/WorkflowEditorPage';
import { WorkflowsPage } from '../workflows/WorkflowsPage';
import { CreateWorkspaceForm } from '../workspaces/CreateWorkspaceForm';
import { Link, nextPath, parseRoute, paths, Redirect, useDocumentTitle, usePathname } from './router';
import { Shell } from './Shell';

export function App() {
  const pathname = usePathname();
  const route = parseRoute(pathname);
  const me = useMe();

  if (me.isPending) return <Spinner label="Loading Latchkey" />;
  if (me.isError)
    return (
      <main className="auth-page" id="main">
        <div className="auth-card">
          <h1 className="auth-title">Latchkey is not reachable</h1>
          <ErrorAlert>{errorMessage(me.error)}</ErrorAlert>
          <button type="button" className="button button-primary" onClick={() => me.refetch()}>
            Try again
          </button>
        </div>
      </main>
    );

  const session = me.data;
  if (route.name === 'invite') return <AcceptInvitePage token={route.token} me={session} />;
  if (route.name === 'signIn') return session ? <Redirect to={nextPath() ?? '/'} /> : <SignInPage />;
  if (route.name === 'signUp') return session ? <Redirect to={nextPath() ?? '/'} /> : <SignUpPage />;
  if (!session) return <Redirect to={paths.signIn(pathname === '/' ? undefined : pathname)} />;

  if (route.name === 'home') {
    const first = session.workspaces[0];
    return <Redirect to={first ? paths.section(first.id, 'secrets') : '/new-workspace'} />;
  }
  if (route.name === 'newWorkspace')
    return <FirstWorkspacePage hasWorkspaces={session.workspaces.length > 0} />;
  if (route.name === 'notFound') return <NotFoundPage />;

  const workspace = session.workspaces.find((candidate) => candidate.id === route.workspaceId);
  if (!workspace) return <NotFoundPage what="workspace" />;

  switch (route.name) {
    case 'secrets':
      return (
        <Shell me={session} workspace={workspace} section="secrets">
          <SecretsPage me={session} workspace={workspace} />
        </Shell>
      );
    case 'integrations':
      return (
        <Shell me={session} workspace={workspace} section="integrations">
          <IntegrationsPage me={session} workspace={workspace} />
        </Shell>
      );
    case 'members':
      return (
        <Shell me={session} workspace={workspace} section="members">
          <MembersPage me={session} workspace={workspace} />
        </Shell>
      );
    case 'workflows':
      return (
        <Shell me={session} workspace={workspace} section="workflows">
          <WorkflowsPage workspace={workspace} />
        </Shell>
      );
    case 'workflow':
      return (
        <Shell me={session} workspace={workspace} section="workflows">
          <WorkflowEditorPage workspace={workspace} workflowId={route.workflowId} />
        </Shell>
      );
    case 'audit':
      return (
        <Shell me={session} workspace={workspace} section="audit">
          <AuditPage workspace={workspace} />
        </Shell>
      );
  }
}

function FirstWorkspacePage({ hasWorkspaces }: { hasWorkspaces: boolean }) {
  useDocumentTitle('Create a workspace');
  return (
    <div className="auth-page">
      <main className="auth-card auth-card-wide" id="main">
        <h1 className="auth-title">Create a workspace</h1>
        <p className="auth-subtitle">
          A workspace holds your workflows and the secrets they use. On the team plan its members share those
          secrets.
        </p>
        <CreateWorkspaceForm />
        {hasWorkspaces && (
          <p className="auth-switch">
            <Link href="/">Back to my workspaces</Link>
          </p>
        )}
      </main>
    </div>
  );
}

function NotFoundPage({ what = 'page' }: { what?: string }) {
  useDocumentTitle('Not found');
  return (
    <div className="auth-page">
      <main className="auth-card" id="main">
        <h1 className="auth-title">This {what} does not exist</h1>
        <p className="auth-subtitle">It may have been removed, or you may not be a member of it.</p>
        <Link href="/" className="button button-primary">
          Go to my workspaces
        </Link>
      </main>
    </div>
  );
}
