import { type ActionContext, type ActionResult, field, type OutgoingRequest } from '@latchkey/core';
import { z } from 'zod';
import { HEADER_NAME, isForbiddenCredentialHeader } from './credentials.js';

export const httpRequestParams = z.object({
  method: field.choice(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD'], {
    label: 'Method',
    example: 'POST',
  }),
  url: field.text({
    label: 'URL',
    placeholder: 'https://api.example.com/v1/items',
    pattern: /^https?:\/\/\S+$/,
    patternMessage: 'Must be a full URL starting with `https://` (or `http://`), with no spaces.',
    example: 'https://api.example.com/v1/items',
  }),
  headers: field
    .text({
      label: 'Headers',
      help: 'One per line, as Name: value. Authentication comes from the selected credential.',
      multiline: true,
      example: 'Content-Type: application/json',
      check: (text) => {
        const names = Object.keys(parseHeaderLines(text));
        if (names.some((name) => !HEADER_NAME.test(name)))
          return 'Each line must be `Name: value`, with a header name of letters, digits and `-`.';
        return names.some(isForbiddenCredentialHeader)
          ? 'Host, Content-Length, Transfer-Encoding, Connection and Proxy-* headers are set by the server: leave them out.'
          : undefined;
      },
    })
    .optional(),
  query: field
    .text({
      label: 'Query parameters',
      help: 'One per line, as name=value.',
      multiline: true,
      example: 'page=1',
    })
    .optional(),
  body: field.text({ label: 'Body', multiline: true, example: '{"name":"fake item"}' }).optional(),
});

type Params = z.output<typeof httpRequestParams>;

export function parseHeaderLines(text: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const line of (text ?? '').split('\n')) {
    const index = line.indexOf(':');
    if (index <= 0) continue;
    headers[line.slice(0, index).trim()] = line.slice(index + 1).trim();
  }
  return headers;
}

export function parseQueryLines(text: string | undefined): Record<string, string> {
  const query: Record<string, string> = {};
  for (const line of (text ?? '').split('\n')) {
    const index = line.indexOf('=');
    if (index <= 0) continue;
    query[line.slice(0, index).trim()] = line.slice(index + 1).trim();
  }
  return query;
}

export async function sendRequest(ctx: ActionContext<Params>): Promise<ActionResult> {
  const request: OutgoingRequest = {
    method: ctx.params.method,
    url: ctx.params.url,
    headers: parseHeaderLines(ctx.params.headers),
    query: parseQueryLines(ctx.params.query),
    ...(ctx.params.body && ctx.params.method !== 'GET' && ctx.params.method !== 'HEAD'
      ? { body: ctx.params.body }
      : {}),
  };
  const response = await ctx.send(request);
  const ok = response.status >= 200 && response.status < 300;
  if (response.status === 401 || response.status === 403) {
    return {
      ok: false,
      summary: `The credential was rejected by ${new URL(ctx.params.url).host} (HTTP ${response.status})`,
    };
  }
  const type = response.headers['content-type']?.split(';')[0] ?? 'no content type';
  return {
    ok,
    summary: `HTTP ${response.status} (${type}, ${new TextEncoder().encode(response.body).length} bytes)`,
  };
}
