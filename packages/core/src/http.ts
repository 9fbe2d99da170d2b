/** An outgoing HTTP request as plugins describe it. The server performs it; plugins never open sockets. */
export interface OutgoingRequest {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD';
  url: string;
  headers: Record<string, string>;
  query?: Record<string, string>;
  body?: string;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** `Authorization: Basic base64(user:pass)` per RFC 7617, UTF-8, standard padded alphabet. Isomorphic. */
export function basicAuthorization(user: string, password: string): string {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  let binary = '';
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return `Basic ${btoa(binary)}`;
}

export function bearerAuthorization(token: string): string {
  return `Bearer ${token}`;
}

/** Returns a copy of the request with one header set, replacing any header of the same name in any case. */
export function withHeader(request: OutgoingRequest, name: string, value: string): OutgoingRequest {
  const headers: Record<string, string> = {};
  for (const [key, existing] of Object.entries(request.headers)) {
    if (key.toLowerCase() !== name.toLowerCase()) headers[key] = existing;
  }
  headers[name] = value;
  return { ...request, headers };
}

/** Joins a base URL and a path without doubling or losing slashes. */
export function joinUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}

/**
 * The environment variable that overrides one of an integration's base URLs:
 * `LATCHKEY_BASE_URL_<INTEGRATION>` for the default, `LATCHKEY_BASE_URL_<INTEGRATION>_<VARIANT>` otherwise.
 */
export function baseUrlVariable(integrationId: string, variant = 'default'): string {
  const id = integrationId.toUpperCase().replace(/[^A-Z0-9]/g, '_');
  return variant === 'default'
    ? `LATCHKEY_BASE_URL_${id}`
    : `LATCHKEY_BASE_URL_${id}_${variant.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/** Headers that address or frame the connection (RFC 9110 / 9112): the HTTP client sets them, never a plugin. */
const CONNECTION_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'upgrade',
  'expect',
]);

/** Whether a header name is a connection, framing or proxy header (`Proxy-*` included), in any case. */
export function isConnectionHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return CONNECTION_HEADERS.has(lower) || lower.startsWith('proxy-');
}
