import { useMutation, useQuery } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import type { Me } from '../api/hooks';
import { errorCode, errorMessage, queryClient, type RouterOutputs, trpc, trpcClient } from '../api/trpc';
import { inviteTokenFromFragment, Link, navigate, paths } from '../app/router';
import { roleLabel } from '../app/Shell';
import { AuthCard } from '../auth/AuthCard';
import { ErrorAlert, Notice } from '../ui/Feedback';
import { formatDateTime } from '../ui/format';

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

type InviteOverview = RouterOutputs['workspaces']['inspectInvite'];

/**
 * What the link's invite is, asked on arrival (a POST: the token stays out of URLs). Keyed by who is signed
 * in, not by the token, so the token is in no cache key; asked again after signing in or out.
 */
function useInviteOverview(token: string | null, me: Me | null) {
  return useQuery({
    queryKey: ['invite-overview', me?.user.id ?? null],
    queryFn: () => trpcClient.workspaces.inspectInvite.mutate({ token: token ?? '' }),
    enabled: token !== null,
    staleTime: 0,
    gcTime: 0,
  });
}

/** `token`: only for an old-form link `/invite/<token>`; current links carry it in the fragment. */
export function AcceptInvitePage({ token: legacyToken, me }: { token: string; me: Me | null }) {
  const accept = useMutation(trpc.workspaces.acceptInvite.mutationOptions());
  const signOut = useMutation(trpc.auth.signOut.mutationOptions());
  const token = useInviteToken(legacyToken);
  const overview = useInviteOverview(token, me);
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

  /** Signs out and stays here (the token is kept for this tab), to sign in with the invited address. */
  async function switchAccount() {
    try {
      await signOut.mutateAsync();
    } finally {
      queryClient.setQueryData(trpc.auth.me.queryKey(), null);
    }
  }

  const failure =
    accept.error &&
    (errorCode(accept.error) === 'NOT_FOUND' || errorCode(accept.error) === 'BAD_REQUEST'
      ? 'This invite link is not valid any more: it was already used, it expired, or it was mistyped. Ask for a new one.'
      : errorMessage(accept.error));

  const invite = overview.data;
  return (
    <AuthCard
      title={invite ? inviteTitle(invite) : 'You’re invited to a workspace'}
      documentTitle="Join a workspace"
    >
      {!token ? (
        <Notice tone="warning">
          This page needs the invite link you were sent: open the link from the message again, or ask the
          person who invited you for a new one.
        </Notice>
      ) : overview.error ? (
        <Notice tone="warning">
          {errorCode(overview.error) === 'NOT_FOUND' || errorCode(overview.error) === 'BAD_REQUEST'
            ? 'This invite link does not match any invite: it may have been copied only in part. Open the link from the message again, or ask for a new one.'
            : `The invite could not be checked: ${errorMessage(overview.error)}`}
        </Notice>
      ) : !invite ? (
        <p className="auth-subtitle" role="status">
          Checking your invite…
        </p>
      ) : invite.status !== 'pending' ? (
        <>
          <Notice tone="warning">{deadInviteMessage(invite)}</Notice>
          <p className="auth-switch">
            <Link href="/">{me ? 'Go to your workspaces' : 'Sign in'}</Link>
          </p>
        </>
      ) : !me ? (
        <>
          <p className="auth-subtitle">
            {invitation(invite)} The invite is for <strong>{invite.email}</strong>: sign in or create an
            account with that address to accept it.
          </p>
          <div className="stack">
            <Link href={paths.signUp(here)} className="button button-primary button-block">
              Create an account
            </Link>
            <Link href={paths.signIn(here)} className="button button-block">
              Sign in
            </Link>
          </div>
        </>
      ) : invite.forYou === false ? (
        <>
          <Notice tone="warning">
            This invite is for <strong>{invite.email}</strong>, and you are signed in as{' '}
            <strong>{me.user.email}</strong>. Sign out, then sign in or create an account with the invited
            address.
          </Notice>
          <ActionOrNotNow onClick={switchAccount} pending={signOut.isPending} pendingLabel="Signing out…">
            Sign out to use another account
          </ActionOrNotNow>
        </>
      ) : (
        <>
          <p className="auth-subtitle">
            {invitation(invite)} Join as <strong>{me.user.email}</strong>: you will be able to select the
            workspace’s secrets in your workflow nodes.
          </p>
          <ErrorAlert>{failure}</ErrorAlert>
          <ActionOrNotNow onClick={join} pending={accept.isPending} pendingLabel="Joining…">
            Accept invitation
          </ActionOrNotNow>
        </>
      )}
    </AuthCard>
  );
}

/** The page's one action, and a way out. */
function ActionOrNotNow(props: {
  onClick: () => void;
  pending: boolean;
  pendingLabel: string;
  children: string;
}) {
  return (
    <>
      <button
        type="button"
        className="button button-primary button-block"
        onClick={props.onClick}
        disabled={props.pending}
      >
        {props.pending ? props.pendingLabel : props.children}
      </button>
      <p className="auth-switch">
        <Link href="/">Not now</Link>
      </p>
    </>
  );
}

function inviteTitle(invite: InviteOverview): string {
  return invite.status === 'pending'
    ? `Join ${invite.workspaceName}`
    : `This invite to ${invite.workspaceName} cannot be used`;
}

function invitation(invite: InviteOverview) {
  return (
    <>
      <strong>{invite.invitedBy}</strong> invited you to join <strong>{invite.workspaceName}</strong> as{' '}
      {article(invite.role)} {roleLabel(invite.role).toLowerCase()}.
    </>
  );
}

const article = (role: string) => (/^[aeiou]/i.test(role) ? 'an' : 'a');

function deadInviteMessage(invite: InviteOverview): string {
  const from = `${invite.invitedBy}’s invite to ${invite.workspaceName}`;
  switch (invite.status) {
    case 'accepted':
      return `${from} was already used: an invite admits one person, once. If that was you, sign in to find the workspace; otherwise ask for an invite of your own.`;
    case 'revoked':
      return `${from} was revoked, so it admits no one. Ask an owner or admin of ${invite.workspaceName} for a new one.`;
    default:
      return `${from} expired on ${formatDateTime(invite.expiresAt)}. Ask ${invite.invitedBy} or another admin of ${invite.workspaceName} for a new one.`;
  }
}

function joinedWorkspaceId(result: unknown): string | null {
  if (!result || typeof result !== 'object') return null;
  const record = result as { workspaceId?: unknown; id?: unknown; workspace?: { id?: unknown } };
  for (const candidate of [record.workspaceId, record.workspace?.id, record.id])
    if (typeof candidate === 'string') return candidate;
  return null;
}
