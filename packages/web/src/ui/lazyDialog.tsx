import { type ComponentType, lazy, Suspense, useEffect, useState } from 'react';

/** The first input a person gives the page: a pointer over it, a touch or a key. */
const INTENT_EVENTS = ['pointerover', 'touchstart', 'keydown'] as const;

/**
 * A dialog whose code is fetched when the person starts using the page (the first pointer, touch or key) and
 * shown the first time it opens, rather than fetched with the page that holds it (docs/performance.md
 * "Assets"). Until it has opened it renders nothing (a closed dialog shows nothing either); once opened it stays
 * mounted, so it closes, reopens and returns focus exactly as the dialog itself does.
 */
export function lazyDialog<P extends object>(
  load: () => Promise<ComponentType<P>>,
  isOpen: (props: P) => boolean,
): ComponentType<P> {
  let loading: Promise<{ default: ComponentType<P> }> | undefined;
  const fetchOnce = () => {
    loading ??= load().then((component) => ({ default: component }));
    return loading;
  };
  const Loaded = lazy(fetchOnce);
  return function LazyDialog(props: P) {
    const [opened, setOpened] = useState(false);
    const open = isOpen(props);
    if (open && !opened) setOpened(true);
    useEffect(() => {
      const stopListening = () => {
        for (const name of INTENT_EVENTS) document.removeEventListener(name, prefetch, true);
      };
      const prefetch = () => {
        stopListening();
        void fetchOnce();
      };
      for (const name of INTENT_EVENTS) document.addEventListener(name, prefetch, true);
      return stopListening;
    }, []);
    if (!open && !opened) return null;
    return (
      <Suspense fallback={null}>
        <Loaded {...props} />
      </Suspense>
    );
  };
}
