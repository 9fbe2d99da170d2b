import { useMutation, useQuery } from '@tanstack/react-query';
import { useEffect, useId, useMemo, useRef, useState } from 'react';
import { Controller, FormProvider, useForm } from 'react-hook-form';
import {
  findIntegrationByNodeType,
  type SecretMeta,
  useIntegrations,
  type Workflow,
  type WorkflowNode,
} from '../api/hooks';
import { errorMessage, fieldIssues, queryClient, type RouterOutputs, trpc } from '../api/trpc';
import { paths } from '../app/router';
import { initialValues, schemaFields, submittedValues } from '../schema-form/jsonSchema';
import { applyFieldIssues, SchemaFields } from '../schema-form/SchemaFields';
import { CreateSecretDialog } from '../secrets/CreateSecretDialog';
import { Dialog } from '../ui/Dialog';
import { ErrorAlert, Spinner, useToast } from '../ui/Feedback';
import { SubmitButton } from '../ui/SubmitButton';
import { Field, TextField } from '../ui/TextField';
import { CredentialCombobox } from './CredentialCombobox';

interface NodeDialogProps {
  workspaceId: string;
  workflow: Workflow;
  /** null: add a new node. */
  node: WorkflowNode | null;
  open: boolean;
  onClose: () => void;
}

export function NodeDialog({ workspaceId, workflow, node, open, onClose }: NodeDialogProps) {
  return (
    <Dialog open={open} onClose={onClose} title={node ? `Edit ${node.name}` : 'Add a node'} size="large">
      <NodeForm workspaceId={workspaceId} workflow={workflow} node={node} onClose={onClose} />
    </Dialog>
  );
}

interface Values {
  nodeType: string;
  name: string;
  params: Record<string, string>;
  secretId: string;
}

type Selectable = RouterOutputs['secrets']['selectable'];

/** More credentials than this for a node type, and the picker becomes a search box. */
const COMBOBOX_AFTER = 7;

