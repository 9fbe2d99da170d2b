import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ipaddr from 'ipaddr.js';
import { type HashQueueLimits, hashQueueLimitsFromEnv } from './identity/passwords.js';
import {
  type SignInLimits,
  type SignUpLimits,
  signInLimitsFromEnv,
  signUpLimitsFromEnv,
} from './identity/rate-limit.js';
import { sessionIdleMsFromEnv } from './identity/session-expiry.js';

export interface Config {
  host: string;
  port: number;
  production: boolean;
  /** PGlite data directory (embedded default); unused when `databaseUrl` is set. */
  dataDir: string;
  databaseUrl: string | undefined;
  /** The tables' owner (PostgreSQL): migrations run with it at start-up when given. */
  ownerDatabaseUrl: string | undefined;
  databaseSchema: string | undefined;
  /** Where the embedded default keeps a generated master key: outside the data directory. */
  keyDir: string | undefined;
  webDir: string;
  logLevel: string;
  /**
   * Fastify `trustProxy`: the proxies (addresses or CIDRs) whose X-Forwarded-* headers are honoured, or false.
   * Never `true`: then any client could name its own address and step around the per-address limits.
   */
  trustProxy: false | string[];
  /** Mark the session cookie Secure even when requests arrive over plain http (behind TLS termination). */
  secureCookies: boolean;
  /** LATCHKEY_SESSION_IDLE_HOURS: a session unused this long ends. */
  sessionIdleMs: number;
  /** LATCHKEY_SIGNIN_*: sign-in throttling. */
  signInLimits: Required<SignInLimits>;
  /** LATCHKEY_SIGNUP_*: sign-up throttling. */
  signUpLimits: SignUpLimits;
  /** LATCHKEY_PASSWORD_HASH_* (and libuv's UV_THREADPOOL_SIZE): the password-hashing queue. */
  passwordHashQueue: Required<HashQueueLimits>;
}

/** LATCHKEY_TRUST_PROXY: comma-separated proxy addresses or CIDRs (e.g. `10.0.0.5, 10.1.0.0/16`), or unset. */
export function parseTrustProxy(value: string | undefined): false | string[] {
  if (value === undefined || value.trim() === '' || value.trim() === 'false') return false;
  if (value.trim().toLowerCase() === 'true') {
    throw new Error(
      'LATCHKEY_TRUST_PROXY=true is no longer accepted: it lets any client choose its own address with X-Forwarded-For. ' +
        'List the addresses or CIDRs of your proxies instead, comma-separated (e.g. LATCHKEY_TRUST_PROXY=10.0.0.5,10.1.0.0/16).',
    );
  }
  const entries = value
    .split(',')
    .map((entry) => entry.trim())
    .filter(Boolean);
  entries.forEach((entry, index) => {
    const valid = entry.includes('/') ? ipaddr.isValidCIDR(entry) : ipaddr.isValid(entry);
    if (!valid) {
      throw new Error(
        `LATCHKEY_TRUST_PROXY entry ${index + 1} is not an IP address or CIDR: list your proxies' addresses or CIDRs, comma-separated`,
      );
    }
  });
  return entries;
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = Number(env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error('PORT must be a port number (0–65535)');
  return {
    host: env.HOST ?? '127.0.0.1',
    port,
    production: env.NODE_ENV === 'production',
    dataDir: path.resolve(env.LATCHKEY_DATA_DIR ?? './.latchkey'),
    databaseUrl: env.DATABASE_URL || undefined,
    ownerDatabaseUrl: env.LATCHKEY_OWNER_DATABASE_URL || undefined,
    databaseSchema: env.LATCHKEY_DATABASE_SCHEMA || undefined,
    keyDir: env.LATCHKEY_KEY_DIR || undefined,
    webDir: path.resolve(env.LATCHKEY_WEB_DIR ?? fileURLToPath(new URL('../../web/dist', import.meta.url))),
    logLevel: env.LOG_LEVEL ?? 'info',
    trustProxy: parseTrustProxy(env.LATCHKEY_TRUST_PROXY),
    secureCookies: env.LATCHKEY_SECURE_COOKIES
      ? env.LATCHKEY_SECURE_COOKIES === 'true'
      : env.NODE_ENV === 'production',
    sessionIdleMs: sessionIdleMsFromEnv(env),
    signInLimits: signInLimitsFromEnv(env),
    signUpLimits: signUpLimitsFromEnv(env),
    passwordHashQueue: hashQueueLimitsFromEnv(env),
  };
}
