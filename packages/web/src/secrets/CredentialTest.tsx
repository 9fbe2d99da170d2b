import { useMutation } from '@tanstack/react-query';
import { useCallback, useEffect, useRef, useState } from 'react';
import type { FieldValues, Path, UseFormReturn } from 'react-hook-form';
import { errorMessage, type FieldIssue, fieldIssues, trpc } from '../api/trpc';
import { type SchemaField, submittedValues } from '../schema-form/jsonSchema';
import { applyFieldIssues } from '../schema-form/SchemaFields';
import { FailureDetails } from '../ui/FailureDetails';
import { TestBadge } from './TestBadge';

export interface TestOutcome {
  ok: boolean;
  message: string;
  /** A failure's system code (`ENOTFOUND`), shown behind "Details". */
  code?: string | undefined;
}

interface UnsavedTestOptions {
  workspaceId: string;
  /** The credential type being filled in; null while none is chosen. */
  credentialType: string | null;
  /** Runs the form's client-side checks on the credential fields; false stops the test. */
  validate: () => Promise<boolean>;
  /** The credential data as it would be saved. */
  collect: () => Record<string, string>;
  /** Puts the server's field issues next to their fields; returns those it could not place. */
  placeIssues: (issues: FieldIssue[]) => FieldIssue[];
}

/**
 * "Test" for a credential form that is not saved yet: `secrets.test {workspaceId, credentialType, data}`.
 * The data is the mutation's variables, so, as for `secrets.create`, the mutation (gcTime 0) is reset as
 * soon as it settles and when the form unmounts: TanStack's mutation cache never keeps the value. The
 * form is left as it is, so the value can be corrected and tested again, or saved.
 */
export function useUnsavedCredentialTest({
  workspaceId,
  credentialType,
  validate,
  collect,
  placeIssues,
}: UnsavedTestOptions) {
  const test = useMutation(trpc.secrets.test.mutationOptions());
  const { reset } = test;
  const [outcome, setOutcome] = useState<TestOutcome | null>(null);
  const [pending, setPending] = useState(false);
  // A result describes the values that were tested: editing them (or switching type) retires it, and the
  // answer to a request sent before the edit is dropped.
  const generation = useRef(0);
  const clear = useCallback(() => {
    generation.current += 1;
    setOutcome(null);
  }, []);

  useEffect(() => () => reset(), [reset]);
  // A new credential type retires the last result.
  useEffect(clear, [credentialType, clear]);

  async function run() {
    if (!credentialType || pending) return;
    clear();
    const started = generation.current;
    if (!(await validate())) return;
    setPending(true);
    let result: TestOutcome;
    try {
      result = await test.mutateAsync({ workspaceId, credentialType, data: collect() });
    } catch (error) {
      const issues = fieldIssues(error);
      const unplaced = issues.length > 0 ? placeIssues(issues) : [];
      result = {
        ok: false,
        message:
          issues.length === 0
            ? errorMessage(error)
            : unplaced.length > 0
              ? unplaced.map((issue) => issue.message).join(' ')
              : 'Check the highlighted fields.',
      };
    } finally {
      reset();
      setPending(false);
    }
    if (generation.current === started) setOutcome(result);
  }

  return { run, outcome, pending, clear };
}

/** The Test button beside Save: only for credential types whose integration has a test request. */
export function TestButton({
  onClick,
  pending,
  disabled,
}: {
  onClick: () => void;
  pending: boolean;
  disabled?: boolean;
}) {
  return (
    <button type="button" className="button" onClick={onClick} disabled={pending || disabled}>
      {pending ? 'Testing…' : 'Test'}
    </button>
  );
}

/**
 * The polite live region for a test result. It is in the page before any result, so screen readers
 * announce the result when it appears; the message comes from the server and never contains the value.
 */
export function TestResult({ outcome, pending }: { outcome: TestOutcome | null; pending: boolean }) {
  return (
    <div className="test-result-region" role="status" aria-live="polite" aria-atomic="true">
      {pending ? (
        <p className="test-result">Testing the credential…</p>
      ) : outcome ? (
        <div
          className={`test-result ${outcome.ok ? 'test-result-ok' : 'test-result-failed'}`}
          data-test-result={outcome.ok ? 'ok' : 'failed'}
        >
          <p className="result-line">
            <TestBadge ok={outcome.ok} /> {outcome.message}
          </p>
          <FailureDetails code={outcome.code} />
        </div>
      ) : null}
    </div>
  );
}

/**
 * `useUnsavedCredentialTest` wired to a react-hook-form whose credential fields live under `data.<field>`
 * (the create and rotate dialogs): it checks and collects those fields, places the server's issues next to
 * them, and retires a shown result as soon as one of them is edited.
 */
export function useCredentialFormTest<T extends FieldValues & { data: Record<string, string> }>({
  form,
  fields,
  workspaceId,
  credentialType,
}: {
  form: UseFormReturn<T>;
  fields: SchemaField[];
  workspaceId: string;
  credentialType: string | null;
}) {
  const paths = fields.map((field) => `data.${field.name}` as Path<T>);
  const credentialTest = useUnsavedCredentialTest({
    workspaceId,
    credentialType,
    validate: () => form.trigger(paths, { shouldFocus: true }),
    collect: () => submittedValues(fields, form.getValues('data' as Path<T>) as Record<string, string>),
    placeIssues: (issues) => applyFieldIssues(issues, new Set<string>(paths), form.setError),
  });
  const clearTest = credentialTest.clear;
  useEffect(() => {
    const subscription = form.watch((_values, { name }) => {
      if (name?.startsWith('data.')) clearTest();
    });
    return () => subscription.unsubscribe();
  }, [form, clearTest]);
  return credentialTest;
}