function NodeForm({ workspaceId, workflow, node, onClose }: Omit<NodeDialogProps, 'open'>) {
  const integrations = useIntegrations();
  const toast = useToast();
  const form = useForm<Values>({
    defaultValues: {
      nodeType: node?.nodeType ?? '',
      name: node?.name ?? '',
      params: {},
      secretId: node?.secretId ?? '',
    },
    shouldUnregister: true,
  });
  // An existing node keeps its type (there is no input for it, so it is not a form value).
  const watchedNodeType = form.watch('nodeType');
  const nodeType = node?.nodeType ?? watchedNodeType;
  const integration = findIntegrationByNodeType(integrations.data, nodeType);
  const fields = useMemo(() => schemaFields(integration?.paramsSchema), [integration]);
  const addNode = useMutation(trpc.workflows.addNode.mutationOptions());
  const updateNode = useMutation(trpc.workflows.updateNode.mutationOptions());
  const [creatingSecret, setCreatingSecret] = useState(false);

  // The parameter fields change with the node type; an existing node starts with its saved values.
  // (Keyed on the node type only: a background refetch of the workflow must not wipe what is being typed.)
  const nodeRef = useRef(node);
  nodeRef.current = node;
  const integrationNodeType = integration?.nodeType;
  useEffect(() => {
    if (!integrationNodeType) return;
    const current = nodeRef.current;
    const known =
      current && current.nodeType === integrationNodeType ? (current.params as Record<string, unknown>) : {};
    form.setValue('params', initialValues(fields, known));
    if (!current || current.nodeType !== integrationNodeType) form.setValue('secretId', '');
  }, [integrationNodeType, fields, form]);

  const onSubmit = form.handleSubmit(async (values) => {
    if (!integration) return;
    const params = submittedValues(fields, values.params);
    try {
      if (node) {
        await updateNode.mutateAsync({
          workflowId: workflow.id,
          nodeId: node.id,
          name: values.name.trim(),
          params,
          secretId: values.secretId || null,
        });
      } else {
        // One call with the credential: the server refuses a URL the credential may not go to (params.url),
        // and then adds nothing.
        await addNode.mutateAsync({
          workflowId: workflow.id,
          name: values.name.trim(),
          nodeType: integration.nodeType,
          params,
          ...(values.secretId ? { secretId: values.secretId } : {}),
        });
      }
      await queryClient.invalidateQueries({ queryKey: trpc.workflows.pathKey() });
      toast(node ? `Node “${values.name.trim()}” saved.` : `Node “${values.name.trim()}” added.`);
      onClose();
    } catch (error) {
      const known = new Set(['name', 'secretId', ...fields.map((field) => `params.${field.name}`)]);
      applyFieldIssues(fieldIssues(error), known, form.setError);
    }
  });

  if (integrations.isPending) return <Spinner label="Loading node types" />;
  if (integrations.isError) return <ErrorAlert>{errorMessage(integrations.error)}</ErrorAlert>;
  const failure = addNode.error ?? updateNode.error;

  return (
    <FormProvider {...form}>
      <form
        className="stack"
        onSubmit={onSubmit}
        noValidate
        aria-label={node ? `Edit ${node.name}` : 'Add a node'}
      >
        {failure && fieldIssues(failure).length === 0 && <ErrorAlert>{errorMessage(failure)}</ErrorAlert>}
        {failure && fieldIssues(failure).length > 0 && <ErrorAlert>Check the highlighted fields.</ErrorAlert>}
        {node ? (
          <p className="muted">
            Node type: <strong>{integration?.displayName ?? node.nodeType}</strong>{' '}
            <code>{node.nodeType}</code>
          </p>
        ) : (
          <Field
            name="nodeType"
            label="Node type"
            required
            help={integration?.description ?? 'What the node does when the workflow runs.'}
          >
            {(control) => (
              <select
                {...control}
                className="input"
                {...form.register('nodeType', { required: 'Choose a node type.' })}
              >
                <option value="">Choose a node type…</option>
                {integrations.data.map((candidate) => (
                  <option key={candidate.nodeType} value={candidate.nodeType}>
                    {candidate.displayName}
                  </option>
                ))}
              </select>
            )}
          </Field>
        )}

        {integration && (
          <>
            <TextField
              name="name"
              label="Node name"
              required
              autoComplete="off"
              placeholder={`${integration.displayName} step`}
              help="Shown in the workflow and in error messages when a run fails."
              rules={{
                validate: (value: unknown) =>
                  (typeof value === 'string' && value.trim() !== '') || 'Node name is required.',
              }}
            />
            <fieldset className="fieldset" key={integration.nodeType}>
              <legend className="fieldset-legend">Parameters</legend>
              <SchemaFields fields={fields} prefix="params" />
            </fieldset>
            <CredentialPicker
              workspaceId={workspaceId}
              nodeType={integration.nodeType}
              displayName={integration.displayName}
              lostSecretName={node?.status === 'needs-credential' ? (node.lostSecretName ?? null) : null}
              focusWhenReady={node?.status === 'needs-credential'}
              onCreateNew={() => setCreatingSecret(true)}
            />
          </>
        )}

        <div className="form-actions">
          <button type="button" className="button" onClick={onClose}>
            Cancel
          </button>
          <SubmitButton pendingLabel="Saving…" disabled={!integration}>
            {node ? 'Save node' : 'Add node'}
          </SubmitButton>
        </div>
      </form>
      {integration && (
        <CreateSecretDialog
          workspaceId={workspaceId}
          nodeType={integration.nodeType}
          open={creatingSecret}
          onClose={() => setCreatingSecret(false)}
          onCreated={(secret: SecretMeta) => {
            const key = trpc.secrets.selectable.queryKey({ workspaceId, nodeType: integration.nodeType });
            // Show the new secret in the picker at once, before the list is fetched again.
            queryClient.setQueryData(key, (current: Selectable | undefined) =>
              current?.some((item) => item.id === secret.id)
                ? current
                : [
                    ...(current ?? []),
                    {
                      id: secret.id,
                      name: secret.name,
                      credentialType: secret.credentialType,
                      allowedHosts: null,
                      kind: secret.kind,
                      createdBy: secret.createdBy.name,
                    },
                  ],
            );
            // Fetched again for what the picker shows next to it (the hosts the new credential may go to).
            void queryClient.invalidateQueries({ queryKey: key });
            form.setValue('secretId', secret.id, { shouldDirty: true, shouldValidate: true });
          }}
        />
      )}
    </FormProvider>
  );
}

