import type { FieldIssue } from '@latchkey/core';

/** Deeper input than this is refused before any procedure sees it (no legitimate input comes close). */
export const MAX_INPUT_DEPTH = 32;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** A path segment as it may appear in an answer: indexes and plain field names; any other key is not quoted. */
function segment(key: string | number): string {
  if (typeof key === 'number') return String(key);
  return /^[A-Za-z0-9_$-]{1,64}$/.test(key) ? key : '(key)';
}

function stringProblem(value: string): string | undefined {
  if (value.includes('\u0000')) return 'Must not contain NUL characters';
  if (LONE_SURROGATE.test(value)) return 'Must be valid Unicode text';
  return undefined;
}

/**
 * Checks a procedure's raw (JSON) input for what no procedure accepts and what the database cannot store:
 * NUL characters and lone UTF-16 surrogates in any string or key (PostgreSQL text and jsonb refuse both), and
 * nesting deeper than MAX_INPUT_DEPTH. Iterative, so a hostile input cannot exhaust the stack. The issue
 * names where, never what.
 */
export function findUnacceptableInput(input: unknown): FieldIssue | undefined {
  const stack: { value: unknown; path: (string | number)[] }[] = [{ value: input, path: [] }];
  while (stack.length > 0) {
    const { value, path } = stack.pop() as { value: unknown; path: (string | number)[] };
    if (typeof value === 'string') {
      const problem = stringProblem(value);
      if (problem) return { path: path.map(segment), message: problem };
      continue;
    }
    if (typeof value !== 'object' || value === null) continue;
    if (path.length >= MAX_INPUT_DEPTH) {
      return {
        path: path.map(segment),
        message: `Is nested too deeply (more than ${MAX_INPUT_DEPTH} levels)`,
      };
    }
    if (Array.isArray(value)) {
      value.forEach((item, index) => {
        stack.push({ value: item, path: [...path, index] });
      });
      continue;
    }
    for (const key of Object.keys(value)) {
      const keyProblem = stringProblem(key);
      if (keyProblem)
        return { path: [...path.map(segment), '(key)'], message: `Field names: ${keyProblem.toLowerCase()}` };
      stack.push({ value: (value as Record<string, unknown>)[key], path: [...path, key] });
    }
  }
  return undefined;
}
