import { plural } from '@latchkey/core/words';
import { skipToken, useMutation, useQuery } from '@tanstack/react-query';
import { type RefObject, useEffect, useMemo, useRef } from 'react';
import { FormProvider, useForm } from 'react-hook-form';
import { findCredentialType, groupByWorkflow, type SecretMeta, useIntegrations } from '../api/hooks';
import { errorMessage, fieldIssues, queryClient, trpc } from '../api/trpc';
import { initialValues, schemaFields, submittedValues } from '../schema-form/jsonSchema';
import { applyFieldIssues, SchemaFields } from '../schema-form/SchemaFields';
import { AffectedNodesList } from '../ui/AffectedNodesList';
import { ConfirmDialog } from '../ui/ConfirmDialog';
import { Dialog } from '../ui/Dialog';
import { ErrorAlert, Notice, Spinner, useToast } from '../ui/Feedback';
import { SubmitButton } from '../ui/SubmitButton';
import { TestButton, TestResult, useCredentialFormTest } from './CredentialTest';

interface SecretDialogProps {
  workspaceId: string;
  secret: SecretMeta | null;
  onClose: () => void;
}

function invalidateSecrets() {
  return Promise.all([
    queryClient.invalidateQueries({ queryKey: trpc.secrets.list.pathKey() }),
    queryClient.invalidateQueries({ queryKey: trpc.secrets.selectable.pathKey() }),
    queryClient.invalidateQueries({ queryKey: trpc.workflows.pathKey() }),
  ]);
}

/** Deletes a secret; for an OAuth2 connection (Integrations) the same deletion reads "Disconnect". */
export function DeleteSecretDialog({ workspaceId, secret, onClose }: SecretDialogProps) {
  const connection = secret?.kind === 'oauth2';
  const what = connection ? 'Connection' : 'Secret';
  const usage = useQuery({
    ...trpc.secrets.usage.queryOptions(secret ? { workspaceId, secretId: secret.id } : skipToken),
    staleTime: 0,
  });
  const remove = useMutation(trpc.secrets.delete.mutationOptions());
  const toast = useToast();

  async function confirm() {
    if (!secret) return;
    const result = await remove.mutateAsync({ workspaceId, secretId: secret.id });
    await invalidateSecrets();
    const affected = result.affectedNodes.length;
    toast(
      affected > 0
        ? `${what} “${secret.name}” ${connection ? 'disconnected' : 'deleted'}. ${plural(affected, 'node')} now ${affected === 1 ? 'needs' : 'need'} a new credential.`
        : `${what} “${secret.name}” ${connection ? 'disconnected' : 'deleted'}.`,
    );
    onClose();
  }

  const groups = usage.data ? groupByWorkflow(usage.data) : [];
  return (
    <ConfirmDialog
      open={secret !== null}
      onClose={onClose}
      title={connection ? 'Disconnect' : 'Delete secret'}
      confirmLabel={connection ? 'Disconnect' : 'Delete secret'}
      pendingLabel={connection ? 'Disconnecting…' : 'Deleting…'}
      ready={!usage.isPending}
      onConfirm={confirm}
    >
      <p>
        {connection ? 'Disconnect' : 'Delete'} <strong>{secret?.name}</strong>? It stops working immediately,
        everywhere: workflow nodes can no longer use it, and it cannot be restored.
        {connection &&
          ' Its tokens are deleted from Latchkey; to revoke the access itself, remove the app at the service too.'}
      </p>
      {usage.isPending && <Spinner label="Checking which workflow nodes use it" />}
      {usage.isError && <ErrorAlert>{errorMessage(usage.error)}</ErrorAlert>}
      {usage.data && usage.data.length === 0 && (
        <p className="muted">No workflow node uses this {what.toLowerCase()}.</p>
      )}
      {usage.data && usage.data.length > 0 && (
        <Notice tone="warning">
          <p>
            {plural(usage.data.length, 'node')} in {plural(groups.length, 'workflow')} will need a new
            credential:
          </p>
          <AffectedNodesList nodes={usage.data} />
        </Notice>
      )}
    </ConfirmDialog>
  );
}

export function RotateSecretDialog({ workspaceId, secret, onClose }: SecretDialogProps) {
  const unsaved = useRef<(() => boolean) | null>(null);
  return (
    <Dialog
      open={secret !== null}
      onClose={onClose}
      hasUnsavedInput={() => unsaved.current?.() ?? false}
      title="Rotate secret"
      size="large"
      description={
        <>
          <p>
            Enter the new value. The secret keeps its name and identity, so every workflow node that uses it
            keeps working and uses the new value from its next run.
          </p>
          <p className="muted">
            Deleting the secret and creating a new one also rotates it, but then every node that used the old
            one needs a new credential selected.
          </p>
        </>
      }
    >
      {secret && (
        <RotateSecretForm workspaceId={workspaceId} secret={secret} onClose={onClose} unsaved={unsaved} />
      )}
    </Dialog>
  );
}

