import { z } from 'zod';
import { CREDENTIAL_MAX_BYTES } from './fields.js';

export interface FieldIssue {
  /** Path of the offending field, e.g. `["apiKey"]`; empty for the whole value. */
  path: string[];
  /** A message that names what is wrong and never quotes the submitted value. */
  message: string;
}

export type ValidationResult<T> = { ok: true; value: T } | { ok: false; issues: FieldIssue[] };

const MAX_PATH_SEGMENT = 64;

function collectStrings(value: unknown, into: string[], depth = 0): void {
  if (depth > 4 || into.length > 200) return;
  if (typeof value === 'string') into.push(value);
  else if (value && typeof value === 'object') {
    for (const item of Object.values(value)) collectStrings(item, into, depth + 1);
  }
}

/** Keeps field names readable and bounded; a field *name* is not a value, but it may be hostile. */
function safeSegment(segment: PropertyKey): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is replaced
  const text = String(segment).replace(/[\u0000-\u001f\u007f]/g, '?');
  return text.length > MAX_PATH_SEGMENT ? `${text.slice(0, MAX_PATH_SEGMENT)}…` : text;
}

/** Zod's own (English, developer-facing) wording of an issue, to tell it from a message the schema wrote. */
function zodWording(issue: z.core.$ZodIssue): string | undefined {
  const said = z.config().localeError?.(issue as unknown as z.core.$ZodRawIssue);
  return typeof said === 'string' ? said : (said?.message ?? undefined);
}

/**
 * Whether the field was left out. Known only when the parse reported its input (`reportInput`, as
 * `validateAgainst` does); tRPC parses procedure input without it.
 */
function leftOut(issue: z.core.$ZodIssue): boolean | undefined {
  return 'input' in issue ? issue.input === undefined : undefined;
}

function messageFor(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'unrecognized_keys':
      return 'Unknown field';
    case 'invalid_type':
      // Without the input reported, a wrong type is taken for a missing field (the usual case in an API call).
      return leftOut(issue) !== false
        ? 'Required'
        : `Must be ${issue.expected === 'string' ? 'text' : issue.expected}`;
  }
  if (issue.code === 'invalid_value' && leftOut(issue)) return 'Required';
  // A message the schema wrote ("An example key looks like ex_…") says it best; zod's own wording is replaced.
  if (issue.message !== zodWording(issue)) return issue.message;
  switch (issue.code) {
    case 'invalid_value':
      return `Must be one of: ${issue.values.map(String).join(', ')}`;
    case 'too_small':
      return issue.origin === 'string' && issue.minimum === 1
        ? 'Required'
        : `Must be at least ${issue.minimum}`;
    case 'too_big':
      return `Must be at most ${issue.maximum}${issue.origin === 'string' ? ' characters' : ''}`;
    case 'invalid_format':
      return issue.format === 'email' ? 'Must be an email address' : 'Has the wrong format';
    default:
      return 'Invalid value';
  }
}

/**
 * Zod issues as field issues a person can act on, the one wording for credential data, node parameters and
 * procedure input: one issue per unknown key, bounded field names, and no message that quotes a submitted
 * value (given `submitted`, any message containing one of its strings becomes "Invalid value").
 */
export function fieldIssuesFromZod(issues: readonly z.core.$ZodIssue[], submitted?: unknown): FieldIssue[] {
  const strings: string[] = [];
  collectStrings(submitted, strings);
  const echoes = strings.filter((s) => s.length >= 3);
  const fieldIssues: FieldIssue[] = [];
  for (const issue of issues) {
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [undefined];
    for (const key of keys) {
      const path = [...issue.path, ...(key === undefined ? [] : [key])].map(safeSegment);
      let message = messageFor(issue);
      if (echoes.some((value) => message.includes(value))) message = 'Invalid value';
      fieldIssues.push({ path, message });
    }
  }
  return fieldIssues;
}

/**
 * Validates submitted credential data (or node parameters) without ever echoing it: the issues are worded by
 * `fieldIssuesFromZod`, which replaces any message that would contain a submitted string by a generic one.
 */
export function validateAgainst<T>(schema: z.ZodType<T>, data: unknown): ValidationResult<T> {
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    return { ok: false, issues: [{ path: [], message: 'Must be an object of fields' }] };
  }
  let size: number;
  try {
    size = new TextEncoder().encode(JSON.stringify(data)).length;
  } catch {
    return { ok: false, issues: [{ path: [], message: 'Must be plain JSON' }] };
  }
  if (size > CREDENTIAL_MAX_BYTES) {
    return {
      ok: false,
      issues: [{ path: [], message: `Must be at most ${CREDENTIAL_MAX_BYTES} bytes in all` }],
    };
  }
  // `reportInput` lets the wording tell a missing field from a wrong type; the input itself is never returned.
  const parsed = schema.safeParse(data, { reportInput: true });
  if (parsed.success) return { ok: true, value: parsed.data };
  return { ok: false, issues: fieldIssuesFromZod(parsed.error.issues, data) };
}
