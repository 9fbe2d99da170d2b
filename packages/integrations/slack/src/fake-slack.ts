/**
 * A stand-in for Slack on 127.0.0.1: the Web API under /api/<method> (LATCHKEY_BASE_URL_SLACK is `<url>/api`)
 * and incoming webhooks under /services/T…/B…/… (LATCHKEY_BASE_URL_SLACK_HOOKS is `<url>`). Like Slack, the
 * Web API answers 200 with `ok: false` for a missing or bad token.
 */
import { answerJson, answerText, echoCredentials, FakeService } from '@latchkey/core/testing/fake-service';

export function fakeSlack(): FakeService {
  return new FakeService('Slack', {
    normal(req, res) {
      if (req.path.startsWith('/services/')) {
        answerText(res, 200, 'ok', 'text/html');
        return;
      }
      if (!req.headers.authorization) {
        answerJson(res, 200, { ok: false, error: 'not_authed' });
      } else if (req.method === 'POST' && req.path === '/api/auth.test') {
        answerJson(res, 200, {
          ok: true,
          url: 'https://fake.slack.test/',
          team: 'Fake Team',
          user: 'fakebot',
          team_id: 'T0FAKE',
          user_id: 'U0FAKE',
          bot_id: 'B0FAKE',
        });
      } else if (req.method === 'POST' && req.path === '/api/chat.postMessage') {
        let channel = '';
        try {
          channel = String((JSON.parse(req.body) as { channel?: unknown }).channel ?? '');
        } catch {
          answerJson(res, 200, { ok: false, error: 'invalid_json' });
          return;
        }
        answerJson(res, 200, { ok: true, channel, ts: '1503435956.000247', message: { text: 'fake' } });
      } else {
        answerJson(res, 200, { ok: false, error: 'unknown_method' });
      }
    },
    unauthorized(req, res) {
      if (req.path.startsWith('/services/')) answerText(res, 403, 'invalid_token');
      else answerJson(res, 200, { ok: false, error: 'invalid_auth' });
    },
    echo(req, res, status) {
      if (!req.path.startsWith('/services/')) return echoCredentials(req, res, status);
      // Incoming webhooks answer plain text; the webhook's secret is its path.
      res.writeHead(status, { 'content-type': 'text/plain', 'x-echo-path': req.path });
      res.end(`invalid_token ${req.path} ${req.body}`);
    },
  });
}
