import { useMutation } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import type { Me } from '../api/hooks';
import { errorCode, errorMessage, queryClient, trpc } from '../api/trpc';
import { inviteTokenFromFragment, Link, navigate, paths } from '../app/router';
import { AuthCard } from '../auth/AuthCard';
import { ErrorAlert, Notice } from '../ui/Feedback';

/** This tab's invite token while its visitor signs in or creates an account (the link's fragment is gone by then). */
const INVITE_TOKEN_KEY = 'latchkey.inviteToken';

/**
 * The token of the invite being accepted: from the link's fragment (or an old-form link's path), else the one
 * this tab kept. The address bar drops it at once, so it stays out of history and shared screens.
 */
function useInviteToken(legacyToken: string): string | null {
  const [token] = useState(() => {
    const fromLink = inviteTokenFromFragment() ?? (legacyToken || null);
    if (fromLink) window.sessionStorage.setItem(INVITE_TOKEN_KEY, fromLink);
    return fromLink ?? window.sessionStorage.getItem(INVITE_TOKEN_KEY);
  });
  useEffect(() => navigate(paths.invite(), { replace: true }), []);
  return token;
}

/** `token`: only for an old-form link `/invite/<token>`; current links carry it in the fragment. */
export function AcceptInvitePage({ token: legacyToken, me }: { token: string; me: Me | null }) {
  const accept = useMutation(trpc.workspaces.acceptInvite.mutationOptions());
  const token = useInviteToken(legacyToken);
  const here = paths.invite();

  async function join() {
    if (!token) return;
    try {
      // In the JSON body of a POST: never in a URL a log could record.
      const result: unknown = await accept.mutateAsync({ token });
      accept.reset();
      window.sessionStorage.removeItem(INVITE_TOKEN_KEY);
      await queryClient.invalidateQueries();
      const fresh = await queryClient.fetchQuery({ ...trpc.auth.me.queryOptions(), staleTime: 0 });
      const workspaceId = joinedWorkspaceId(result) ?? fresh?.workspaces.at(-1)?.id;
      navigate(workspaceId ? paths.section(workspaceId, 'secrets') : '/', { replace: true });
    } catch {
      // Shown below.
    }
  }

  const failure =
    accept.error &&
    (errorCode(accept.error) === 'NOT_FOUND' || errorCode(accept.error) === 'BAD_REQUEST'
      ? 'This invite link is not valid any more: it was already used, it expired, or it was mistyped. Ask for a new one.'
      : errorMessage(accept.error));

  return (
    <AuthCard title="You’re invited to a workspace" documentTitle="Join a workspace">
      {!token ? (
        <Notice tone="warning">
          This page needs the invite link you were sent: open the link from the message again, or ask the
          person who invited you for a new one.
        </Notice>
      ) : me ? (
        <>
          <p className="auth-subtitle">
            Join as <strong>{me.user.email}</strong>. You will be able to select the workspace’s secrets in
            your workflow nodes.
          </p>
          <ErrorAlert>{failure}</ErrorAlert>
          <button
            type="button"
            className="button button-primary button-block"
            onClick={join}
            disabled={accept.isPending}
          >
            {accept.isPending ? 'Joining…' : 'Accept invitation'}
          </button>
          <p className="auth-switch">
            <Link href="/">Not now</Link>
          </p>
        </>
      ) : (
        <>
          <p className="auth-subtitle">Sign in or create an account to accept the invitation.</p>
          <div className="stack">
            <Link href={paths.signUp(here)} className="button button-primary button-block">
              Create an account
            </Link>
            <Link href={paths.signIn(here)} className="button button-block">
              Sign in
            </Link>
          </div>
        </>
      )}
    </AuthCard>
  );
}

function joinedWorkspaceId(result: unknown): string | null {
  if (!result || typeof result !== 'object') return null;
  const record = result as { workspaceId?: unknown; id?: unknown; workspace?: { id?: unknown } };
  for (const candidate of [record.workspaceId, record.workspace?.id, record.id])
    if (typeof candidate === 'string') return candidate;
  return null;
}
