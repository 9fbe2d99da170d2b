import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// docs/architecture.md's "Where each rule lives" table names, for each rule, the one function that implements
// it and its file. This test keeps the map true: every file exists and declares the function it is said to hold.
const root = fileURLToPath(new URL('../../..', import.meta.url));
const doc = readFileSync(path.join(root, 'docs/architecture.md'), 'utf8');

interface RuleRow {
  rule: string;
  name: string;
  file: string;
}

function ruleRows(markdown: string): RuleRow[] {
  const section = markdown.split(/^## Where each rule lives$/m)[1]?.split(/^## /m)[0] ?? '';
  return section
    .split('\n')
    .filter((line) => line.startsWith('|') && !/^\|\s*(rule|-)/.test(line))
    .map((line) => {
      const [rule = '', fn = '', file = ''] = line
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim());
      return { rule, name: fn.replace(/[`()]/g, '').trim(), file: file.replace(/`/g, '').trim() };
    });
}

/** A top-level declaration, or a member of an exported object (`name(` / `name:`), of that name. */
function declares(source: string, name: string): boolean {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(
    `(?:^|\\n)\\s*(?:export\\s+)?(?:async\\s+)?(?:function\\*?|const|let|class|interface|type)\\s+${escaped}\\b` +
      `|\\n\\s+(?:async\\s+)?${escaped}\\s*[(:]`,
  ).test(source);
}

const rows = ruleRows(doc);

describe("docs/architecture.md's map of rules to functions", () => {
  it('lists the rules of the design, each once', () => {
    expect(rows.length).toBeGreaterThanOrEqual(15);
    const rules = rows.map((row) => row.rule);
    expect(new Set(rules).size).toBe(rules.length);
  });

  it.each(rows.map((row) => [row.rule, row] as const))(
    '%s: the named function is in the named file',
    (_, row) => {
      const file = path.join(root, 'packages', row.file);
      expect(existsSync(file), `${row.file} exists`).toBe(true);
      expect(declares(readFileSync(file, 'utf8'), row.name), `${row.file} declares ${row.name}`).toBe(true);
    },
  );

  it('would notice a function that moved away', () => {
    expect(declares('export function createSecret() {}', 'createSecret')).toBe(true);
    expect(declares('export const permissions = {\n  manageSecret: (m) => true,\n};', 'manageSecret')).toBe(
      true,
    );
    expect(
      declares('// createSecret lived here\nimport { createSecret } from "./x.js";', 'createSecret'),
    ).toBe(false);
  });
});
