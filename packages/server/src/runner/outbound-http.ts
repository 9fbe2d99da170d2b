import { promises as dns, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { type HttpResponse, isConnectionHeader, type OutgoingRequest } from '@latchkey/core';
import {
  checkAddress,
  checkHostName,
  isHostAllowedByName,
  type OutboundPolicy,
  OutboundRefusedError,
} from './outbound-guard.js';

/**
 * An outbound call that could not complete; the message names the host, never a credential or full URL. `code` is
 * the system's name for the failure (`ENOTFOUND`), for a person who wants the details, kept out of the sentence.
 */
export class OutboundError extends Error {
  override name = 'OutboundError';
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

export type Resolver = (hostname: string) => Promise<LookupAddress[]>;

export const systemResolver: Resolver = (hostname) => dns.lookup(hostname, { all: true, verbatim: true });

export interface OutboundOptions {
  policy: OutboundPolicy;
  /** false for an integration's own configured base URLs (trusted configuration), true for user-supplied URLs. */
  guard: (url: URL) => boolean;
  timeoutMs: number;
  maxResponseBytes: number;
  maxRedirects: number;
  resolver?: Resolver;
}

/** Applies the credential to a request for the original origin; redirects elsewhere go without it. */
export type CredentialApplier = (request: OutgoingRequest) => OutgoingRequest;

function guardedLookup(policy: OutboundPolicy, resolver: Resolver) {
  // Runs inside the socket's connect: the addresses checked are exactly the ones connected to (no second
  // resolution an attacker's DNS could answer differently).
  return (
    hostname: string,
    options: { all?: boolean },
    callback: (error: Error | null, address: string | LookupAddress[], family?: number) => void,
  ) => {
    resolver(hostname)
      .then((addresses) => {
        if (addresses.length === 0) throw new OutboundError(`${hostname} did not resolve`);
        for (const entry of addresses) checkAddress(policy, entry.address);
        if (options.all) callback(null, addresses);
        else callback(null, addresses[0]?.address ?? '', addresses[0]?.family ?? 4);
      })
      .catch((error: Error) => callback(error, ''));
  };
}

/**
 * The request's headers without connection and proxy headers (dropped, as fetch drops forbidden headers): a
 * `Host` typed into a node would address another virtual host behind the checked address, and a
 * `Transfer-Encoding` next to our `Content-Length` would make an ambiguously framed request.
 */
function sendableHeaders(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !isConnectionHeader(name)));
}

function buildUrl(request: OutgoingRequest): URL {
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    throw new OutboundError('the request URL is not valid');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new OutboundError('only http and https URLs are allowed');
  for (const [name, value] of Object.entries(request.query ?? {})) url.searchParams.append(name, value);
  return url;
}

function once(
  url: URL,
  request: OutgoingRequest,
  options: OutboundOptions,
  deadline: number,
): Promise<HttpResponse> {
  const guarded = options.guard(url);
  if (guarded) checkHostName(options.policy, url.hostname);
  const transport = url.protocol === 'https:' ? https : http;
  const lookup =
    guarded && !isHostAllowedByName(options.policy, url.hostname)
      ? guardedLookup(options.policy, options.resolver ?? systemResolver)
      : undefined;
  return new Promise<HttpResponse>((resolve, reject) => {
    const remaining = Math.max(1, deadline - Date.now());
    const body = request.body === undefined ? undefined : Buffer.from(request.body);
    const req = transport.request(
      url,
      {
        method: request.method,
        headers: {
          ...sendableHeaders(request.headers),
          ...(body ? { 'content-length': String(body.length) } : {}),
        },
        ...(lookup ? { lookup: lookup as never } : {}),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > options.maxResponseBytes) {
            req.destroy(
              new OutboundError(`${url.host} answered with more than ${options.maxResponseBytes} bytes`),
            );
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          const headers: Record<string, string> = {};
          for (const [name, value] of Object.entries(res.headers)) {
            if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
          }
          resolve({ status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks).toString('utf8') });
        });
        // A connection dropped mid-answer (ECONNRESET "aborted"): an outbound failure like any other.
        res.on('error', (error) => {
          if (error instanceof OutboundError || error instanceof OutboundRefusedError) reject(error);
          else reject(new OutboundError(`${url.host} closed the connection before the answer was complete`));
        });
      },
    );
    const timer = setTimeout(
      () => req.destroy(new OutboundError(`${url.host} did not answer within ${options.timeoutMs} ms`)),
      remaining,
    );
    req.on('close', () => clearTimeout(timer));
    req.on('error', (error) => {
      clearTimeout(timer);
      if (error instanceof OutboundError || error instanceof OutboundRefusedError) reject(error);
      else
        reject(new OutboundError(`${url.host} could not be reached`, (error as NodeJS.ErrnoException).code));
    });
    if (body) req.write(body);
    req.end();
  });
}

/**
 * Sends a request with the outbound guard, a deadline, a response size cap, and manual redirects (each hop
 * checked again; the credential is re-applied only on the original origin, as curl, Go and fetch do).
 */
export async function sendOutbound(
  request: OutgoingRequest,
  applyCredential: CredentialApplier,
  options: OutboundOptions,
): Promise<HttpResponse> {
  const deadline = Date.now() + options.timeoutMs;
  const authenticated = applyCredential(request);
  let url = buildUrl(authenticated);
  const origin = url.origin;
  let current = authenticated;
  for (let hop = 0; ; hop++) {
    const response = await once(url, current, options, deadline);
    const location = response.headers.location;
    if (![301, 302, 303, 307, 308].includes(response.status) || !location) return response;
    if (hop >= options.maxRedirects)
      throw new OutboundError(`${url.host} redirected more than ${options.maxRedirects} times`);
    let next: URL;
    try {
      next = new URL(location, url);
    } catch {
      throw new OutboundError(`${url.host} redirected to an invalid URL`);
    }
    if (next.protocol !== 'http:' && next.protocol !== 'https:')
      throw new OutboundError('redirects may only go to http or https URLs');
    const keepBody = response.status === 307 || response.status === 308;
    const base: OutgoingRequest = {
      method: keepBody ? request.method : request.method === 'HEAD' ? 'HEAD' : 'GET',
      url: next.toString(),
      headers: keepBody
        ? request.headers
        : Object.fromEntries(
            Object.entries(request.headers).filter(([n]) => n.toLowerCase() !== 'content-type'),
          ),
      ...(keepBody && request.body !== undefined ? { body: request.body } : {}),
    };
    current = next.origin === origin ? applyCredential(base) : base;
    url = buildUrl(current);
  }
}
