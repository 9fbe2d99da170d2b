import type { ReactNode } from 'react';
import { useFormContext } from 'react-hook-form';

/**
 * The primary button of a react-hook-form form: while the form submits it is disabled and says what it is
 * doing ("Saving…"), so it cannot be pressed twice.
 */
export function SubmitButton({
  children,
  pendingLabel,
  disabled = false,
  block = false,
}: {
  children: ReactNode;
  pendingLabel: string;
  disabled?: boolean;
  block?: boolean;
}) {
  const { isSubmitting } = useFormContext().formState;
  return (
    <button
      type="submit"
      className={block ? 'button button-primary button-block' : 'button button-primary'}
      disabled={disabled || isSubmitting}
    >
      {isSubmitting ? pendingLabel : children}
    </button>
  );
}
