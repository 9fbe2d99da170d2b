import { useState } from 'react';
import { type FieldValues, type UseFormSetError, useFormContext } from 'react-hook-form';
import type { FieldIssue } from '../api/trpc';
import { Field, type FieldControl } from '../ui/TextField';
import { type SchemaField, validateValue } from './jsonSchema';

interface SchemaFieldsProps {
  fields: SchemaField[];
  /** Where the values live in the form, e.g. `data` (credential forms) or `params` (node parameters). */
  prefix: string;
}

/**
 * Renders a JSON-Schema-described object as labelled inputs inside a react-hook-form <FormProvider>:
 * the single form renderer for every credential type and every node type's parameters.
 */
export function SchemaFields({ fields, prefix }: SchemaFieldsProps) {
  if (fields.length === 0) return <p className="muted">This form has no fields.</p>;
  return (
    <>
      {fields.map((field) => (
        <SchemaFieldInput key={field.name} field={field} name={`${prefix}.${field.name}`} />
      ))}
    </>
  );
}

function SchemaFieldInput({ field, name }: { field: SchemaField; name: string }) {
  const help = [field.help, field.formatHint].filter(Boolean).join(' ');
  return (
    <Field
      name={name}
      label={field.label}
      help={help || undefined}
      required={field.required}
      markOptional
      badge={field.secret && <span className="badge badge-secret">Secret</span>}
      dataField={field.name}
    >
      {(control) => <SchemaControl field={field} name={name} control={control} />}
    </Field>
  );
}

function SchemaControl({
  field,
  name,
  control,
}: {
  field: SchemaField;
  name: string;
  control: FieldControl;
}) {
  const { register } = useFormContext();
  const registration = register(name, {
    validate: (value: unknown) => validateValue(field, typeof value === 'string' ? value : '') ?? true,
  });
  const common = { ...control, placeholder: field.placeholder, ...registration } as const;

  if (field.options) {
    const { placeholder: _unused, ...selectProps } = common;
    return (
      <select className="input" {...selectProps}>
        {!field.required || !field.defaultValue ? (
          <option value="">{field.required ? 'Choose…' : '(none)'}</option>
        ) : null}
        {field.options.map((option) => (
          <option key={option} value={option}>
            {field.optionLabels?.[option] ?? option}
          </option>
        ))}
      </select>
    );
  }
  if (field.secret) return <SecretInput field={field} common={common} />;
  if (field.multiline) return <textarea className="input" rows={4} spellCheck={false} {...common} />;
  return <input className="input" type="text" autoComplete="off" spellCheck={false} {...common} />;
}

type CommonProps = {
  id: string;
  placeholder: string | undefined;
} & Record<string, unknown>;

/**
 * A masked input with a show/hide toggle for checking what was typed. The toggle is the only way the
 * value is ever visible, and only until the form is saved: the server never sends it back.
 */
function SecretInput({ field, common }: { field: SchemaField; common: CommonProps }) {
  const [visible, setVisible] = useState(false);
  const input = field.multiline ? (
    <textarea
      className={`input${visible ? '' : ' masked'}`}
      rows={4}
      spellCheck={false}
      autoComplete="off"
      data-secret="true"
      {...common}
    />
  ) : (
    <input
      className="input"
      type={visible ? 'text' : 'password'}
      autoComplete="new-password"
      spellCheck={false}
      data-secret="true"
      {...common}
    />
  );
  return (
    <div className="secret-input">
      {input}
      <button
        type="button"
        className="button button-ghost button-small secret-toggle"
        aria-pressed={visible}
        aria-controls={common.id}
        onClick={() => setVisible((current) => !current)}
      >
        {visible ? 'Hide' : 'Show'}
        <span className="visually-hidden"> {field.label}</span>
      </button>
    </div>
  );
}

/**
 * Puts a BAD_REQUEST's field issues next to their fields. Issues whose field is not on the form are
 * returned, for a banner.
 */
export function applyFieldIssues<T extends FieldValues>(
  issues: FieldIssue[],
  knownFields: Set<string>,
  setError: UseFormSetError<T>,
): FieldIssue[] {
  const unplaced: FieldIssue[] = [];
  let focused = false;
  for (const issue of issues) {
    const path = issue.path.join('.');
    if (knownFields.has(path)) {
      setError(
        path as Parameters<UseFormSetError<T>>[0],
        { type: 'server', message: issue.message },
        {
          shouldFocus: !focused,
        },
      );
      focused = true;
    } else {
      unplaced.push(issue);
    }
  }
  return unplaced;
}
