import { z } from 'zod';
import { runValueCheck, type ValueCheckName } from './value-checks.js';

/**
 * UI and policy metadata carried by every credential and parameter field.
 * It travels inside the JSON Schema (zod keeps `.meta()` keys on properties),
 * so the settings UI and clients in any language build forms from it.
 */
export interface FieldMeta {
  label: string;
  help?: string;
  placeholder?: string;
  /** Secret fields are encrypted at rest and never returned by any API. */
  secret: boolean;
  /**
   * The format in a sentence, shown as the field's help: "Starts with `SG.`." (backticks mark literal text and keep
   * its case). Not `format`: that is a JSON Schema keyword.
   */
  formatHint?: string;
  /** What a value that does not match `pattern` gets told: a sentence naming the format, never quoting the value. */
  patternMessage?: string;
  /**
   * A check of `@latchkey/core/value-checks` that words what is wrong in the value (which entry of a list, what to
   * leave out). The server runs it before `pattern`; a form built from the schema runs it too.
   */
  valueCheck?: ValueCheckName;
  /** A field shown as a textarea; multi-line fields may contain line breaks. */
  multiline?: boolean;
  /**
   * An obviously fake value that satisfies the field's rules (the registry checks it), so tests and tools can
   * build a valid sample of any credential or node without knowing the integration. Never a real credential,
   * nor one shaped like a real key closely enough to trip a secret scanner.
   */
  example?: string;
  /**
   * On an optional field: listed as required in the JSON Schema, so the settings UI and clients that follow the
   * schema always ask for it, while the server still accepts data without it (from clients written before the
   * field existed). For a field whose absence makes the credential inert, never less safe — e.g. HTTP
   * Request's "Allowed domains": a credential without them is stored and sent nowhere.
   */
  requiredInForms?: boolean;
  /** On a choice: how each value reads to people (`{ us: 'US' }`); a value without one shows as itself. */
  choiceLabels?: Record<string, string>;
}

/** Per-field and per-credential size limits (bytes of UTF-8). */
export const FIELD_MAX_BYTES = 8 * 1024;
export const CREDENTIAL_MAX_BYTES = 64 * 1024;

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f]/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_CHARACTERS_EXCEPT_NEWLINES = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

export interface StringFieldOptions extends Omit<FieldMeta, 'secret'> {
  /** Whole-value pattern the field must match (exported to JSON Schema as `pattern`). */
  pattern?: RegExp;
  /**
   * An extra check, run before `pattern` (a failure is the only message); returns a message (never quoting a
   * secret value) or undefined when fine. Forms do not run it: prefer a `valueCheck` for a format rule.
   */
  check?: (value: string) => string | undefined;
}

/** Whether text holds control characters (line breaks allowed only when `multiline`). */
export function hasControlCharacters(value: string, multiline = false): boolean {
  return (multiline ? CONTROL_CHARACTERS_EXCEPT_NEWLINES : CONTROL_CHARACTERS).test(value);
}

function byteLength(value: string): number {
  return new TextEncoder().encode(value).length;
}

function stringField(secret: boolean, options: StringFieldOptions) {
  const { pattern, check, ...meta } = options;
  let schema = z
    .string({ error: 'Must be text' })
    .min(1, { error: 'Required' })
    .max(FIELD_MAX_BYTES, { error: `Must be at most ${FIELD_MAX_BYTES} characters`, abort: true })
    .refine((v) => byteLength(v) <= FIELD_MAX_BYTES, {
      error: `Must be at most ${FIELD_MAX_BYTES} bytes`,
      abort: true,
    })
    .refine((v) => !hasControlCharacters(v, meta.multiline), {
      error: 'Must not contain control characters',
      abort: true,
    });
  for (const rule of [check, meta.valueCheck && ((value: string) => runValueCheck(meta.valueCheck, value))]) {
    if (!rule) continue;
    schema = schema.check((ctx) => {
      const message = rule(ctx.value);
      // `continue: false`: the rule says what is wrong; the pattern's message after it would say less.
      if (message) ctx.issues.push({ code: 'custom', message, input: ctx.value, continue: false });
    });
  }
  if (pattern) schema = schema.regex(pattern, { error: meta.patternMessage ?? 'Has the wrong format' });
  return schema.meta({ ...meta, secret });
}

/**
 * Field builders: every credential field is declared through one of these so limits and metadata are uniform.
 * Chain `.optional()` for a field that may be left out.
 */
export const field = {
  /** A value that is encrypted and never shown again (API key, token, password). */
  secret: (options: StringFieldOptions) => stringField(true, options),
  /** A value that is stored in clear and may be shown (a domain, a user name, a header name). */
  text: (options: StringFieldOptions) => stringField(false, options),
  /** A choice among fixed values, shown in clear. */
  choice: <const V extends readonly [string, ...string[]]>(values: V, options: Omit<FieldMeta, 'secret'>) =>
    z.enum(values, { error: `Must be one of: ${values.join(', ')}` }).meta({ ...options, secret: false }),
};

/**
 * The parameters every "send an email" node shares (recipients, subject, plain-text body), with the same labels,
 * help and examples across integrations; each adds its own `from` (its sender rules differ).
 */
export const emailMessageFields = {
  to: field.text({
    label: 'To',
    placeholder: 'someone@example.com',
    help: 'One or more addresses, comma-separated.',
    example: 'someone@example.com',
  }),
  subject: field.text({ label: 'Subject', placeholder: 'Welcome!', example: 'Welcome!' }),
  text: field.text({ label: 'Body (plain text)', multiline: true, example: 'Hello from Latchkey.' }),
};

/** Reads the metadata a field carries, unwrapping optional/default wrappers. */
export function fieldMeta(schema: z.ZodType): Partial<FieldMeta> | undefined {
  let current: z.ZodType | undefined = schema;
  for (let depth = 0; current && depth < 5; depth++) {
    const meta = current.meta() as Partial<FieldMeta> | undefined;
    if (meta && typeof meta.label === 'string') return meta;
    const inner: z.ZodType | undefined = (current as unknown as { def?: { innerType?: z.ZodType } }).def
      ?.innerType;
    current = inner;
  }
  return undefined;
}
