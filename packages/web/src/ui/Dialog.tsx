import { type ReactNode, useEffect, useId, useRef, useState } from 'react';

interface DialogProps {
  open: boolean;
  onClose: () => void;
  title: string;
  description?: ReactNode;
  children: ReactNode;
  size?: 'small' | 'medium' | 'large';
  /**
   * Whether closing now would lose what was typed: Escape and × then ask first ("Discard what you typed?").
   * A form's own Cancel button closes without asking (that is the choice made).
   */
  hasUnsavedInput?: () => boolean;
}

/**
 * A modal built on the native <dialog> element: showModal() makes the rest of the page inert (the focus
 * stays inside), Escape closes it, and focus returns to the element that opened it. Its content is
 * mounted only while it is open, so a closed dialog keeps no form state.
 */
function focusHeading(): void {
  const heading = document.querySelector<HTMLElement>('main h1');
  if (!heading) return;
  heading.tabIndex = -1;
  heading.focus();
}

export function Dialog({
  open,
  onClose,
  title,
  description,
  children,
  size = 'medium',
  hasUnsavedInput,
}: DialogProps) {
  const ref = useRef<HTMLDialogElement>(null);
  const returnFocus = useRef<HTMLElement | null>(null);
  const titleId = useId();
  const descriptionId = useId();
  const onCloseRef = useRef(onClose);
  onCloseRef.current = onClose;
  const unsavedRef = useRef(hasUnsavedInput);
  unsavedRef.current = hasUnsavedInput;
  const [askingToDiscard, setAskingToDiscard] = useState(false);
  const keepEditing = useRef<HTMLButtonElement>(null);

  /** ×: closes, unless something typed would be lost; then asks first (Escape: `handleCancel` below). */
  function requestClose() {
    if (unsavedRef.current?.()) setAskingToDiscard(true);
    else ref.current?.close();
  }

  useEffect(() => {
    if (askingToDiscard) keepEditing.current?.focus();
  }, [askingToDiscard]);

  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    if (open && !dialog.open) {
      returnFocus.current = document.activeElement instanceof HTMLElement ? document.activeElement : null;
      dialog.showModal();
      // Start where the work is: the first form control, else the dialog's first button (Chrome's default).
      dialog
        .querySelector<HTMLElement>(
          '.dialog-body input:not([type="hidden"]), .dialog-body select, .dialog-body textarea',
        )
        ?.focus();
    } else if (!open && dialog.open) {
      dialog.close();
    }
  }, [open]);

  useEffect(() => {
    const dialog = ref.current;
    if (!dialog) return;
    function handleClose() {
      setAskingToDiscard(false);
      const target = returnFocus.current;
      returnFocus.current = null;
      onCloseRef.current();
      // Back to what opened the dialog; if that went with what the dialog did (a deleted row's button), to the
      // page's heading once the page has caught up, never to the document's body.
      window.setTimeout(() => {
        if (target?.isConnected) target.focus();
        else focusHeading();
      }, 0);
    }
    function handleCancel(event: Event) {
      if (unsavedRef.current?.()) {
        event.preventDefault();
        setAskingToDiscard(true);
      }
    }
    dialog.addEventListener('close', handleClose);
    dialog.addEventListener('cancel', handleCancel);
    return () => {
      dialog.removeEventListener('close', handleClose);
      dialog.removeEventListener('cancel', handleCancel);
    };
  }, []);

  return (
    <dialog
      ref={ref}
      className={`dialog dialog-${size}`}
      aria-labelledby={titleId}
      aria-describedby={description ? descriptionId : undefined}
    >
      {open && (
        <div className="dialog-body">
          <header className="dialog-header">
            <h2 id={titleId} className="dialog-title">
              {title}
            </h2>
            <button
              type="button"
              className="icon-button"
              aria-label="Close dialog"
              onClick={() => requestClose()}
            >
              <span aria-hidden="true">×</span>
            </button>
          </header>
          {askingToDiscard && (
            <div className="alert alert-warning discard-prompt" role="alert">
              <span>Discard what you typed? It has not been saved.</span>
              <div className="discard-prompt-actions">
                <button
                  type="button"
                  className="button button-small"
                  ref={keepEditing}
                  onClick={() => setAskingToDiscard(false)}
                >
                  Keep editing
                </button>
                <button
                  type="button"
                  className="button button-small button-danger-ghost"
                  onClick={() => ref.current?.close()}
                >
                  Discard
                </button>
              </div>
            </div>
          )}
          {description && (
            <div id={descriptionId} className="dialog-description">
              {description}
            </div>
          )}
          {children}
        </div>
      )}
    </dialog>
  );
}
