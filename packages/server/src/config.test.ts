import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ConfigError, ENVIRONMENT, environmentTable, parseTrustProxy, readConfig } from './config.js';

// Issue 12, item 4: the client address is only taken from X-Forwarded-For when the peer is a listed proxy.

describe('LATCHKEY_TRUST_PROXY', () => {
  it('is off when unset, empty or false', () => {
    expect(readConfig({}).trustProxy).toBe(false);
    expect(parseTrustProxy('')).toBe(false);
    expect(parseTrustProxy('false')).toBe(false);
  });

  it('takes a comma-separated list of proxy addresses and CIDRs, IPv4 and IPv6', () => {
    expect(readConfig({ LATCHKEY_TRUST_PROXY: '10.0.0.5, 10.1.0.0/16,fd00::/8 ,::1' }).trustProxy).toEqual([
      '10.0.0.5',
      '10.1.0.0/16',
      'fd00::/8',
      '::1',
    ]);
  });

  it.each(['true', 'TRUE', ' true '])('refuses %j at start-up, saying to list the proxies', (value) => {
    expect(() => readConfig({ LATCHKEY_TRUST_PROXY: value })).toThrow(
      /LATCHKEY_TRUST_PROXY=true is no longer accepted.*List the addresses or CIDRs of your proxies/,
    );
  });

  it.each(['proxy.example.test', '10.0.0.0/33', '10.0.0.5,loopback', '1.2.3.4/8/8'])(
    'refuses %j, naming the variable and the entry',
    (value) => {
      expect(() => readConfig({ LATCHKEY_TRUST_PROXY: value })).toThrow(
        /^LATCHKEY_TRUST_PROXY entry \d is not an IP address or CIDR/,
      );
    },
  );
});

describe('the environment, one schema', () => {
  it('answers every bad variable in one error, by name and never by value', () => {
    const env = {
      PORT: 'eighty',
      LATCHKEY_SIGNIN_MAX_PER_ACCOUNT: '-1',
      LATCHKEY_SESSION_IDLE_HOURS: 'fake-idle-value',
      LATCHKEY_BASE_URL_SENDGRID: 'fake-not-a-url',
      LATCHKEY_OUTBOUND_TIMEOUT_MS: '12',
    };
    let error: unknown;
    try {
      readConfig(env);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const { message, problems } = error as ConfigError;
    expect(problems).toEqual([
      'PORT must be a port number (0–65535)',
      'LATCHKEY_SESSION_IDLE_HOURS must be a positive number of hours (for example 168)',
      'LATCHKEY_SIGNIN_MAX_PER_ACCOUNT must be a positive whole number',
      'LATCHKEY_BASE_URL_SENDGRID must be an http:// or https:// URL',
    ]);
    expect(message).toMatch(/^4 environment variables are not valid:\n- PORT must be/);
    for (const value of ['eighty', '-1', 'fake-idle-value', 'fake-not-a-url'])
      expect(message).not.toContain(value);
    // The rule across two variables is listed with the others.
    expect(() =>
      readConfig({ LATCHKEY_PASSWORD_HASH_CONCURRENCY: '4', LATCHKEY_BASE_URL_SENDGRID: 'fake-not-a-url' }),
    ).toThrow(
      /^2 environment variables are not valid:\n- LATCHKEY_BASE_URL_SENDGRID .*\n- LATCHKEY_PASSWORD_HASH_CONCURRENCY must be below/,
    );
    // The good one among them was read: nothing to say about it.
    expect(readConfig({ LATCHKEY_OUTBOUND_TIMEOUT_MS: '12' }).runnerSettings.timeoutMs).toBe(12);
  });

  it('gives each variable its documented default', () => {
    const config = readConfig({}, { cpus: 8 });
    expect(config.port).toBe(3000);
    expect(config.host).toBe('127.0.0.1');
    expect(config.secureCookies).toBe(false);
    expect(readConfig({ NODE_ENV: 'production' }).secureCookies).toBe(true);
    expect(config.passwordHashQueue).toEqual({ concurrency: 2, maxWaiting: 16, maxWaitMs: 3000 });
    expect(config.runnerSettings).toMatchObject({ timeoutMs: 15_000, maxResponseBytes: 1024 * 1024 });
    expect(config.dataKeyMaxEncryptions).toBe(2 ** 30);
  });

  it('is the table of docs/operations.md ("Running"), generated from the schema', () => {
    const file = fileURLToPath(new URL('../../../docs/operations.md', import.meta.url));
    const doc = readFileSync(file, 'utf8');
    const [before, rest] = doc.split(TABLE_START);
    const after = rest?.split(TABLE_END)[1];
    expect(before !== undefined && after !== undefined, `${TABLE_START} … ${TABLE_END} markers`).toBe(true);
    const generated = `${before}${TABLE_START}\n${environmentTable()}\n${TABLE_END}${after}`;
    // LATCHKEY_WRITE_DOCS=1 rewrites the table from the schema (then review and commit the change).
    if (process.env.LATCHKEY_WRITE_DOCS === '1') writeFileSync(file, generated);
    expect(doc, 'docs/operations.md differs from config.ts: rerun this test with LATCHKEY_WRITE_DOCS=1').toBe(
      generated,
    );
    for (const name of Object.keys(ENVIRONMENT)) expect(doc).toContain(`| \`${name}\` |`);
  });
});

const TABLE_START = '<!-- environment table: generated from packages/server/src/config.ts -->';
const TABLE_END = '<!-- end of environment table -->';
