import { plural } from '@latchkey/core/words';
import { useMutation } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { FormProvider, useForm } from 'react-hook-form';
import { errorMessage, fieldIssues, queryClient, type RouterOutputs, trpc } from '../api/trpc';
import { applyFieldIssues } from '../schema-form/SchemaFields';
import { DataTable } from '../ui/DataTable';
import { Dialog } from '../ui/Dialog';
import { ErrorAlert, Notice, useToast } from '../ui/Feedback';
import { Field } from '../ui/TextField';

type Report = RouterOutputs['secrets']['importN8n'];

/** The server takes requests up to 1 MiB; a larger export goes through the CLI (`pnpm latchkey import n8n`). */
const MAX_FILE_BYTES = 900 * 1024;

/**
 * Secrets → "Import from n8n": the export file is read here in the browser and sent as JSON (`secrets.importN8n`),
 * first as a dry run whose table says what would happen, then for real once confirmed. The n8n encryption key,
 * needed only for an export made without `--decrypted`, goes with those two requests and is kept nowhere else.
 */
export function ImportN8nDialog({
  workspaceId,
  open,
  onClose,
}: {
  workspaceId: string;
  open: boolean;
  onClose: () => void;
}) {
  return (
    <Dialog
      open={open}
      onClose={onClose}
      title="Import from n8n"
      size="large"
      description={
        <p>
          Choose a credentials export made with <code>n8n export:credentials --all</code> (with or without{' '}
          <code>--decrypted</code>). You see what will be imported before anything is saved; each value is
          encrypted on arrival and never shown again.
        </p>
      }
    >
      <ImportForm workspaceId={workspaceId} onClose={onClose} />
    </Dialog>
  );
}

interface ImportValues {
  /** The export file's field: local read problems and the server's issues on `credentials` show here. */
  credentials: string;
  n8nKey: string;
}

const KNOWN_FIELDS = new Set(['credentials', 'n8nKey']);

