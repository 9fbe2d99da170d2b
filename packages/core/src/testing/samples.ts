/** Samples built from field metadata, and canned answers of a service that echoes what it received. */
import type { z } from 'zod';
import { FIELD_MAX_BYTES, fieldMeta } from '../fields.js';
import type { HttpResponse, OutgoingRequest } from '../http.js';

export interface ExampleSample {
  /** Every field that has an `example`, with it. */
  sample: Record<string, string>;
  /** Required fields without an example: a sample cannot be built without them. */
  missing: string[];
}

function isOptional(schema: z.ZodType): boolean {
  return schema.safeParse(undefined).success;
}

/** A sample made of the fields' `example` values (optional fields included when they have one). */
export function exampleSample(shape: Record<string, z.ZodType>): ExampleSample {
  const sample: Record<string, string> = {};
  const missing: string[] = [];
  for (const [name, schema] of Object.entries(shape)) {
    const example = fieldMeta(schema)?.example;
    if (typeof example === 'string') sample[name] = example;
    else if (!isOptional(schema)) missing.push(name);
  }
  return { sample, missing };
}

function isChoice(schema: z.ZodType): boolean {
  let current: z.ZodType | undefined = schema;
  for (let depth = 0; current && depth < 5; depth++) {
    const def: { type?: string; innerType?: z.ZodType } | undefined = (
      current as unknown as { def?: { type?: string; innerType?: z.ZodType } }
    ).def;
    if (def?.type === 'enum') return true;
    current = def?.innerType;
  }
  return false;
}

export interface InvalidSample {
  /** What is wrong with it, for the test's name. */
  what: string;
  data: unknown;
}

/**
 * Data every credential form must refuse, derived from a valid sample: nothing at all, an unknown field, and
 * for each field a control character, a value over the size limit, a list instead of text, a value outside
 * the choices. Each keeps the valid values of the other fields, so a message echoing them would show.
 */
export function invalidSamples(
  shape: Record<string, z.ZodType>,
  valid: Record<string, string>,
): InvalidSample[] {
  const samples: InvalidSample[] = [
    { what: 'a list instead of an object', data: [valid] },
    { what: 'the fields as one JSON string', data: JSON.stringify(valid) },
    {
      what: 'an unknown field next to valid ones',
      data: { ...valid, conformanceExtra: 'conformance-extra-value' },
    },
  ];
  if (Object.values(shape).some((schema) => !isOptional(schema)))
    samples.push({ what: 'no fields at all', data: {} });
  for (const [name, schema] of Object.entries(shape)) {
    const value = valid[name] ?? 'conformance-value';
    samples.push({ what: `${name} as a list`, data: { ...valid, [name]: [value] } });
    if (isChoice(schema)) {
      samples.push({
        what: `${name} outside its choices`,
        data: { ...valid, [name]: 'not-one-of-the-choices' },
      });
      continue;
    }
    samples.push(
      { what: `${name} with a NUL character`, data: { ...valid, [name]: `${value}\u0000` } },
      {
        what: `${name} over the size limit`,
        data: { ...valid, [name]: `${value}${'x'.repeat(FIELD_MAX_BYTES)}` },
      },
    );
  }
  return samples;
}

/** Every string inside submitted data. */
export function submittedStrings(value: unknown, into: string[] = []): string[] {
  if (typeof value === 'string') into.push(value);
  else if (typeof value === 'number') into.push(String(value));
  else if (value && typeof value === 'object')
    for (const item of Object.values(value)) submittedStrings(item, into);
  return into;
}

/**
 * What a careless or hostile service answers: everything it received, secret values included, in every
 * place an error parser looks (`message`, `error`, `errors[].message`, `detail`, `more_info`, …) and in
 * response headers.
 */
export function echoResponse(
  status: number,
  request: OutgoingRequest,
  secretValues: readonly string[],
): HttpResponse {
  const everything = [
    ...secretValues,
    request.url,
    ...Object.values(request.headers),
    ...Object.values(request.query ?? {}),
  ].join(' ');
  const headerSafe = everything.replace(/[^\x20-\x7e]/g, '?');
  return {
    status,
    headers: {
      'content-type': 'application/json',
      'www-authenticate': `Bearer error="invalid_token", error_description="${headerSafe}"`,
      'x-echo': headerSafe,
    },
    body: JSON.stringify({
      ok: false,
      status,
      code: status,
      error: `invalid_auth ${everything}`,
      error_description: everything,
      message: `Rejected: ${everything}`,
      detail: everything,
      description: everything,
      more_info: everything,
      errors: [{ message: everything, field: everything, code: everything }],
      received: {
        url: request.url,
        headers: request.headers,
        query: request.query ?? {},
        body: request.body ?? '',
      },
    }),
  };
}
