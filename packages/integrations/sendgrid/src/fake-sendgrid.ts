/**
 * A stand-in for the SendGrid v3 API on 127.0.0.1, for the server's tests and the browser suite (give its URL
 * as LATCHKEY_BASE_URL_SENDGRID): POST /v3/mail/send answers 202 with an empty body, GET /v3/scopes lists the
 * key's scopes, anything else is a 404. Without `acceptedKey` any Authorization is accepted; with it, only
 * `Bearer <acceptedKey>` is, and any other key gets SendGrid's 401.
 */
import { answerJson, FakeService } from '@latchkey/core/testing/fake-service';

const SENDGRID_INVALID = {
  errors: [
    { message: 'The provided authorization grant is invalid, expired, or revoked', field: null, help: null },
  ],
};

export function fakeSendgrid(options: { acceptedKey?: string } = {}): FakeService {
  const { acceptedKey } = options;
  const known = (method: string, path: string) =>
    (method === 'POST' && path === '/v3/mail/send') || (method === 'GET' && path === '/v3/scopes');
  return new FakeService('SendGrid', {
    normal(req, res) {
      if (!req.headers.authorization) {
        answerJson(res, 401, { errors: [{ message: 'authorization required', field: null, help: null }] });
      } else if (
        acceptedKey !== undefined &&
        req.headers.authorization !== `Bearer ${acceptedKey}` &&
        known(req.method, req.path)
      ) {
        answerJson(res, 401, SENDGRID_INVALID);
      } else if (req.method === 'POST' && req.path === '/v3/mail/send') {
        res.writeHead(202, { 'x-message-id': 'fake-message-id', 'x-ratelimit-remaining': '599' });
        res.end();
      } else if (req.method === 'GET' && req.path === '/v3/scopes') {
        answerJson(res, 200, { scopes: ['mail.send', 'scopes.read'] });
      } else {
        answerJson(res, 404, { errors: [{ message: 'not found', field: null, help: null }] });
      }
    },
    unauthorized(_req, res) {
      answerJson(res, 401, SENDGRID_INVALID);
    },
  });
}
