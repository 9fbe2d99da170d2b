/**
 * Checks that word what is wrong with one part of a value, run alike by the server (a field's zod schema) and by
 * forms built from the JSON Schema (a field's `valueCheck` names one). Dependency-free
 * (`@latchkey/core/value-checks`). A form quotes the entry that is wrong (the person sees what they typed); the
 * server names it by position, as its messages never repeat a submitted value.
 */

export interface ValueCheckOptions {
  /** Quote the entry in the message ("`https://x.example` is not a domain"), for a form; else name it by position. */
  quote?: boolean;
}

const QUOTED_MAX = 60;

/** Text as a message quotes it: in backticks, cut short when long. */
function quoted(text: string): string {
  return `\`${text.length > QUOTED_MAX ? `${text.slice(0, QUOTED_MAX - 1)}…` : text}\``;
}

/** Characters a domain (or an IPv4 address) may hold; `*.` and ports are not part of one. */
const DOMAIN = /^[A-Za-z0-9.-]+$/;

/** What is wrong with one domain name, as a sentence, or undefined when it is one. */
export function domainProblem(
  entry: string,
  options: ValueCheckOptions = {},
  position?: string,
): string | undefined {
  if (DOMAIN.test(entry)) return undefined;
  const leaveOut: string[] = [];
  let rest = entry;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)/.exec(rest)?.[1];
  if (scheme) {
    leaveOut.push(quoted(scheme));
    rest = rest.slice(scheme.length);
  }
  if (rest.startsWith('*.')) {
    leaveOut.push('`*.` (subdomains are included)');
    rest = rest.slice(2);
  }
  const path = /[/?#].*$/.exec(rest)?.[0];
  if (path) {
    leaveOut.push(options.quote ? `the path ${quoted(path)}` : 'the path');
    rest = rest.slice(0, -path.length);
  }
  const port = /:\d*$/.exec(rest)?.[0];
  if (port) {
    leaveOut.push(options.quote ? `the port ${quoted(port)}` : 'the port');
    rest = rest.slice(0, -port.length);
  }
  const fixes = leaveOut.length > 0 ? [`leave out ${listed(leaveOut)}`] : [];
  if (/\s/.test(rest.trim())) fixes.push('a domain has no spaces');
  else if (fixes.length === 0 || !DOMAIN.test(rest))
    fixes.push('a domain has only letters, digits, dots and hyphens, like `api.example.com`');
  const subject = options.quote ? quoted(entry) : (position ?? 'This');
  return `${subject} is not a domain — ${fixes.join('; ')}.`;
}

/** "a", "a and b", "a, b and c". */
function listed(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
}

/** What is wrong with a comma-separated list of domains: the first entry that is not one, or an empty entry. */
export function domainListProblem(value: string, options: ValueCheckOptions = {}): string | undefined {
  const entries = value.split(',').map((entry) => entry.trim());
  for (const [index, entry] of entries.entries()) {
    if (entry === '')
      return entries.every((e) => e === '')
        ? 'List at least one domain, like `api.example.com`.'
        : 'An entry is empty — remove the extra comma.';
    const position = entries.length > 1 ? `Entry ${index + 1}` : undefined;
    if (/\s/.test(entry))
      return `${options.quote ? quoted(entry) : (position ?? 'This')} is not a domain — separate domains with commas.`;
    const problem = domainProblem(entry, options, position);
    if (problem) return problem;
  }
  return undefined;
}

export const valueChecks = {
  domain: domainProblem,
  domainList: domainListProblem,
} as const;

export type ValueCheckName = keyof typeof valueChecks;

/** Runs the check a field names; a name this version does not know checks nothing (the server still does). */
export function runValueCheck(
  name: unknown,
  value: string,
  options: ValueCheckOptions = {},
): string | undefined {
  return typeof name === 'string' && Object.hasOwn(valueChecks, name)
    ? valueChecks[name as ValueCheckName](value, options)
    : undefined;
}
