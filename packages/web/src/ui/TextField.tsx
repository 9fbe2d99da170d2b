import { type ReactNode, useId } from 'react';
import { type RegisterOptions, useFormContext } from 'react-hook-form';
import { CodeText } from './CodeText';

/** What ties a control to its label, help and error: spread onto the input, select or textarea. */
export interface FieldControl {
  id: string;
  'aria-required': true | undefined;
  'aria-invalid': true | undefined;
  'aria-describedby': string | undefined;
}

interface FieldProps {
  /** The form value the control edits, inside a react-hook-form <FormProvider>: its error is shown here. */
  name: string;
  label: string;
  help?: ReactNode;
  required?: boolean;
  /** Say "(optional)" after the label of a field that is not required (the schema-built forms do). */
  markOptional?: boolean;
  /** Shown after the label, e.g. the "Secret" badge. */
  badge?: ReactNode;
  /** Names the field for tests and styles: `data-field` on the wrapper. */
  dataField?: string;
  children: (control: FieldControl) => ReactNode;
}

/** A form control's label, help and error, wired for screen readers; the one field wrapper of the forms. */
export function Field({ name, label, help, required, markOptional, badge, dataField, children }: FieldProps) {
  const { getFieldState, formState } = useFormContext();
  const id = useId();
  const { error } = getFieldState(name, formState);
  const describedBy = [help ? `${id}-help` : null, error ? `${id}-error` : null].filter(Boolean).join(' ');
  return (
    <div className="field" data-field={dataField}>
      <label htmlFor={id} className="field-label">
        {label}
        {required ? (
          <span className="required-mark" aria-hidden="true">
            {' '}
            *
          </span>
        ) : (
          markOptional && <span className="optional-mark"> (optional)</span>
        )}
        {badge}
      </label>
      {children({
        id,
        'aria-required': required || undefined,
        'aria-invalid': error ? true : undefined,
        'aria-describedby': describedBy || undefined,
      })}
      {help && (
        <p id={`${id}-help`} className="field-help">
          {typeof help === 'string' ? <CodeText text={help} /> : help}
        </p>
      )}
      {error?.message && (
        <p id={`${id}-error`} className="field-error" role="alert">
          <CodeText text={error.message} />
        </p>
      )}
    </div>
  );
}

interface TextFieldProps {
  name: string;
  label: string;
  type?: 'text' | 'email' | 'password';
  autoComplete?: string;
  help?: ReactNode;
  required?: boolean;
  placeholder?: string;
  rules?: RegisterOptions;
  autoFocus?: boolean;
}

/** A labelled text input inside a react-hook-form <FormProvider>, with its help and error wired for screen readers. */
export function TextField({
  name,
  label,
  type = 'text',
  autoComplete,
  help,
  required,
  placeholder,
  rules,
  autoFocus,
}: TextFieldProps) {
  const { register } = useFormContext();
  return (
    <Field name={name} label={label} help={help} required={required}>
      {(control) => (
        <input
          {...control}
          className="input"
          type={type}
          autoComplete={autoComplete}
          placeholder={placeholder}
          // biome-ignore lint/a11y/noAutofocus: the first field of a page whose only purpose is this form
          autoFocus={autoFocus}
          {...register(name, { ...(required ? { required: `${label} is required.` } : {}), ...rules })}
        />
      )}
    </Field>
  );
}

interface SelectFieldProps {
  name: string;
  label: string;
  options: { value: string; label: string }[];
  help?: ReactNode;
  required?: boolean;
  rules?: RegisterOptions;
}

export function SelectField({ name, label, options, help, required, rules }: SelectFieldProps) {
  const { register } = useFormContext();
  return (
    <Field name={name} label={label} help={help} required={required}>
      {(control) => (
        <select
          {...control}
          className="input"
          {...register(name, {
            ...(required ? { required: `Choose a ${label.toLowerCase()}.` } : {}),
            ...rules,
          })}
        >
          {options.map((option) => (
            <option key={option.value} value={option.value}>
              {option.label}
            </option>
          ))}
        </select>
      )}
    </Field>
  );
}