function ImportForm({ workspaceId, onClose }: { workspaceId: string; onClose: () => void }) {
  const form = useForm<ImportValues>({ defaultValues: { credentials: '', n8nKey: '' } });
  const [credentials, setCredentials] = useState<unknown[] | null>(null);
  const [preview, setPreview] = useState<Report | null>(null);
  const [done, setDone] = useState<Report | null>(null);
  const [otherError, setOtherError] = useState<string | null>(null);
  const run = useMutation(trpc.secrets.importN8n.mutationOptions());
  const toast = useToast();
  // The mutation's variables hold the export and the key: drop them when the dialog goes away.
  useEffect(() => () => run.reset(), [run.reset]);

  const fileProblem = (message: string) => form.setError('credentials', { type: 'file', message });

  async function readFile(file: File | undefined) {
    setCredentials(null);
    setPreview(null);
    form.clearErrors();
    if (!file) return;
    if (file.size > MAX_FILE_BYTES) {
      fileProblem(
        `The file is ${Math.ceil(file.size / 1024)} KB; up to ${MAX_FILE_BYTES / 1024} KB can be imported here. Import a larger export with pnpm latchkey import n8n.`,
      );
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(await file.text());
    } catch {
      fileProblem('The file is not JSON: choose the file n8n export:credentials wrote.');
      return;
    }
    if (!Array.isArray(parsed)) {
      fileProblem('The file is not an n8n credentials export (a JSON list of credentials).');
      return;
    }
    setCredentials(parsed);
  }

  async function send(dryRun: boolean): Promise<Report | null> {
    if (!credentials) return null;
    form.clearErrors();
    setOtherError(null);
    const n8nKey = form.getValues('n8nKey').trim();
    try {
      return await run.mutateAsync({ workspaceId, credentials, dryRun, ...(n8nKey ? { n8nKey } : {}) });
    } catch (error) {
      const issues = fieldIssues(error);
      const unplaced = applyFieldIssues(issues, KNOWN_FIELDS, form.setError);
      if (issues.length === 0 || unplaced.length > 0) setOtherError(errorMessage(error));
      return null;
    } finally {
      run.reset();
    }
  }

  async function previewImport() {
    setPreview(await send(true));
  }

  async function confirmImport() {
    const report = await send(false);
    if (!report) return;
    form.setValue('n8nKey', '');
    await Promise.all([
      queryClient.invalidateQueries({ queryKey: trpc.secrets.list.pathKey() }),
      queryClient.invalidateQueries({ queryKey: trpc.secrets.selectable.pathKey() }),
    ]);
    const imported = report.rows.filter((row) => row.outcome === 'imported').length;
    toast(`Imported ${plural(imported, 'credential')} from n8n.`);
    setDone(report);
  }

  const report = done ?? preview;
  const importable = preview?.rows.filter((row) => row.outcome === 'would-import').length ?? 0;

  return (
    <FormProvider {...form}>
      <div className="stack">
        {!done && (
          <>
            <Field name="credentials" label="Export file" dataField="file">
              {(control) => (
                <input
                  {...control}
                  className="input"
                  type="file"
                  accept=".json,application/json"
                  onChange={(event) => readFile(event.target.files?.[0])}
                />
              )}
            </Field>
            <Field
              name="n8nKey"
              label="n8n encryption key"
              markOptional
              dataField="n8nKey"
              help="Only for an export made without --decrypted: the N8N_ENCRYPTION_KEY of that n8n instance (or encryptionKey in ~/.n8n/config). Used for this import only, never stored."
            >
              {(control) => (
                <input
                  {...control}
                  className="input input-mono"
                  type="password"
                  autoComplete="off"
                  spellCheck={false}
                  {...form.register('n8nKey', { onChange: () => setPreview(null) })}
                />
              )}
            </Field>
          </>
        )}
        {otherError && <ErrorAlert>{otherError}</ErrorAlert>}

        {report && <ImportTable report={report} />}
        {done && (
          <Notice tone={done.complete ? 'ok' : 'warning'} role="status">
            {done.complete
              ? 'Everything that could be imported is in this workspace.'
              : 'Some credentials were not imported: the table says why. Fix them in n8n and import the file again; what was imported is not imported twice.'}
          </Notice>
        )}

        <div className="form-actions">
          <button type="button" className="button" onClick={onClose}>
            {done ? 'Close' : 'Cancel'}
          </button>
          {!done &&
            (preview ? (
              <button
                type="button"
                className="button button-primary"
                onClick={confirmImport}
                disabled={run.isPending || importable === 0}
              >
                {run.isPending ? 'Importing…' : `Import ${plural(importable, 'credential')}`}
              </button>
            ) : (
              <button
                type="button"
                className="button button-primary"
                onClick={previewImport}
                disabled={run.isPending || !credentials}
              >
                {run.isPending ? 'Reading…' : 'Preview'}
              </button>
            ))}
        </div>
      </div>
    </FormProvider>
  );
}

const OUTCOME: Record<Report['rows'][number]['outcome'], string> = {
  imported: 'Imported',
  'would-import': 'Will be imported',
  'already-imported': 'Already imported',
  skipped: 'Skipped',
};

function ImportTable({ report }: { report: Report }) {
  return (
    <DataTable
      caption={report.dryRun ? 'What the import will do' : 'What was imported'}
      columns={['n8n credential', 'Result', 'Details']}
    >
      {report.rows.map((row) => (
        <tr key={row.sourceId} data-import-outcome={row.outcome}>
          <th scope="row" className="cell-name">
            <span className="secret-name">{row.name}</span>
            <span className="cell-sub">
              {row.n8nType}
              {row.credentialType ? ` → ${row.credentialType}` : ''}
            </span>
          </th>
          <td>
            <span
              className={`badge ${row.outcome === 'skipped' ? 'badge-warning' : row.outcome === 'already-imported' ? '' : 'badge-ok'}`}
            >
              {OUTCOME[row.outcome]}
            </span>
          </td>
          <td>
            {row.needsAllowedDomains && <span className="badge badge-warning">Needs allowed domains</span>}{' '}
            {row.reason ?? ''}
          </td>
        </tr>
      ))}
    </DataTable>
  );
}
