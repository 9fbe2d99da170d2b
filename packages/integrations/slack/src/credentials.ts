import {
  bearerAuthorization,
  defineCredentialType,
  field,
  joinUrl,
  oauth2Fields,
  withHeader,
} from '@latchkey/core';

export const slackBotToken = defineCredentialType({
  type: 'slackBotToken',
  displayName: 'Slack bot token',
  description: 'A bot user OAuth token of a Slack app installed in your workspace.',
  fields: {
    token: field.secret({
      label: 'Bot token',
      help: 'Found in your Slack app under OAuth & Permissions. Needs the chat:write scope to post.',
      placeholder: 'xoxb-…',
      formatHint: 'Starts with `xoxb-`.',
      pattern: /^xoxb-[A-Za-z0-9-]+$/,
      patternMessage: 'A Slack bot token starts with `xoxb-`, followed by letters, digits and hyphens.',
      example: 'xoxb-fake-bot-token',
    }),
  },
  authenticate: (credential, request) =>
    withHeader(request, 'Authorization', bearerAuthorization(credential.token)),
  test: {
    // auth.test needs no scope, so any valid bot token passes. Slack reports failures with HTTP 200 and ok:false.
    request: (_public, ctx) => ({ method: 'POST', url: joinUrl(ctx.baseUrl(), '/auth.test'), headers: {} }),
    interpret: (response) => {
      const body = parseSlackBody(response.body);
      if (response.status === 200 && body.ok === true) {
        return {
          ok: true,
          message: `Slack accepted the token${body.team ? ` for workspace ${body.team}` : ''}.`,
        };
      }
      if (
        response.status === 401 ||
        response.status === 403 ||
        (body.error &&
          ['invalid_auth', 'not_authed', 'token_revoked', 'account_inactive'].includes(body.error))
      ) {
        return {
          ok: false,
          message: `The credential was rejected by Slack (${body.error ?? `HTTP ${response.status}`}).`,
        };
      }
      return { ok: false, message: `Slack answered with ${body.error ?? `HTTP ${response.status}`}.` };
    },
  },
});

export const slackWebhook = defineCredentialType({
  type: 'slackWebhook',
  displayName: 'Slack incoming webhook',
  description: 'An incoming-webhook URL; the URL itself is the secret.',
  fields: {
    webhookUrl: field.secret({
      label: 'Webhook URL',
      help: 'Created in your Slack app under Incoming Webhooks. It posts to one channel.',
      placeholder: 'https://hooks.slack.com/services/T…/B…/…',
      formatHint: 'Starts with `https://hooks.slack.com/services/`.',
      pattern: /^https:\/\/hooks\.slack\.com\/services\/[A-Za-z0-9]+\/[A-Za-z0-9]+\/[A-Za-z0-9]+$/,
      patternMessage:
        'A Slack webhook URL has the form `https://hooks.slack.com/services/T…/B…/…`, with three parts after `services/`.',
      example: 'https://hooks.slack.com/services/TFAKE/BFAKE/fakewebhooksecret',
    }),
  },
  // The webhook URL is the secret: it replaces the request's URL, keeping the configured host override
  // (LATCHKEY_BASE_URL_SLACK_HOOKS) so tests and gateways can stand in for hooks.slack.com.
  authenticate: (credential, request, ctx) => ({
    ...request,
    url: joinUrl(ctx.baseUrl('hooks'), credential.webhookUrl.slice('https://hooks.slack.com'.length)),
  }),
  // Slack offers no non-posting check for webhooks, so there is no test request; the URL shape is validated.
});

export interface SlackBody {
  ok?: boolean;
  error?: string;
  team?: string;
  channel?: string;
  ts?: string;
}

/**
 * Slack's answer, keeping only what is safe to show: `error` only when it is a snake_case code (a service
 * echoing something else there must not get it into a message), and text fields only as short plain text.
 */
