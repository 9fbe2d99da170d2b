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

export interface FakeSlackOAuth {
  /** `<url>/api` is LATCHKEY_BASE_URL_SLACK; `<url>/oauth/v2` is LATCHKEY_BASE_URL_SLACK_OAUTH. */
  url: string;
  clientId: string;
  clientSecret: string;
  /** Lifetime (seconds) of the access tokens issued from now on (Slack's rotation: 43200). */
  setTokenLifetime(seconds: number): void;
  /** oauth.v2.access calls, by kind. */
  calls: { code: number; refresh: number };
  /** Messages chat.postMessage accepted, with the token each came with. */
  posted: { channel: string; token: string }[];
  /** The app is removed from the Slack workspace: every access and refresh token stops working. */
  revokeEverything(): void;
  close(): Promise<void>;
}

/**
 * Slack's OAuth v2 with token rotation on, on 127.0.0.1: "Add to Slack" approves at once and sends the browser
 * back with a code; `oauth.v2.access` exchanges it (client id and secret in the form, as Slack takes them) for
 * a 12-hour bot token and a refresh token, and a refresh token works once (used again: invalid_refresh_token).
 * The Web API accepts only the current, unexpired access tokens (`token_expired`, `invalid_auth` otherwise),
 * answering HTTP 200 with `ok:false` like Slack.
 */
export async function startFakeSlackOAuth(): Promise<FakeSlackOAuth> {
  const { createServer } = await import('node:http');
  const clientId = '0000000000.fake-client';
  const clientSecret = 'fake-slack-client-secret';
  let lifetime = 43_200;
  let serial = 0;
  const codes = new Set<string>();
  const refreshTokens = new Set<string>();
  const accessTokens = new Map<string, number>();
  const calls = { code: 0, refresh: 0 };
  const posted: { channel: string; token: string }[] = [];
  const json = (res: import('node:http').ServerResponse, body: unknown) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const issue = () => {
    serial += 1;
    const access = `xoxe.xoxb-fake-${serial}`;
    const refresh = `xoxe-1-fake-refresh-${serial}`;
    accessTokens.set(access, Date.now() + lifetime * 1000);
    refreshTokens.add(refresh);
    return {
      ok: true,
      access_token: access,
      token_type: 'bot',
      scope: 'chat:write',
      bot_user_id: 'U0FAKEBOT',
      app_id: 'A0FAKE',
      team: { id: 'T0FAKE', name: 'Fake Team' },
      refresh_token: refresh,
      expires_in: lifetime,
    };
  };
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (req.method === 'GET' && url.pathname === '/oauth/v2/authorize') {
        const redirect = new URL(url.searchParams.get('redirect_uri') ?? '');
        if (url.searchParams.get('client_id') !== clientId) {
          res.writeHead(400);
          res.end('invalid_client_id');
          return;
        }
        const code = `fake-code-${++serial}`;
        codes.add(code);
        redirect.searchParams.set('code', code);
        redirect.searchParams.set('state', url.searchParams.get('state') ?? '');
        res.writeHead(302, { location: redirect.toString() });
        res.end();
        return;
      }
      if (req.method === 'POST' && url.pathname === '/api/oauth.v2.access') {
        const form = new URLSearchParams(body);
        if (form.get('client_id') !== clientId) return json(res, { ok: false, error: 'invalid_client_id' });
        if (form.get('client_secret') !== clientSecret)
          return json(res, { ok: false, error: 'bad_client_secret' });
        if (form.get('grant_type') === 'refresh_token') {
          calls.refresh += 1;
          const token = form.get('refresh_token') ?? '';
          if (!refreshTokens.delete(token)) return json(res, { ok: false, error: 'invalid_refresh_token' });
          return json(res, issue());
        }
        calls.code += 1;
        const code = form.get('code') ?? '';
        if (!codes.delete(code)) return json(res, { ok: false, error: 'invalid_code' });
        return json(res, issue());
      }
      if (req.method === 'POST' && url.pathname.startsWith('/api/')) {
        const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
        const expires = accessTokens.get(token);
        if (expires === undefined) return json(res, { ok: false, error: 'invalid_auth' });
        if (expires <= Date.now()) return json(res, { ok: false, error: 'token_expired' });
        if (url.pathname === '/api/auth.test')
          return json(res, { ok: true, team: 'Fake Team', user: 'fakebot' });
        if (url.pathname === '/api/chat.postMessage') {
          let channel = '';
          try {
            channel = String((JSON.parse(body) as { channel?: unknown }).channel ?? '');
          } catch {
            return json(res, { ok: false, error: 'invalid_json' });
          }
          posted.push({ channel, token });
          return json(res, { ok: true, channel, ts: '1503435956.000247' });
        }
      }
      json(res, { ok: false, error: 'unknown_method' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    clientId,
    clientSecret,
    setTokenLifetime(seconds) {
      lifetime = seconds;
    },
    calls,
    posted,
    revokeEverything() {
      accessTokens.clear();
      refreshTokens.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
