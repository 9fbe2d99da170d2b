import { type ReactNode, useState } from 'react';
import { errorMessage } from '../api/trpc';
import { Dialog } from './Dialog';
import { ErrorAlert } from './Feedback';

interface ConfirmDialogProps {
  open: boolean;
  onClose: () => void;
  title: string;
  size?: 'small' | 'medium' | 'large';
  /** What the action does and what it takes with it; rendered only while the dialog is open. */
  children: ReactNode;
  /** The danger button, and what it says while the action runs (the same label if not given). */
  confirmLabel: string;
  pendingLabel?: string;
  /** False until what the person must see first (what will be deleted) has loaded. */
  ready?: boolean;
  /** Does the action, then closes or navigates away; if it throws, the error is shown and the dialog stays. */
  onConfirm: () => Promise<void>;
}

/** A question before a destructive action: what happens, then Cancel or the action, named by what it does. */
export function ConfirmDialog({ open, onClose, title, size, children, ...action }: ConfirmDialogProps) {
  return (
    <Dialog open={open} onClose={onClose} title={title} size={size}>
      <ConfirmBody onCancel={onClose} {...action}>
        {children}
      </ConfirmBody>
    </Dialog>
  );
}

// Mounted only while the dialog is open, so a failure shown last time is gone when it opens again.
function ConfirmBody({
  onCancel,
  children,
  confirmLabel,
  pendingLabel = confirmLabel,
  ready = true,
  onConfirm,
}: Omit<ConfirmDialogProps, 'open' | 'onClose' | 'title' | 'size'> & { onCancel: () => void }) {
  const [pending, setPending] = useState(false);
  const [error, setError] = useState<unknown>(null);
  async function confirm() {
    setPending(true);
    setError(null);
    try {
      await onConfirm();
    } catch (failure) {
      setError(failure);
    } finally {
      setPending(false);
    }
  }
  return (
    <div className="stack">
      {children}
      <ErrorAlert>{errorMessage(error)}</ErrorAlert>
      <div className="form-actions">
        <button type="button" className="button" onClick={onCancel}>
          Cancel
        </button>
        <button type="button" className="button button-danger" onClick={confirm} disabled={!ready || pending}>
          {pending ? pendingLabel : confirmLabel}
        </button>
      </div>
    </div>
  );
}