export function parseSlackBody(body: string): SlackBody {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return {};
  }
  if (!parsed || typeof parsed !== 'object') return {};
  const raw = parsed as Record<string, unknown>;
  const text = (value: unknown) =>
    typeof value === 'string' && /^[\w .:-]{1,80}$/.test(value) ? value : undefined;
  return {
    ...(typeof raw.ok === 'boolean' ? { ok: raw.ok } : {}),
    ...(raw.error !== undefined
      ? {
          error:
            typeof raw.error === 'string' && /^[a-z_]{1,64}$/.test(raw.error)
              ? raw.error
              : 'unexpected_error',
        }
      : {}),
    ...(text(raw.team) ? { team: text(raw.team) } : {}),
    ...(text(raw.channel) ? { channel: text(raw.channel) } : {}),
    ...(text(raw.ts) ? { ts: text(raw.ts) } : {}),
  };
}

function jsonObject(text: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(text);
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : {};
  } catch {
    return {};
  }
}

/** Slack's oauth.v2.access errors, as the RFC 6749 codes the server acts on (a refusal for good: reconnect). */
const SLACK_TOKEN_ERRORS: Record<string, string> = {
  invalid_refresh_token: 'invalid_grant',
  invalid_code: 'invalid_grant',
  code_already_used: 'invalid_grant',
  token_revoked: 'invalid_grant',
  invalid_client_id: 'invalid_client',
  bad_client_secret: 'invalid_client',
  invalid_grant_type: 'unsupported_grant_type',
  invalid_scope: 'invalid_scope',
  ratelimited: 'temporarily_unavailable',
};

/**
 * A Slack app installed with "Add to Slack" (OAuth v2): a bot token from `oauth.v2.access`, with Slack's token
 * rotation (12-hour access tokens and a refresh token) when the app has it on. Slack answers its token endpoint
 * with HTTP 200 and `ok:false` on failure, so the type reads the answer itself; "Connected as" is the workspace
 * and the bot user.
 */
export const slackOAuth = defineCredentialType({
  type: 'slackOAuth',
  displayName: 'Slack app (OAuth)',
  description: 'Connect your Slack app with “Add to Slack”; its bot token is refreshed automatically.',
  fields: { ...oauth2Fields },
  oauth2: {
    grant: 'authorizationCode',
    endpoints: (_fields, ctx) => ({
      authorizationUrl: joinUrl(ctx.baseUrl('oauth'), '/authorize'),
      tokenUrl: joinUrl(ctx.baseUrl(), '/oauth.v2.access'),
    }),
    defaultScopes: ['chat:write'],
    scopeSeparator: ',',
    clientAuthentication: 'client_secret_post',
    account: (answer) => {
      const team = (answer.raw.team as { name?: unknown } | undefined)?.name;
      const bot = answer.raw.bot_user_id;
      return [typeof team === 'string' ? team : '', typeof bot === 'string' ? `bot ${bot}` : '']
        .filter(Boolean)
        .join(' · ');
    },
    readTokenResponse: (response) => {
      const body = jsonObject(response.body);
      if (body.ok !== true || typeof body.access_token !== 'string') {
        const error = parseSlackBody(response.body).error ?? `http_${response.status}`;
        return { error: SLACK_TOKEN_ERRORS[error] ?? error };
      }
      return {
        accessToken: body.access_token,
        tokenType: typeof body.token_type === 'string' ? body.token_type : 'bot',
        refreshToken: typeof body.refresh_token === 'string' ? body.refresh_token : undefined,
        expiresIn: typeof body.expires_in === 'number' ? body.expires_in : undefined,
        scope: typeof body.scope === 'string' ? body.scope : undefined,
        raw: body,
      };
    },
    // Slack says an expired or revoked token with HTTP 200 and ok:false.
    isTokenRejected: (response) => {
      const { error } = parseSlackBody(response.body);
      return error === 'token_expired' || error === 'invalid_auth' || error === 'token_revoked';
    },
  },
  test: slackBotToken.test,
});
