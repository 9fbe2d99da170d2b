import { useMutation } from '@tanstack/react-query';
import { useEffect, useId, useRef, useState } from 'react';
import { errorMessage, fieldIssues, queryClient, type RouterOutputs, trpc } from '../api/trpc';
import { DataTable } from '../ui/DataTable';
import { Dialog } from '../ui/Dialog';
import { ErrorAlert, Notice, useToast } from '../ui/Feedback';

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

function ImportForm({ workspaceId, onClose }: { workspaceId: string; onClose: () => void }) {
  const ids = { file: useId(), key: useId() };
  const [credentials, setCredentials] = useState<unknown[] | null>(null);
  const [fileError, setFileError] = useState<string | null>(null);
  const key = useRef<HTMLInputElement>(null);
  const [preview, setPreview] = useState<Report | null>(null);
  const [done, setDone] = useState<Report | null>(null);
  const run = useMutation(trpc.secrets.importN8n.mutationOptions());
  const toast = useToast();
  // The mutation's variables hold the export and the key: drop them when the dialog goes away.
  useEffect(() => () => run.reset(), [run.reset]);

  async function readFile(file: File | undefined) {
    setCredentials(null);
    setPreview(null);
    setFileError(null);
    run.reset();
    if (!file) return;
    if (file.size > MAX_FILE_BYTES) {
      setFileError(
        `The file is ${Math.ceil(file.size / 1024)} KB; up to ${MAX_FILE_BYTES / 1024} KB can be imported here. Import a larger export with pnpm latchkey import n8n.`,
      );
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(await file.text());
    } catch {
      setFileError('The file is not JSON: choose the file n8n export:credentials wrote.');
      return;
    }
    if (!Array.isArray(parsed)) {
      setFileError('The file is not an n8n credentials export (a JSON list of credentials).');
      return;
    }
    setCredentials(parsed);
  }

  async function send(dryRun: boolean): Promise<Report | null> {
    if (!credentials) return null;
    const n8nKey = key.current?.value.trim();
    try {
      const report = await run.mutateAsync({
        workspaceId,
        credentials,
        dryRun,
        ...(n8nKey ? { n8nKey } : {}),
      });
      run.reset();
      return report;
    } catch {
      return null;
    }
  }

  async function previewImport() {
    setPreview(await send(true));
  }

  async function confirmImport() {
    const report = await send(false);
    if (!report) return;
    if (key.current) key.current.value = '';
    await Promise.all([
      queryClient.invalidateQueries({ queryKey: trpc.secrets.list.pathKey() }),
      queryClient.invalidateQueries({ queryKey: trpc.secrets.selectable.pathKey() }),
    ]);
    const imported = report.rows.filter((row) => row.outcome === 'imported').length;
    toast(`Imported ${imported} ${imported === 1 ? 'credential' : 'credentials'} from n8n.`);
    setDone(report);
  }

  const issues = run.error ? fieldIssues(run.error) : [];
  const keyIssue = issues.find((issue) => issue.path.join('.') === 'n8nKey')?.message;
  const fileIssue = issues.find((issue) => issue.path[0] === 'credentials')?.message;
  const otherError = run.error && issues.length === 0 ? errorMessage(run.error) : null;
  const report = done ?? preview;
  const importable = preview?.rows.filter((row) => row.outcome === 'would-import').length ?? 0;

  return (
    <div className="stack">
      {!done && (
        <>
          <div className="field" data-field="file">
            <label htmlFor={ids.file} className="field-label">
              Export file
            </label>
            <input
              id={ids.file}
              className="input"
              type="file"
              accept=".json,application/json"
              aria-invalid={fileError || fileIssue ? true : undefined}
              aria-describedby={fileError || fileIssue ? `${ids.file}-error` : undefined}
              onChange={(event) => readFile(event.target.files?.[0])}
            />
            {(fileError || fileIssue) && (
              <p id={`${ids.file}-error`} className="field-error" role="alert">
                {fileError ?? fileIssue}
              </p>
            )}
          </div>
          <div className="field" data-field="n8nKey">
            <label htmlFor={ids.key} className="field-label">
              n8n encryption key <span className="optional-mark">(optional)</span>
            </label>
            <input
              id={ids.key}
              ref={key}
              className="input input-mono"
              type="password"
              autoComplete="off"
              spellCheck={false}
              aria-invalid={keyIssue ? true : undefined}
              aria-describedby={`${ids.key}-help${keyIssue ? ` ${ids.key}-error` : ''}`}
              onChange={() => setPreview(null)}
            />
            <p id={`${ids.key}-help`} className="field-help">
              Only for an export made without --decrypted: the N8N_ENCRYPTION_KEY of that n8n instance (or
              encryptionKey in ~/.n8n/config). Used for this import only, never stored.
            </p>
            {keyIssue && (
              <p id={`${ids.key}-error`} className="field-error" role="alert">
                {keyIssue}
              </p>
            )}
          </div>
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
              {run.isPending
                ? 'Importing…'
                : `Import ${importable} ${importable === 1 ? 'credential' : 'credentials'}`}
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
