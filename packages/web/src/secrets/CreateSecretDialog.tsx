import { useMutation } from '@tanstack/react-query';
import { type RefObject, useEffect, useId, useMemo, useRef } from 'react';
import { FormProvider, useForm, useFormContext } from 'react-hook-form';
import { type Integration, type SecretMeta, useIntegrations } from '../api/hooks';
import { errorMessage, fieldIssues, queryClient, trpc } from '../api/trpc';
import { schemaFields, submittedValues } from '../schema-form/jsonSchema';
import { applyFieldIssues, SchemaFields } from '../schema-form/SchemaFields';
import { Dialog } from '../ui/Dialog';
import { ErrorAlert, Spinner, useToast } from '../ui/Feedback';
import { SubmitButton } from '../ui/SubmitButton';
import { Field, TextField } from '../ui/TextField';
import { TestButton, TestResult, useCredentialFormTest } from './CredentialTest';

/**
 * `static`: a pasted key (Secrets & API Keys). `oauth2`: a connection (Integrations): the form holds the client
 * settings, and the service gives the tokens — through its consent screen, or for the client-credentials grant
 * straight away.
 */
type Kind = 'static' | 'oauth2';

interface CreateSecretDialogProps {
  workspaceId: string;
  open: boolean;
  onClose: () => void;
  kind?: Kind;
  /** From the node editor: only this node type's integration is offered. */
  nodeType?: string;
  /** From an integration's section: only this integration is offered. */
  integrationId?: string;
  onCreated?: (secret: SecretMeta) => void;
}

export function CreateSecretDialog({ open, onClose, kind = 'static', ...form }: CreateSecretDialogProps) {
  const unsaved = useRef<(() => boolean) | null>(null);
  return (
    <Dialog
      open={open}
      onClose={onClose}
      hasUnsavedInput={() => unsaved.current?.() ?? false}
      title={kind === 'oauth2' ? 'New connection' : 'New secret'}
      size="large"
      description={
        kind === 'oauth2'
          ? 'Fill in your OAuth2 client’s settings and give the connection a name, then connect: the service asks you to approve access and sends you back here. Its tokens are stored encrypted, refreshed on their own, and never shown.'
          : 'Pick the service, fill in its credential, and give it a name. After saving, the value can be used by workflow nodes but is never shown again.'
      }
    >
      <CreateSecretForm kind={kind} onDone={onClose} unsaved={unsaved} {...form} />
    </Dialog>
  );
}

interface Values {
  integrationId: string;
  credentialType: string;
  name: string;
  data: Record<string, string>;
}

