/**
 * A generic HTTP API on 127.0.0.1 for the HTTP Request node to call: 200 JSON on any path, and
 * `/status/<code>` answers that status. Each credential type of this plugin is accepted as sent (the tests
 * read what arrived from the recorded requests).
 */
import { answerJson, FakeService } from '@latchkey/core/testing/fake-service';

export function fakeHttp(name = 'HTTP'): FakeService {
  return new FakeService(name, {
    normal(req, res) {
      const status = /^\/status\/(\d{3})$/.exec(req.path);
      answerJson(res, status ? Number(status[1]) : 200, { ok: true, path: req.path });
    },
    unauthorized(_req, res) {
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Bearer' });
      res.end(JSON.stringify({ error: 'unauthorized' }));
    },
  });
}
