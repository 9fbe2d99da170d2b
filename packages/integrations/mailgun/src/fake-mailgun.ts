/**
 * A stand-in for one Mailgun region on 127.0.0.1 (LATCHKEY_BASE_URL_MAILGUN_US or _EU): POST
 * /v3/{domain}/messages queues the message, GET /v4/domains/{domain} knows the sending `domains` given; a
 * request without Authorization gets Mailgun's 401 `Forbidden`.
 */
import { answerJson, answerText, FakeService } from '@latchkey/core/testing/fake-service';

export function fakeMailgun(region: 'us' | 'eu', domains: readonly string[]): FakeService {
  return new FakeService(`Mailgun ${region.toUpperCase()}`, {
    normal(req, res) {
      if (!req.headers.authorization) {
        answerText(res, 401, 'Forbidden');
        return;
      }
      const send = /^\/v3\/([^/]+)\/messages$/.exec(req.path);
      const domain = /^\/v4\/domains\/([^/]+)$/.exec(req.path);
      if (req.method === 'POST' && send) {
        answerJson(res, 200, {
          id: `<20240101000000.fake.${region}@${decodeURIComponent(send[1] ?? '')}>`,
          message: 'Queued. Thank you.',
        });
      } else if (req.method === 'GET' && domain) {
        const name = decodeURIComponent(domain[1] ?? '');
        if (domains.includes(name)) {
          answerJson(res, 200, {
            domain: { name, state: 'active' },
            receiving_dns_records: [],
            sending_dns_records: [],
          });
        } else {
          answerJson(res, 404, { message: 'Domain not found' });
        }
      } else {
        answerJson(res, 404, { message: 'Not found' });
      }
    },
    unauthorized(_req, res) {
      answerText(res, 401, 'Forbidden');
    },
  });
}