function CreateSecretForm({
  workspaceId,
  kind,
  nodeType,
  integrationId: onlyIntegration,
  onDone,
  onCreated,
  unsaved,
}: Omit<CreateSecretDialogProps, 'open' | 'onClose'> & {
  kind: Kind;
  onDone: () => void;
  /** Set to "does the form hold something typed?" (the dialog then asks before Escape discards it). */
  unsaved: RefObject<(() => boolean) | null>;
}) {
  const integrations = useIntegrations();
  // Secrets & API Keys saves pasted keys; Integrations connects OAuth2 types through their service.
  const offered = useMemo(
    () =>
      (integrations.data ?? [])
        .filter((integration) => !nodeType || integration.nodeType === nodeType)
        .filter((integration) => !onlyIntegration || integration.id === onlyIntegration)
        .map((integration) => ({
          ...integration,
          credentialTypes: integration.credentialTypes.filter((type) => type.kind === kind),
        }))
        .filter((integration) => integration.credentialTypes.length > 0),
    [integrations.data, nodeType, onlyIntegration, kind],
  );
  const form = useForm<Values>({
    defaultValues: { integrationId: '', credentialType: '', name: '', data: {} },
    // Fields of a credential type that is no longer selected leave the form state with their values.
    shouldUnregister: true,
  });
  unsaved.current = () => {
    const { name, data } = form.getValues();
    return Boolean(name?.trim()) || Object.values(data ?? {}).some((value) => Boolean(value?.trim()));
  };
  const create = useMutation(trpc.secrets.create.mutationOptions());
  const connect = useMutation(trpc.secrets.connect.mutationOptions());
  const toast = useToast();

  const integrationId = form.watch('integrationId');
  const credentialTypeName = form.watch('credentialType');
  const integration = offered.find((candidate) => candidate.id === integrationId);
  const credentialType = integration?.credentialTypes.find(
    (candidate) => candidate.type === credentialTypeName,
  );
  const fields = useMemo(() => schemaFields(credentialType?.jsonSchema), [credentialType]);

  useEffect(() => {
    if (!integrationId && offered.length === 1 && offered[0]) form.setValue('integrationId', offered[0].id);
  }, [offered, integrationId, form]);

  useEffect(() => {
    // One credential type: nothing to choose. Several: the user picks (no silent default for a security choice).
    const only = integration?.credentialTypes.length === 1 ? integration.credentialTypes[0] : undefined;
    form.setValue('credentialType', only?.type ?? '');
  }, [integration, form]);

  // The mutations' variables hold the secret value: drop them when the form goes away.
  useEffect(
    () => () => {
      create.reset();
      connect.reset();
      unsaved.current = null;
    },
    [create.reset, connect.reset, unsaved],
  );

  const credentialTest = useCredentialFormTest({
    form,
    fields,
    workspaceId,
    credentialType: credentialType?.testable ? credentialType.type : null,
  });

  // A consent screen comes first for the authorization-code grant; everything else is saved at once (the
  // client-credentials grant gets its first token from the service while saving).
  const consent = credentialType?.grant === 'authorizationCode';
  const submission = consent ? connect : create;

  const onSubmit = form.handleSubmit(async (values) => {
    if (!credentialType) return;
    const input = {
      workspaceId,
      credentialType: credentialType.type,
      name: values.name.trim(),
      data: submittedValues(fields, values.data),
    };
    try {
      if (consent) {
        const { authorizationUrl } = await connect.mutateAsync(input);
        connect.reset();
        // The service sends the browser back to /oauth/callback, which lands on the Integrations page.
        window.location.assign(authorizationUrl);
        return;
      }
      const secret = await create.mutateAsync(input);
      form.reset({ integrationId: '', credentialType: '', name: '', data: {} });
      create.reset();
      await Promise.all([
        queryClient.invalidateQueries({ queryKey: trpc.secrets.list.pathKey() }),
        queryClient.invalidateQueries({ queryKey: trpc.secrets.selectable.pathKey() }),
      ]);
      toast(
        kind === 'oauth2'
          ? `“${secret.name}” connected${secret.connection?.account ? ` as ${secret.connection.account}` : ''}.`
          : `Secret “${secret.name}” saved. Its value will not be shown again.`,
      );
      onCreated?.(secret);
      onDone();
    } catch (error) {
      const known = new Set(['name', ...fields.map((field) => `data.${field.name}`)]);
      applyFieldIssues(fieldIssues(error), known, form.setError);
    }
  });

  if (integrations.isPending) return <Spinner label="Loading integrations" />;
  if (integrations.isError) return <ErrorAlert>{errorMessage(integrations.error)}</ErrorAlert>;

  const issues = submission.error ? fieldIssues(submission.error) : [];
  const knownPaths = new Set(['name', ...fields.map((field) => `data.${field.name}`)]);
  const bannerIssues = issues.filter((issue) => !knownPaths.has(issue.path.join('.')));

  return (
    <FormProvider {...form}>
      <form
        className="stack"
        onSubmit={onSubmit}
        noValidate
        aria-label={kind === 'oauth2' ? 'New connection' : 'New secret'}
      >
        {submission.error && issues.length === 0 && <ErrorAlert>{errorMessage(submission.error)}</ErrorAlert>}
        {bannerIssues.length > 0 && (
          <ErrorAlert>
            {bannerIssues.map((issue) => (
              <span key={`${issue.path.join('.')}:${issue.message}`}>{issue.message} </span>
            ))}
          </ErrorAlert>
        )}
        {issues.length > 0 && bannerIssues.length === 0 && (
          <ErrorAlert>Check the highlighted fields.</ErrorAlert>
        )}
        <p className="form-legend">
          Fields marked <span aria-hidden="true">*</span>
          <span className="visually-hidden">with an asterisk</span> are required.
        </p>

        <Field
          name="integrationId"
          label="Integration"
          required
          help={
            integration
              ? `${integration.description} Only ${integration.displayName} nodes can use this ${kind === 'oauth2' ? 'connection' : 'secret'}.`
              : `A ${kind === 'oauth2' ? 'connection' : 'secret'} is usable only by nodes of the integration it is created for.`
          }
        >
          {(control) => (
            <select
              {...control}
              className="input"
              {...form.register('integrationId', { required: 'Choose the integration this secret is for.' })}
            >
              {offered.length !== 1 && <option value="">Choose an integration…</option>}
              {offered.map((candidate) => (
                <option key={candidate.id} value={candidate.id}>
                  {candidate.displayName}
                </option>
              ))}
            </select>
          )}
        </Field>

        {integration && integration.credentialTypes.length > 1 && (
          <CredentialTypeChoice integration={integration} />
        )}

        {credentialType && (
          <>
            {/* With several types, the chosen one's card above says it already. */}
            {integration?.credentialTypes.length === 1 && credentialType.description && (
              <p className="muted">{credentialType.description}</p>
            )}
            <TextField
              name="name"
              label="Name"
              required
              autoComplete="off"
              placeholder={`${integration?.displayName ?? ''} – production`}
              help={`How people will recognise this ${kind === 'oauth2' ? 'connection' : 'secret'} when they pick it in a workflow node.`}
              rules={{
                validate: (value: unknown) =>
                  (typeof value === 'string' && value.trim() !== '') || 'Name is required.',
                maxLength: { value: 120, message: 'Name must be at most 120 characters long.' },
              }}
            />
            <fieldset className="fieldset" key={credentialType.type}>
              <legend className="fieldset-legend">{credentialType.displayName}</legend>
              <SchemaFields fields={fields} prefix="data" />
            </fieldset>
          </>
        )}

        {credentialType?.testable && (
          <TestResult outcome={credentialTest.outcome} pending={credentialTest.pending} />
        )}
        <div className="form-actions">
          <button type="button" className="button" onClick={onDone}>
            Cancel
          </button>
          {credentialType?.testable && (
            <TestButton
              onClick={credentialTest.run}
              pending={credentialTest.pending}
              disabled={form.formState.isSubmitting}
            />
          )}
          <SubmitButton
            pendingLabel={consent ? `Going to ${integration?.displayName ?? 'the service'}…` : 'Saving…'}
            disabled={!credentialType}
          >
            {kind === 'static'
              ? 'Save secret'
              : consent
                ? `Connect to ${integration?.displayName}`
                : 'Connect'}
          </SubmitButton>
        </div>
      </form>
    </FormProvider>
  );
}

function CredentialTypeChoice({ integration }: { integration: Integration }) {
  const { register, getFieldState, formState } = useFormContextTyped();
  const { error } = getFieldState('credentialType', formState);
  const errorId = useId();
  return (
    <fieldset className="field radio-cards" aria-describedby={error ? errorId : undefined}>
      <legend className="field-label">
        Credential type
        <span className="required-mark" aria-hidden="true">
          {' '}
          *
        </span>
      </legend>
      {integration.credentialTypes.map((type) => (
        <label key={type.type} className="radio-card">
          <input
            type="radio"
            value={type.type}
            {...register('credentialType', { required: 'Choose a credential type.' })}
          />
          <span>
            <span className="radio-card-title">{type.displayName}</span>
            {type.description && <span className="radio-card-text">{type.description}</span>}
          </span>
        </label>
      ))}
      {error?.message && (
        <p id={errorId} className="field-error" role="alert">
          {error.message}
        </p>
      )}
    </fieldset>
  );
}

function useFormContextTyped() {
  return useFormContext<Values>();
}
