import { lazy, type ReactNode, Suspense } from 'react';
import { useMe } from '../api/hooks';
import { errorMessage } from '../api/trpc';
import { SecretsPage } from '../secrets/SecretsPage';
import { ErrorAlert, Spinner } from '../ui/Feedback';
import { Link, nextPath, parseRoute, paths, Redirect, useDocumentTitle, usePathname } from './router';
import { Shell } from './Shell';

// The secrets page (where a workspace opens) is in the first bundle; every other page is its own chunk, fetched
// when it is first shown (docs/performance.md "Assets").
const SignInPage = lazy(() => import('../auth/AuthPages').then((m) => ({ default: m.SignInPage })));
const SignUpPage = lazy(() => import('../auth/AuthPages').then((m) => ({ default: m.SignUpPage })));
const CreateWorkspaceForm = lazy(() =>
  import('../workspaces/CreateWorkspaceForm').then((m) => ({ default: m.CreateWorkspaceForm })),
);
const AcceptInvitePage = lazy(() =>
  import('../members/AcceptInvitePage').then((m) => ({ default: m.AcceptInvitePage })),
);
const AuditPage = lazy(() => import('../audit/AuditPage').then((m) => ({ default: m.AuditPage })));
const IntegrationsPage = lazy(() =>
  import('../integrations/IntegrationsPage').then((m) => ({ default: m.IntegrationsPage })),
);
const MembersPage = lazy(() => import('../members/MembersPage').then((m) => ({ default: m.MembersPage })));
const WorkflowsPage = lazy(() =>
  import('../workflows/WorkflowsPage').then((m) => ({ default: m.WorkflowsPage })),
);
const WorkflowEditorPage = lazy(() =>
  import('../workflows/WorkflowEditorPage').then((m) => ({ default: m.WorkflowEditorPage })),
);

/** While a page's chunk loads: the shell stays, and a status names what is coming. */
function PageLoading({ children }: { children: ReactNode }) {
  return <Suspense fallback={<Spinner label="Loading the page" />}>{children}</Suspense>;
}

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
  if (route.name === 'invite')
    return (
      <PageLoading>
        <AcceptInvitePage token={route.token} me={session} />
      </PageLoading>
    );
  if (route.name === 'signIn' || route.name === 'signUp') {
    if (session) return <Redirect to={nextPath() ?? '/'} />;
    return <PageLoading>{route.name === 'signIn' ? <SignInPage /> : <SignUpPage />}</PageLoading>;
  }
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
          <PageLoading>
            <IntegrationsPage me={session} workspace={workspace} />
          </PageLoading>
        </Shell>
      );
    case 'members':
      return (
        <Shell me={session} workspace={workspace} section="members">
          <PageLoading>
            <MembersPage me={session} workspace={workspace} />
          </PageLoading>
        </Shell>
      );
    case 'workflows':
      return (
        <Shell me={session} workspace={workspace} section="workflows">
          <PageLoading>
            <WorkflowsPage workspace={workspace} />
          </PageLoading>
        </Shell>
      );
    case 'workflow':
      return (
        <Shell me={session} workspace={workspace} section="workflows">
          <PageLoading>
            <WorkflowEditorPage workspace={workspace} workflowId={route.workflowId} />
          </PageLoading>
        </Shell>
      );
    case 'audit':
      return (
        <Shell me={session} workspace={workspace} section="audit">
          <PageLoading>
            <AuditPage workspace={workspace} />
          </PageLoading>
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
        <PageLoading>
          <CreateWorkspaceForm />
        </PageLoading>
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