function CredentialPicker({
  workspaceId,
  nodeType,
  displayName,
  lostSecretName,
  focusWhenReady,
  onCreateNew,
}: {
  workspaceId: string;
  nodeType: string;
  displayName: string;
  lostSecretName: string | null;
  /** A node that needs a credential opens on the picker ("Choose credential"), once its options are in. */
  focusWhenReady: boolean;
  onCreateNew: () => void;
}) {
  const selectable = useQuery(trpc.secrets.selectable.queryOptions({ workspaceId, nodeType }));
  const control = useRef<HTMLSelectElement | HTMLInputElement | null>(null);
  const loaded = selectable.isSuccess;
  useEffect(() => {
    if (!focusWhenReady || !loaded) return;
    // After the dialog's own first focus (its effect runs after this one, as the parent's).
    const timer = window.setTimeout(() => {
      control.current?.scrollIntoView({ block: 'center' });
      control.current?.focus();
    }, 0);
    return () => window.clearTimeout(timer);
  }, [focusWhenReady, loaded]);
  const integrations = useIntegrations();
  const integration = findIntegrationByNodeType(integrations.data, nodeType);
  const id = useId();
  const helpId = `${id}-help`;
  const typeName = (type: string) =>
    integration?.credentialTypes.find((candidate) => candidate.type === type)?.displayName ?? type;
  // Both kinds, grouped: pasted keys, then connections (whose status shows when they cannot be used).
  const groups = [
    { label: 'Secrets & API keys', secrets: selectable.data?.filter((secret) => secret.kind === 'static') },
    { label: 'Connections', secrets: selectable.data?.filter((secret) => secret.kind === 'oauth2') },
  ].flatMap((group) => (group.secrets?.length ? [{ label: group.label, secrets: group.secrets }] : []));
  const status = (secret: Selectable[number]) =>
    secret.connectionStatus === 'needs-reconnect'
      ? ' (needs reconnect)'
      : secret.connectionStatus === 'pending'
        ? ' (not connected)'
        : '';
  const option = (secret: Selectable[number]) => (
    <option key={secret.id} value={secret.id}>
      {secret.name} — {typeName(secret.credentialType)}
      {status(secret)}
    </option>
  );
  // A long list is searched rather than scrolled: by name, type, kind or creator.
  const searchable = (selectable.data?.length ?? 0) > COMBOBOX_AFTER;
  const comboboxOptions = groups.flatMap((group) =>
    group.secrets.map((secret) => ({
      id: secret.id,
      name: secret.name,
      detail: `${typeName(secret.credentialType)}${status(secret)} · ${group.label} · added by ${secret.createdBy}`,
    })),
  );
  const connects = integration?.credentialTypes.some((type) => type.kind === 'oauth2') ?? false;
  return (
    <Controller
      name="secretId"
      render={({ field, fieldState }) => (
        <div className="field">
          <label htmlFor={id} id={`${id}-label`} className="field-label">
            Credential
          </label>
          {lostSecretName && !field.value && (
            <p className="needs-credential">
              <span className="badge badge-warning">Needs a credential</span> The secret “{lostSecretName}”
              this node used was deleted.
            </p>
          )}
          <div className="picker-row">
            {searchable ? (
              <CredentialCombobox
                id={id}
                labelId={`${id}-label`}
                describedBy={`${helpId}${fieldState.error ? ` ${id}-error` : ''}`}
                invalid={Boolean(fieldState.error)}
                options={comboboxOptions}
                value={field.value ?? ''}
                onChange={field.onChange}
                onBlur={field.onBlur}
                inputRef={(element: HTMLInputElement | null) => {
                  field.ref(element);
                  control.current = element;
                }}
              />
            ) : (
              <select
                id={id}
                className="input"
                aria-describedby={`${helpId}${fieldState.error ? ` ${id}-error` : ''}`}
                aria-invalid={fieldState.error ? true : undefined}
                value={field.value ?? ''}
                onChange={(event) => field.onChange(event.target.value)}
                onBlur={field.onBlur}
                ref={(element) => {
                  field.ref(element);
                  control.current = element;
                }}
                disabled={selectable.isPending}
              >
                <option value="">{selectable.isPending ? 'Loading…' : 'No credential'}</option>
                {groups.length === 1
                  ? groups[0]?.secrets.map(option)
                  : groups.map((group) => (
                      <optgroup key={group.label} label={group.label}>
                        {group.secrets.map(option)}
                      </optgroup>
                    ))}
              </select>
            )}
            <button type="button" className="button" onClick={onCreateNew}>
              Create new…
            </button>
          </div>
          <p id={helpId} className="field-help">
            Only {displayName} credentials can be used by this node.
            {selectable.data?.length === 0 ? ' There are none in this workspace yet: create one.' : ''}
            {connects && (
              <>
                {' '}
                OAuth2 connections are made under{' '}
                {/* A new tab keeps this node's unsaved changes; the list is fetched again on return. */}
                <a href={paths.section(workspaceId, 'integrations')} target="_blank" rel="noopener">
                  Integrations
                </a>{' '}
                (opens in a new tab).
              </>
            )}
          </p>
          {fieldState.error?.message && (
            <p id={`${id}-error`} className="field-error" role="alert">
              {fieldState.error.message}
            </p>
          )}
          <AllowedHosts secret={selectable.data?.find((secret) => secret.id === field.value)} />
          {selectable.isError && <ErrorAlert>{errorMessage(selectable.error)}</ErrorAlert>}
        </div>
      )}
    />
  );
}

/**
 * Where the chosen credential may be sent, next to the picker, so a URL elsewhere is no surprise: the server
 * refuses to save such a node (on the URL field) and a run would refuse to send it.
 */
function AllowedHosts({ secret }: { secret: Selectable[number] | undefined }) {
  if (!secret || secret.allowedHosts === null) return null;
  if (secret.allowedHosts.length === 0)
    return (
      <p className="field-help" data-allowed-hosts="">
        <span className="badge badge-warning">Needs allowed domains</span> “{secret.name}” is sent nowhere
        until its creator, an owner or an admin adds the hosts it may go to.
      </p>
    );
  return (
    <p className="field-help" data-allowed-hosts="">
      “{secret.name}” may only be sent to {secret.allowedHosts.join(', ')} (and their subdomains).
    </p>
  );
}
