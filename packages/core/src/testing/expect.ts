import { expect } from 'vitest';
import type { FieldIssue, ValidationResult } from '../validation.js';
import { refusedProblems } from './checks.js';

/**
 * Asserts that data was refused with field-level issues whose messages and paths never repeat a submitted
 * value (nor the extra values given), verbatim or JSON-escaped; returns the issues for closer checks.
 */
export function expectRefused(
  result: ValidationResult<unknown>,
  submitted: unknown,
  ...alsoNotEchoed: string[]
): FieldIssue[] {
  expect(refusedProblems(result, [submitted, alsoNotEchoed])).toEqual([]);
  return result.ok ? [] : result.issues;
}
