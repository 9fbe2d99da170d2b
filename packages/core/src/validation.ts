import type { z } from 'zod';
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

function messageFor(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'unrecognized_keys':
      return 'Unknown field';
    case 'invalid_value':
      return issue.input === undefined ? 'Required' : issue.message;
    case 'invalid_type':
      return issue.input === undefined
        ? 'Required'
        : `Must be ${issue.expected === 'string' ? 'text' : issue.expected}`;
    default:
      return issue.message;
  }
}

/**
 * Validates submitted credential data without ever echoing it: messages come from the schema's own
 * wording, and any message that would contain a submitted string is replaced by a generic one.
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
  // `reportInput` lets `messageFor` tell a missing field from a wrong type; the input itself is never returned.
  const parsed = schema.safeParse(data, { reportInput: true });
  if (parsed.success) return { ok: true, value: parsed.data };

  const submitted: string[] = [];
  collectStrings(data, submitted);
  const echoes = submitted.filter((s) => s.length >= 3);
  const issues: FieldIssue[] = [];
  for (const issue of parsed.error.issues) {
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [undefined];
    for (const key of keys) {
      const path = [...issue.path, ...(key === undefined ? [] : [key])].map(safeSegment);
      let message = messageFor(issue);
      if (echoes.some((value) => message.includes(value))) message = 'Invalid value';
      issues.push({ path, message });
    }
  }
  return { ok: false, issues };
}
