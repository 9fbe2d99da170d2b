import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { field } from './fields.js';
import { validateAgainst } from './validation.js';
import { domainListProblem, domainProblem, runValueCheck } from './value-checks.js';

describe('domain checks', () => {
  it.each([
    ['https://api.example.com', '`https://api.example.com` is not a domain — leave out `https://`.'],
    [
      'api.example.com, http://crm.example.com:8443/v1',
      '`http://crm.example.com:8443/v1` is not a domain — leave out `http://`, the path `/v1` and the port `:8443`.',
    ],
    ['*.example.com', '`*.example.com` is not a domain — leave out `*.` (subdomains are included).'],
    [
      'api.example.com crm.example.com',
      '`api.example.com crm.example.com` is not a domain — separate domains with commas.',
    ],
    [
      'api_example.com',
      '`api_example.com` is not a domain — a domain has only letters, digits, dots and hyphens, like `api.example.com`.',
    ],
  ])('say what to leave out of %j, quoting the entry for a form', (value, message) => {
    expect(domainListProblem(value, { quote: true })).toBe(message);
  });

  it('say a single domain has no spaces', () => {
    expect(domainProblem('mg example.com', { quote: true })).toBe(
      '`mg example.com` is not a domain — a domain has no spaces.',
    );
  });

  it('name the entry by position without quoting it, for the server', () => {
    expect(domainListProblem('https://api.example.com')).toBe('This is not a domain — leave out `https://`.');
    expect(domainListProblem('api.example.com, crm.example.com/v1')).toBe(
      'Entry 2 is not a domain — leave out the path.',
    );
    expect(domainListProblem('api.example.com,,crm.example.com')).toBe(
      'An entry is empty — remove the extra comma.',
    );
  });

  it('accept domains and IPv4 addresses, and cut a long quoted entry short', () => {
    expect(domainListProblem('api.example.com, auth.example.com,10.0.0.7')).toBeUndefined();
    const long = `https://${'a'.repeat(100)}.example.com`;
    expect(domainProblem(long, { quote: true })).toMatch(/^`https:\/\/a{51}…` is not a domain/);
  });

  it('check nothing for a check this version does not know', () => {
    expect(runValueCheck('nope', 'https://x')).toBeUndefined();
    expect(runValueCheck('toString', 'https://x')).toBeUndefined();
    expect(runValueCheck('domainList', 'https://x')).toBe('This is not a domain — leave out `https://`.');
  });
});

describe('a field with a value check', () => {
  const schema = z.object({
    domains: field.text({
      label: 'Allowed domains',
      valueCheck: 'domainList',
      pattern: /^[A-Za-z0-9.-]+(\s*,\s*[A-Za-z0-9.-]+)*$/,
      patternMessage: 'List domain names separated by commas.',
    }),
  });

  it('gives the check’s message alone, not the pattern’s after it', () => {
    expect(validateAgainst(schema, { domains: 'api.example.com, https://crm.example.com' })).toEqual({
      ok: false,
      issues: [{ path: ['domains'], message: 'Entry 2 is not a domain — leave out `https://`.' }],
    });
  });

  it('names the check, the format message and the pattern in its JSON Schema, for forms', () => {
    expect(z.toJSONSchema(schema).properties?.domains).toMatchObject({
      valueCheck: 'domainList',
      patternMessage: 'List domain names separated by commas.',
      pattern: expect.any(String),
    });
  });
});
