import { useMutation } from '@tanstack/react-query';
import { useId } from 'react';
import { FormProvider, useForm } from 'react-hook-form';
import { errorMessage, fieldIssues, queryClient, trpc } from '../api/trpc';
import { navigate, paths } from '../app/router';
import { applyFieldIssues } from '../schema-form/SchemaFields';
import { ErrorAlert, useToast } from '../ui/Feedback';
import { SubmitButton } from '../ui/SubmitButton';
import { TextField } from '../ui/TextField';

interface Values {
  name: string;
  plan: 'personal' | 'team';
}

const plans = [
  {
    value: 'team',
    title: 'Team',
    text: 'Invite people. Secrets are shared with the members, each still limited to its node type.',
  },
  { value: 'personal', title: 'Personal', text: 'Just you. The workspace has a single member.' },
] as const;

export function CreateWorkspaceForm({
  onCancel,
  onCreated,
}: {
  onCancel?: () => void;
  onCreated?: () => void;
}) {
  const form = useForm<Values>({ defaultValues: { name: '', plan: 'team' } });
  const create = useMutation(trpc.workspaces.create.mutationOptions());
  const toast = useToast();
  const legendId = useId();

  const onSubmit = form.handleSubmit(async (values) => {
    try {
      const workspace = await create.mutateAsync(values);
      await queryClient.invalidateQueries({ queryKey: trpc.auth.me.queryKey() });
      await queryClient.invalidateQueries({ queryKey: trpc.workspaces.list.queryKey() });
      toast(`Workspace “${workspace.name}” created.`);
      onCreated?.();
      navigate(paths.section(workspace.id, 'secrets'));
    } catch (error) {
      applyFieldIssues(fieldIssues(error), new Set(['name', 'plan']), form.setError);
    }
  });

  return (
    <FormProvider {...form}>
      <form className="stack" onSubmit={onSubmit} noValidate>
        {create.error && fieldIssues(create.error).length === 0 && (
          <ErrorAlert>{errorMessage(create.error)}</ErrorAlert>
        )}
        <TextField
          name="name"
          label="Workspace name"
          required
          placeholder="Acme automation"
          autoComplete="off"
        />
        <fieldset className="field radio-cards">
          <legend id={legendId} className="field-label">
            Plan
          </legend>
          {plans.map((plan) => (
            <label key={plan.value} className="radio-card">
              <input type="radio" value={plan.value} {...form.register('plan')} />
              <span>
                <span className="radio-card-title">{plan.title}</span>
                <span className="radio-card-text">{plan.text}</span>
              </span>
            </label>
          ))}
        </fieldset>
        <div className="form-actions">
          {onCancel && (
            <button type="button" className="button" onClick={onCancel}>
              Cancel
            </button>
          )}
          <SubmitButton pendingLabel="Creating…">Create workspace</SubmitButton>
        </div>
      </form>
    </FormProvider>
  );
}
