import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the fake received, as the server under test sent it. */
export interface ReceivedRequest {
  method: string;
  path: string;
  authorization: string | null;
  body: string;
}

export interface FakeSendGrid {
  /** The base URL to give the server as LATCHKEY_BASE_URL_SENDGRID. */
  url: string;
  requests: ReceivedRequest[];
  stop: () => Promise<void>;
}

const REJECTED = JSON.stringify({
  errors: [
    { message: 'The provided authorization grant is invalid, expired, or revoked', field: null, help: null },
  ],
});

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

/**
 * A local stand-in for the SendGrid API on 127.0.0.1, recording every request: GET /v3/scopes answers
 * 200 for `Authorization: Bearer <acceptedKey>` and SendGrid's 401 otherwise; POST /v3/mail/send answers
 * 202 with an empty body for the accepted key (401 otherwise). Anything else is a 404.
 */
export async function startFakeSendGrid(acceptedKey: string): Promise<FakeSendGrid> {
  const requests: ReceivedRequest[] = [];
  const server = createServer(async (request, response) => {
    const body = await readBody(request);
    const path = new URL(request.url ?? '/', 'http://fake').pathname;
    const authorization = request.headers.authorization ?? null;
    requests.push({ method: request.method ?? '', path, authorization, body });
    const accepted = authorization === `Bearer ${acceptedKey}`;
    const json = (status: number, payload: string) => {
      response.writeHead(status, { 'content-type': 'application/json' });
      response.end(payload);
    };
    if (request.method === 'GET' && path === '/v3/scopes') {
      if (accepted) json(200, JSON.stringify({ scopes: ['mail.send'] }));
      else json(401, REJECTED);
    } else if (request.method === 'POST' && path === '/v3/mail/send') {
      if (accepted) {
        response.writeHead(202);
        response.end();
      } else json(401, REJECTED);
    } else {
      json(404, JSON.stringify({ errors: [{ message: 'not found', field: null, help: null }] }));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
