import { type AnchorHTMLAttributes, type MouseEvent, useEffect, useSyncExternalStore } from 'react';

// A small history-API router: the app has a handful of routes, and the server answers every unknown
// path with index.html, so deep links (an invite link, a workflow) work on reload.

type Listener = () => void;
const listeners = new Set<Listener>();

function subscribe(listener: Listener): () => void {
  listeners.add(listener);
  window.addEventListener('popstate', listener);
  return () => {
    listeners.delete(listener);
    window.removeEventListener('popstate', listener);
  };
}

function notify(): void {
  for (const listener of listeners) listener();
}

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  if (to === window.location.pathname + window.location.search + window.location.hash) return;
  if (options.replace) window.history.replaceState(null, '', to);
  else window.history.pushState(null, '', to);
  notify();
}

export function usePathname(): string {
  return useSyncExternalStore(subscribe, () => window.location.pathname);
}

export type Route =
  | { name: 'signIn' }
  | { name: 'signUp' }
  /**
   * An invite link. Its token travels in the fragment (`/invite#token=…`: browsers never send a fragment, so
   * no server or proxy log records it) and the page reads it there (inviteTokenFromFragment); `token` is set
   * only for a link of the old form `/invite/<token>`, and is empty otherwise.
   */
  | { name: 'invite'; token: string }
  | { name: 'home' }
  | { name: 'newWorkspace' }
  | { name: 'secrets'; workspaceId: string }
  | { name: 'integrations'; workspaceId: string }
  | { name: 'members'; workspaceId: string }
  | { name: 'workflows'; workspaceId: string }
  | { name: 'workflow'; workspaceId: string; workflowId: string }
  | { name: 'audit'; workspaceId: string }
  | { name: 'notFound' };

export type WorkspaceSection = 'secrets' | 'integrations' | 'members' | 'workflows' | 'audit';

export function parseRoute(pathname: string): Route {
  const parts = pathname.split('/').filter(Boolean).map(decodeURIComponent);
  const [first, second, third, fourth] = parts;
  if (parts.length === 0) return { name: 'home' };
  if (first === 'signin' && parts.length === 1) return { name: 'signIn' };
  if (first === 'signup' && parts.length === 1) return { name: 'signUp' };
  if (first === 'invite' && parts.length === 1) return { name: 'invite', token: '' };
  if (first === 'invite' && second && parts.length === 2) return { name: 'invite', token: second };
  if (first === 'new-workspace' && parts.length === 1) return { name: 'newWorkspace' };
  if (first === 'w' && second) {
    if (third === 'secrets' && parts.length === 3) return { name: 'secrets', workspaceId: second };
    if (third === 'integrations' && parts.length === 3) return { name: 'integrations', workspaceId: second };
    if (third === 'members' && parts.length === 3) return { name: 'members', workspaceId: second };
    if (third === 'audit' && parts.length === 3) return { name: 'audit', workspaceId: second };
    if (third === 'workflows' && parts.length === 3) return { name: 'workflows', workspaceId: second };
    if (third === 'workflows' && fourth && parts.length === 4)
      return { name: 'workflow', workspaceId: second, workflowId: fourth };
    if (parts.length === 2) return { name: 'secrets', workspaceId: second };
  }
  return { name: 'notFound' };
}

export const paths = {
  signIn: (next?: string) => (next ? `/signin?next=${encodeURIComponent(next)}` : '/signin'),
  signUp: (next?: string) => (next ? `/signup?next=${encodeURIComponent(next)}` : '/signup'),
  section: (workspaceId: string, section: WorkspaceSection) =>
    `/w/${encodeURIComponent(workspaceId)}/${section}`,
  workflow: (workspaceId: string, workflowId: string) =>
    `/w/${encodeURIComponent(workspaceId)}/workflows/${encodeURIComponent(workflowId)}`,
  /** The page that accepts invites; with a token, the link to send (the token in the fragment). */
  invite: (token?: string) => (token ? `/invite#token=${encodeURIComponent(token)}` : '/invite'),
};

/** The invite token of an invite link's fragment (`#token=…`), if any. */
export function inviteTokenFromFragment(): string | null {
  const token = new URLSearchParams(window.location.hash.replace(/^#/, '')).get('token');
  return token ? token : null;
}

/** The `next` query parameter, if it is a same-origin path (never an open redirect). */
export function nextPath(): string | null {
  const next = new URLSearchParams(window.location.search).get('next');
  return next?.startsWith('/') && !next.startsWith('//') ? next : null;
}

export function Link({ href, onClick, ...rest }: AnchorHTMLAttributes<HTMLAnchorElement> & { href: string }) {
  function handleClick(event: MouseEvent<HTMLAnchorElement>) {
    onClick?.(event);
    if (
      event.defaultPrevented ||
      event.button !== 0 ||
      event.metaKey ||
      event.ctrlKey ||
      event.shiftKey ||
      event.altKey
    )
      return;
    event.preventDefault();
    navigate(href);
  }
  return <a href={href} onClick={handleClick} {...rest} />;
}

export function Redirect({ to }: { to: string }) {
  useEffect(() => navigate(to, { replace: true }), [to]);
  return null;
}

/** Sets the document title, so each page is announced by name (and screen-reader users know where they are). */
export function useDocumentTitle(title: string): void {
  useEffect(() => {
    document.title = title ? `${title} · Latchkey` : 'Latchkey';
  }, [title]);
}