interface RotateValues {
  data: Record<string, string>;
}

function RotateSecretForm({
  workspaceId,
  secret,
  onClose,
  unsaved,
}: {
  workspaceId: string;
  secret: SecretMeta;
  onClose: () => void;
  unsaved: RefObject<(() => boolean) | null>;
}) {
  const integrations = useIntegrations();
  if (integrations.isPending) return <Spinner label="Loading the credential form" />;
  const found = findCredentialType(integrations.data, secret.credentialType);
  if (!found)
    return (
      <ErrorAlert>
        The credential type {secret.credentialType} is no longer offered by any integration, so its value
        cannot be replaced here. Delete the secret instead.
      </ErrorAlert>
    );
  return (
    <RotateSecretFields
      workspaceId={workspaceId}
      secret={secret}
      found={found}
      onClose={onClose}
      unsaved={unsaved}
    />
  );
}

function RotateSecretFields({
  workspaceId,
  secret,
  found,
  onClose,
  unsaved,
}: {
  workspaceId: string;
  secret: SecretMeta;
  found: NonNullable<ReturnType<typeof findCredentialType>>;
  onClose: () => void;
  unsaved: RefObject<(() => boolean) | null>;
}) {
  const fields = useMemo(() => schemaFields(found.credentialType.jsonSchema), [found.credentialType]);
  // Public fields (a Mailgun domain, a header name) are shown again; secret fields start empty.
  const form = useForm<RotateValues>({ defaultValues: { data: initialValues(fields, secret.publicFields) } });
  const replace = useMutation(trpc.secrets.replace.mutationOptions());
  const toast = useToast();

  // Something typed into a secret field (the public fields start filled in).
  unsaved.current = () =>
    found.credentialType.secretFields.some((name) => Boolean(form.getValues(`data.${name}`)?.trim()));
  useEffect(
    () => () => {
      replace.reset();
      unsaved.current = null;
    },
    [replace.reset, unsaved],
  );

  // The new value can be tried before it replaces the old one; the saved secret's own result is untouched.
  const testable = found.credentialType.testable;
  const credentialTest = useCredentialFormTest({
    form,
    fields,
    workspaceId,
    credentialType: testable ? found.credentialType.type : null,
  });

  const onSubmit = form.handleSubmit(async (values) => {
    try {
      await replace.mutateAsync({
        workspaceId,
        secretId: secret.id,
        data: submittedValues(fields, values.data),
      });
      form.reset({ data: {} });
      replace.reset();
      await invalidateSecrets();
      toast(`Secret “${secret.name}” rotated. Nodes that use it now use the new value.`);
      onClose();
    } catch (error) {
      applyFieldIssues(
        fieldIssues(error),
        new Set(fields.map((field) => `data.${field.name}`)),
        form.setError,
      );
    }
  });

  const issues = replace.error ? fieldIssues(replace.error) : [];
  return (
    <FormProvider {...form}>
      <form className="stack" onSubmit={onSubmit} noValidate aria-label={`Rotate ${secret.name}`}>
        {replace.error && issues.length === 0 && <ErrorAlert>{errorMessage(replace.error)}</ErrorAlert>}
        {issues.length > 0 && <ErrorAlert>Check the highlighted fields.</ErrorAlert>}
        <dl className="summary-list">
          <div>
            <dt>Secret</dt>
            <dd>{secret.name}</dd>
          </div>
          <div>
            <dt>Type</dt>
            <dd>
              {found.integration.displayName} · {found.credentialType.displayName}
            </dd>
          </div>
        </dl>
        <fieldset className="fieldset">
          <legend className="fieldset-legend">New {found.credentialType.displayName}</legend>
          <SchemaFields fields={fields} prefix="data" />
        </fieldset>
        {testable && <TestResult outcome={credentialTest.outcome} pending={credentialTest.pending} />}
        <div className="form-actions">
          <button type="button" className="button" onClick={onClose}>
            Cancel
          </button>
          {testable && (
            <TestButton
              onClick={credentialTest.run}
              pending={credentialTest.pending}
              disabled={form.formState.isSubmitting}
            />
          )}
          <SubmitButton pendingLabel="Replacing…">Replace value</SubmitButton>
        </div>
      </form>
    </FormProvider>
  );
}
