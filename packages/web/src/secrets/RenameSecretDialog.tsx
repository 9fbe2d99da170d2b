import { useMutation } from '@tanstack/react-query';
import { useEffect } from 'react';
import { FormProvider, useForm } from 'react-hook-form';
import type { SecretMeta } from '../api/hooks';
import { errorMessage, fieldIssues, queryClient, trpc } from '../api/trpc';
import { applyFieldIssues } from '../schema-form/SchemaFields';
import { Dialog } from '../ui/Dialog';
import { ErrorAlert, useToast } from '../ui/Feedback';
import { SubmitButton } from '../ui/SubmitButton';
import { TextField } from '../ui/TextField';

/** A new name for a secret or connection: same id and value, so the nodes that use it keep working. */
export function RenameSecretDialog({
  workspaceId,
  secret,
  onClose,
}: {
  workspaceId: string;
  secret: SecretMeta | null;
  onClose: () => void;
}) {
  const what = secret?.kind === 'oauth2' ? 'connection' : 'secret';
  return (
    <Dialog
      open={secret !== null}
      onClose={onClose}
      title={`Rename ${what}`}
      description={
        <p>Workflow nodes that use it keep working: they refer to it by its identity, not its name.</p>
      }
    >
      {secret && <RenameForm workspaceId={workspaceId} secret={secret} onClose={onClose} />}
    </Dialog>
  );
}

function RenameForm({
  workspaceId,
  secret,
  onClose,
}: {
  workspaceId: string;
  secret: SecretMeta;
  onClose: () => void;
}) {
  const form = useForm<{ name: string }>({ defaultValues: { name: secret.name } });
  const rename = useMutation(trpc.secrets.rename.mutationOptions());
  const toast = useToast();
  useEffect(() => () => rename.reset(), [rename.reset]);

  const onSubmit = form.handleSubmit(async ({ name }) => {
    try {
      const renamed = await rename.mutateAsync({ workspaceId, secretId: secret.id, name });
      await Promise.all([
        queryClient.invalidateQueries({ queryKey: trpc.secrets.pathKey() }),
        queryClient.invalidateQueries({ queryKey: trpc.workflows.pathKey() }),
      ]);
      if (renamed.name !== secret.name) toast(`“${secret.name}” is now called “${renamed.name}”.`);
      onClose();
    } catch (error) {
      applyFieldIssues(fieldIssues(error), new Set(['name']), form.setError);
    }
  });

  const placed = rename.error && fieldIssues(rename.error).some((issue) => issue.path.join('.') === 'name');
  return (
    <FormProvider {...form}>
      <form className="stack" onSubmit={onSubmit} noValidate aria-label={`Rename ${secret.name}`}>
        {rename.error && !placed && <ErrorAlert>{errorMessage(rename.error)}</ErrorAlert>}
        <TextField
          name="name"
          label="Name"
          required
          autoFocus
          rules={{
            validate: (value: string) => value.trim().length > 0 || 'Name is required.',
            maxLength: { value: 120, message: 'Name must be at most 120 characters long.' },
          }}
        />
        <div className="form-actions">
          <button type="button" className="button" onClick={onClose}>
            Cancel
          </button>
          <SubmitButton pendingLabel="Renaming…">Rename</SubmitButton>
        </div>
      </form>
    </FormProvider>
  );
}
