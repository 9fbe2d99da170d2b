import { describe, expect, it } from 'vitest';
import {
  humanize,
  initialValues,
  schemaFields,
  secretFieldNames,
  submittedValues,
  validateValue,
} from './jsonSchema';

// A schema shaped like the ones the server publishes (z.toJSONSchema of a plugin's credential type),
// written out here so these tests do not depend on any integration.
const schema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  properties: {
    apiKey: {
      type: 'string',
      minLength: 1,
      maxLength: 64,
      pattern: '^ab\\.[A-Za-z0-9]+$',
      label: 'API key',
      help: 'Made in the service’s settings.',
      placeholder: 'ab.xxxx',
      formatHint: 'Starts with ab.',
      secret: true,
    },
    region: { type: 'string', enum: ['us', 'eu'], label: 'Region', secret: false },
    notes: { type: 'string', minLength: 1, maxLength: 8192, multiline: true, secret: false },
    subdomain: { type: 'string', minLength: 3, default: 'www', label: 'Subdomain' },
  },
  required: ['apiKey', 'region'],
  additionalProperties: false,
};

describe('schemaFields', () => {
  it('reads every property with its metadata, in the schema’s order', () => {
    const fields = schemaFields(schema);
    expect(fields.map((field) => field.name)).toEqual(['apiKey', 'region', 'notes', 'subdomain']);
    expect(fields[0]).toEqual({
      name: 'apiKey',
      label: 'API key',
      help: 'Made in the service’s settings.',
      placeholder: 'ab.xxxx',
      formatHint: 'Starts with ab.',
      required: true,
      secret: true,
      multiline: false,
      minLength: 1,
      maxLength: 64,
      pattern: '^ab\\.[A-Za-z0-9]+$',
    });
    expect(fields[1]).toMatchObject({ required: true, secret: false, options: ['us', 'eu'] });
    expect(fields[2]).toMatchObject({ label: 'Notes', required: false, multiline: true });
    expect(fields[3]).toMatchObject({ defaultValue: 'www', required: false });
  });

  it('answers no fields for something that is not an object schema', () => {
    expect(schemaFields(undefined)).toEqual([]);
    expect(schemaFields({ type: 'string' })).toEqual([]);
    expect(schemaFields('nope')).toEqual([]);
  });

  it('lists the secret fields', () => {
    expect(secretFieldNames(schema)).toEqual(['apiKey']);
  });

  it('makes a label from a property name when the schema has none', () => {
    expect(humanize('headerName')).toBe('Header name');
    expect(humanize('api_key')).toBe('Api key');
  });
});

describe('validateValue', () => {
  const [apiKey, region, notes, subdomain] = schemaFields(schema);
  if (!apiKey || !region || !notes || !subdomain) throw new Error('fixture');

  it('mirrors required, enum, length and pattern checks', () => {
    expect(validateValue(apiKey, '')).toBe('API key is required.');
    expect(validateValue(apiKey, 'ab.valid123')).toBeNull();
    expect(validateValue(apiKey, `ab.${'x'.repeat(80)}`)).toBe('API key must be at most 64 characters long.');
    expect(validateValue(apiKey, 'cd.nope')).toBe('API key is not in the expected format. Starts with ab.');
    expect(validateValue(region, 'mars')).toBe('Choose one of the listed options for Region.');
    expect(validateValue(subdomain, 'ab')).toBe('Subdomain must be at least 3 characters long.');
  });

  it('says the schema’s own format message, keeping the case of the format', () => {
    const sid = {
      ...apiKey,
      label: 'Account SID',
      pattern: '^AC[0-9a-f]{32}$',
      formatHint: '`AC` followed by 32 hexadecimal characters',
    };
    expect(validateValue(sid, 'ac123')).toBe(
      'Account SID is not in the expected format. `AC` followed by 32 hexadecimal characters.',
    );
    expect(
      validateValue(
        { ...sid, patternMessage: 'An Account SID is `AC` followed by 32 hexadecimal characters.' },
        'x',
      ),
    ).toBe('An Account SID is `AC` followed by 32 hexadecimal characters.');
  });

  it('runs the schema’s value check first, quoting the entry of a field shown in clear', () => {
    const domains = {
      name: 'allowedDomains',
      label: 'Allowed domains',
      required: true,
      secret: false,
      multiline: false,
      valueCheck: 'domainList',
      pattern: '^[A-Za-z0-9.-]+(\\s*,\\s*[A-Za-z0-9.-]+)*$',
      patternMessage: 'List domain names separated by commas.',
    };
    expect(validateValue(domains, 'api.example.com, https://crm.example.com')).toBe(
      '`https://crm.example.com` is not a domain — leave out `https://`.',
    );
    expect(validateValue(domains, 'api.example.com')).toBeNull();
    // A secret field's value is never quoted.
    expect(validateValue({ ...domains, secret: true }, 'https://crm.example.com')).toBe(
      'This is not a domain — leave out `https://`.',
    );
  });

  it('accepts an empty optional field', () => {
    expect(validateValue(notes, '')).toBeNull();
  });

  it('never repeats the value in its message', () => {
    const typed = 'ab.sensitive value!';
    for (const field of [apiKey, region, subdomain])
      expect(validateValue(field, typed) ?? '').not.toContain(typed);
  });

  it('leaves a pattern this browser cannot compile to the server', () => {
    expect(validateValue({ ...apiKey, pattern: '(' }, 'anything')).toBeNull();
  });
});

describe('form values', () => {
  const fields = schemaFields(schema);

  it('start from known public values and schema defaults', () => {
    expect(initialValues(fields, { region: 'eu', apiKey: 42 })).toEqual({
      apiKey: '',
      region: 'eu',
      notes: '',
      subdomain: 'www',
    });
  });

  it('submit only the schema’s fields, leaving empty optional ones out', () => {
    expect(
      submittedValues(fields, { apiKey: 'ab.k', region: 'us', notes: '', stray: 'x', subdomain: 'api' }),
    ).toEqual({
      apiKey: 'ab.k',
      region: 'us',
      subdomain: 'api',
    });
  });
});
