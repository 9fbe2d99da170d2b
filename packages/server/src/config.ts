/**
 * The whole environment of the server in one place: every variable it reads, with its default and meaning
 * (`ENVIRONMENT`), is parsed once at start-up by one zod schema (`readConfig`), and a bad configuration stops
 * start-up with ONE error listing every bad variable (by name and what it must be — never its value, some are
 * secrets). The table in docs/operations.md is generated from `ENVIRONMENT` (`environmentTable`; a test keeps
 * it equal). Modules receive typed settings from `Config`; none reads `process.env` itself.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import type { MasterKeyVariables } from './crypto/master-key.js';
import { DEFAULT_HASH_QUEUE, defaultHashConcurrency, type HashQueueLimits } from './identity/passwords.js';
import {
  DEFAULT_SIGN_IN_LIMITS,
  DEFAULT_SIGN_UP_LIMITS,
  type SignInLimits,
  type SignUpLimits,
} from './identity/rate-limit.js';
import { DEFAULT_SESSION_IDLE_HOURS } from './identity/session-expiry.js';
import {
  checkDataKeyMaxEncryptions,
  DATA_KEY_LIMIT_VARIABLE,
  DEFAULT_DATA_KEY_MAX_ENCRYPTIONS,
} from './keys/key-usage.js';
import { parseOutboundAllow } from './runner/outbound-guard.js';
import type { RunnerSettings } from './runner/settings.js';

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
  /** LATCHKEY_INVITE_HOURS: how long an invite link admits its person. */
  inviteTtlMs: number;
  /** LATCHKEY_SIGNIN_*: sign-in throttling. */
  signInLimits: Required<SignInLimits>;
  /** LATCHKEY_SIGNUP_*: sign-up throttling. */
  signUpLimits: SignUpLimits;
  /** LATCHKEY_PASSWORD_HASH_* (and libuv's UV_THREADPOOL_SIZE): the password-hashing queue. */
  passwordHashQueue: Required<HashQueueLimits>;
  /** LATCHKEY_OUTBOUND_*, LATCHKEY_BASE_URL_*: what the runner may reach, and how. */
  runnerSettings: RunnerSettings;
  /** LATCHKEY_DATA_KEY_MAX_ENCRYPTIONS: encryptions per workspace data key. */
  dataKeyMaxEncryptions: number;
  /** LATCHKEY_PUBLIC_URL: where browsers reach the server (the OAuth2 redirect URI); default the listen address. */
  publicUrl: string | undefined;
  /** LATCHKEY_OAUTH_REFRESH_SKEW_SECONDS: an access token expiring this soon is renewed before it is used. */
  oauthRefreshSkewMs: number;
  /**
   * The master-key variables, for `loadMasterKeys` (crypto/master-key.ts: it reads the key files too, and
   * checks the key material). The server removes the inline keys from its environment once they are loaded.
   */
  masterKeyVariables: MasterKeyVariables;
}

type Parsed<T> = z.ZodType<T, string | undefined>;

/** A variable of the environment: its zod schema (unset or blank is `undefined`), default and meaning. */
interface Variable<T> {
  schema: Parsed<T>;
  /** The default as docs/operations.md shows it (`—`: none). */
  shown: string;
  meaning: string;
}

const unsetOrBlank = (raw: string | undefined): raw is undefined => raw === undefined || raw.trim() === '';

/** A variable parsed by `read` (given the set, non-blank text); a thrown Error becomes its issue. */
function variable<T>(shown: string, meaning: string, read: (raw: string) => T, fallback: T): Variable<T>;
function variable<T>(shown: string, meaning: string, read: (raw: string) => T): Variable<T | undefined>;
function variable<T>(shown: string, meaning: string, read: (raw: string) => T, fallback?: T): Variable<T> {
  const schema = z
    .string()
    .optional()
    .transform((raw, ctx) => {
      if (unsetOrBlank(raw)) return fallback as T;
      try {
        return read(raw);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
        return z.NEVER;
      }
    });
  return { schema: schema as unknown as Parsed<T>, shown, meaning };
}

/** Text exactly as given, blank included (the master-key variables: an empty key is an error of its own there). */
const verbatim = (shown: string, meaning: string): Variable<string | undefined> => ({
  schema: z.string().optional(),
  shown,
  meaning,
});

/** Text as given (`undefined` when unset or blank). */
const text = (shown: string, meaning: string) => variable(shown, meaning, (raw) => raw);

/**
 * A whole number: positive, or at least `min`. The message names the variable (`name` is filled in below), the
 * same sentence whatever the input.
 */
function wholeNumber(fallback: number, shown: string, meaning: string, min?: number): Variable<number> {
  return variable(shown, meaning, (raw) => readWholeNumber(raw, min), fallback);
}

/** How long an invite link admits its person unless LATCHKEY_INVITE_HOURS says otherwise: seven days. */
export const DEFAULT_INVITE_HOURS = 7 * 24;

/** A duration in hours, fractions allowed, read as milliseconds. */
function hours(fallbackHours: number, shown: string, meaning: string): Variable<number> {
  return variable(
    shown,
    meaning,
    (raw) => {
      const value = Number(raw);
      if (!Number.isFinite(value) || value <= 0) {
        throw new Error(`must be a positive number of hours (for example ${fallbackHours})`);
      }
      return Math.round(value * 3600 * 1000);
    },
    fallbackHours * 3600 * 1000,
  );
}

function readWholeNumber(raw: string, min?: number): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < (min ?? 1)) {
    throw new Error(
      min === undefined ? 'must be a positive whole number' : `must be a whole number of at least ${min}`,
    );
  }
  return value;
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

const d = { signIn: DEFAULT_SIGN_IN_LIMITS, signUp: DEFAULT_SIGN_UP_LIMITS };

/** Every variable the server reads, in the order docs/operations.md lists them. */
export const ENVIRONMENT = {
  HOST: text('`127.0.0.1`', 'the address the server listens on'),
  PORT: variable(
    '`3000`',
    'the port the server listens on (`0`: any free port)',
    (raw) => {
      const port = Number(raw);
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        throw new Error('must be a port number (0–65535)');
      return port;
    },
    3000,
  ),
  NODE_ENV: text(
    '—',
    '`production`: Secure cookies by default, and a master key must be given (none is generated)',
  ),
  LOG_LEVEL: text('`info`', 'pino log level'),
  LATCHKEY_DATA_DIR: text('`./.latchkey`', 'PGlite data directory (embedded default)'),
  DATABASE_URL: text(
    '—',
    'use PostgreSQL instead of PGlite: the **application\'s** restricted login role (two-role mode), or, alone, the database\'s owner or a superuser (one-URL mode); see "PostgreSQL roles"',
  ),
  LATCHKEY_OWNER_DATABASE_URL: text(
    '—',
    "the tables' owner: migrations at start-up and by `pnpm migrate`, and the `latchkey keys` commands (without it those use `DATABASE_URL`; the server then migrates with it when that role may — the one-URL mode — and otherwise only checks that migrations are current)",
  ),
  LATCHKEY_DATABASE_SCHEMA: text('—', 'PostgreSQL schema to create and use (tests, shared databases)'),
  LATCHKEY_MASTER_KEY: verbatim(
    '—',
    'the master key, base64 of 32 bytes (required with PostgreSQL or `NODE_ENV=production`); the server removes it from its environment once loaded',
  ),
  LATCHKEY_MASTER_KEY_FILE: verbatim(
    '—',
    'a file holding the master key instead; a key file that group or others can read (`mode & 077`) stops start-up — `chmod 600` it',
  ),
  LATCHKEY_PREVIOUS_MASTER_KEYS: verbatim(
    '—',
    'comma-separated old keys still accepted for unwrapping (rotation); also removed from the environment once loaded',
  ),
  LATCHKEY_KEY_DIR: text(
    '`$XDG_CONFIG_HOME/latchkey` or `~/.config/latchkey`',
    'where the embedded default generates `master.key`',
  ),
  XDG_CONFIG_HOME: text('—', 'the base of the default `LATCHKEY_KEY_DIR` (when an absolute path)'),
  LATCHKEY_WEB_DIR: text('`packages/web/dist`', 'the built web app served at `/`'),
  LATCHKEY_OUTBOUND_ALLOW: variable(
    '—',
    'hosts, IPs or CIDRs the HTTP Request node may reach although private',
    (raw) => parseOutboundAllow(raw),
    parseOutboundAllow(undefined),
  ),
  LATCHKEY_OUTBOUND_TIMEOUT_MS: wholeNumber(15_000, '`15000`', 'milliseconds an outbound call may take'),
  LATCHKEY_OUTBOUND_MAX_BYTES: wholeNumber(
    1024 * 1024,
    '`1048576` (1 MiB)',
    'the largest outbound response read',
  ),
  LATCHKEY_TRUST_PROXY: variable(
    '—',
    'comma-separated addresses/CIDRs of the proxies in front (e.g. `10.0.0.5,10.1.0.0/16`): honour their `X-Forwarded-*` (client address for throttling, https for the Secure cookie); `true` is refused at start-up (any client could name its own address)',
    parseTrustProxy,
    false as const,
  ),
  LATCHKEY_SECURE_COOKIES: variable(
    'on in production',
    'treat every request as https (behind TLS termination without `LATCHKEY_TRUST_PROXY`): the `__Host-latchkey_session` Secure cookie and HSTS',
    (raw) => raw === 'true',
  ),
  LATCHKEY_SESSION_IDLE_HOURS: hours(
    DEFAULT_SESSION_IDLE_HOURS,
    `\`${DEFAULT_SESSION_IDLE_HOURS}\` (7 days)`,
    'a session unused for this long ends (besides its absolute 30 days); any positive number of hours',
  ),
  LATCHKEY_INVITE_HOURS: hours(
    DEFAULT_INVITE_HOURS,
    `\`${DEFAULT_INVITE_HOURS}\` (7 days)`,
    'an invite link admits its person for this long after it was made; any positive number of hours',
  ),
  LATCHKEY_DATA_KEY_MAX_ENCRYPTIONS: variable(
    `\`${DEFAULT_DATA_KEY_MAX_ENCRYPTIONS}\` (2^30)`,
    "encryptions per workspace data key; at the limit the next data-key version takes over automatically (AES-GCM with random nonces: NIST's bound is 2^32, the highest value accepted; anything else not a whole number from 1 to 2^32 stops start-up)",
    // Digits only: no sign, exponent, hex, fraction or unit that Number() would quietly accept or misread.
    (raw) =>
      checkDataKeyMaxEncryptions(/^\s*\d+\s*$/.test(raw) ? Number(raw) : Number.NaN, DATA_KEY_LIMIT_VARIABLE),
    DEFAULT_DATA_KEY_MAX_ENCRYPTIONS,
  ),
  LATCHKEY_PUBLIC_URL: variable(
    'the listen address',
    "the server's address as browsers reach it (`https://latchkey.example.com`): OAuth2 providers send people back to `<this>/oauth/callback`, the redirect URI to register with them",
    (raw) => {
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        throw new Error('must be an http:// or https:// URL, e.g. https://latchkey.example.com');
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:')
        throw new Error('must be an http:// or https:// URL, e.g. https://latchkey.example.com');
      return url.origin;
    },
  ),
  LATCHKEY_OAUTH_REFRESH_SKEW_SECONDS: wholeNumber(
    60,
    '`60`',
    'an OAuth2 access token that expires within this many seconds is renewed before it is used',
    0,
  ),
  LATCHKEY_SIGNIN_MAX_PER_ACCOUNT_ADDRESS: wholeNumber(
    d.signIn.perAccountAndAddress,
    `\`${d.signIn.perAccountAndAddress}\``,
    'sign-in attempts per (account, client address) per window, then that address is refused for that account',
  ),
  LATCHKEY_SIGNIN_MAX_PER_ADDRESS: wholeNumber(
    d.signIn.perAddress,
    `\`${d.signIn.perAddress}\``,
    'sign-in attempts per client address per window (any accounts), then refused',
  ),
  LATCHKEY_SIGNIN_MAX_PER_ACCOUNT: wholeNumber(
    d.signIn.perAccount,
    `\`${d.signIn.perAccount}\``,
    'sign-in attempts per account (email, from every address) per window, then each attempt is *slowed*, never refused',
  ),
  LATCHKEY_SIGNIN_MAX_DELAY_SECONDS: wholeNumber(
    d.signIn.maxDelayMs / 1000,
    `\`${d.signIn.maxDelayMs / 1000}\``,
    'the longest a slowed sign-in waits (250 ms, doubling per attempt)',
  ),
  LATCHKEY_SIGNIN_WINDOW_SECONDS: wholeNumber(
    d.signIn.windowMs / 1000,
    `\`${d.signIn.windowMs / 1000}\``,
    'the sign-in window',
  ),
  LATCHKEY_SIGNUP_MAX_PER_ADDRESS: wholeNumber(
    d.signUp.perAddress,
    `\`${d.signUp.perAddress}\``,
    'sign-ups per client address per window',
  ),
  LATCHKEY_SIGNUP_MAX_TOTAL: wholeNumber(
    d.signUp.total,
    `\`${d.signUp.total}\``,
    'sign-ups in total per window',
  ),
  LATCHKEY_SIGNUP_WINDOW_SECONDS: wholeNumber(
    d.signUp.windowMs / 1000,
    `\`${d.signUp.windowMs / 1000}\``,
    'the sign-up window',
  ),
  LATCHKEY_PASSWORD_HASH_CONCURRENCY: variable(
    'half the libuv pool and one less than the CPUs, at least 1',
    'password hashes (scrypt) at once; must be below `UV_THREADPOOL_SIZE`',
    (raw) => readWholeNumber(raw, 1),
  ),
  LATCHKEY_PASSWORD_HASH_QUEUE: wholeNumber(
    DEFAULT_HASH_QUEUE.maxWaiting,
    `\`${DEFAULT_HASH_QUEUE.maxWaiting}\``,
    'hashes that may wait before a sign-up/sign-in is answered 429',
    0,
  ),
  LATCHKEY_PASSWORD_HASH_MAX_WAIT_MS: wholeNumber(
    DEFAULT_HASH_QUEUE.maxWaitMs,
    `\`${DEFAULT_HASH_QUEUE.maxWaitMs}\``,
    'the longest expected wait for a hash before a sign-up/sign-in is answered 429',
    1,
  ),
  UV_THREADPOOL_SIZE: variable(
    '`4`',
    "libuv's thread pool (read by Node.js itself); password hashing leaves at least one thread free",
    (raw) => {
      const size = Number(raw);
      return Number.isInteger(size) && size > 0 ? size : 4;
    },
    4,
  ),
} satisfies Record<string, Variable<unknown>>;

/** `LATCHKEY_BASE_URL_<INTEGRATION>[_<VARIANT>]`: a family of variables, one per integration base URL. */
const BASE_URL_PREFIX = 'LATCHKEY_BASE_URL_';
const BASE_URL_ROW = {
  name: `${BASE_URL_PREFIX}<INTEGRATION>[_<VARIANT>]`,
  shown: "the services' own",
  meaning: "override an integration's base URL (tests, gateways), e.g. `LATCHKEY_BASE_URL_MAILGUN_EU`",
};

function baseUrlOverrides(env: NodeJS.ProcessEnv, issues: string[]): Record<string, string> {
  const overrides: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith(BASE_URL_PREFIX) || !value) continue;
    // Checked at start-up: a malformed override would otherwise fail every run of the integration's nodes.
    let url: URL | undefined;
    try {
      url = new URL(value);
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      issues.push(`${name} must be an http:// or https:// URL`);
      continue;
    }
    overrides[name] = value.replace(/\/+$/, '');
  }
  return overrides;
}

const environmentSchema = z.object(
  Object.fromEntries(Object.entries(ENVIRONMENT).map(([name, v]) => [name, v.schema])) as {
    [K in keyof typeof ENVIRONMENT]: (typeof ENVIRONMENT)[K]['schema'];
  },
);

/** The issue of one variable as a sentence: its own wording names it already, or is prefixed with its name. */
const sentence = (name: string, message: string) =>
  message.startsWith(name) ? message : `${name} ${message}`;

/** Start-up stops with this: every bad variable, one sentence each (never a value). */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(
      problems.length === 1
        ? (problems[0] as string)
        : `${problems.length} environment variables are not valid:\n${problems.map((p) => `- ${p}`).join('\n')}`,
    );
  }
}

/**
 * Parses the whole environment once. `cpus` (tests) stands in for the machine's CPU count, which the default
 * password-hashing concurrency depends on.
 */
export function readConfig(env: NodeJS.ProcessEnv = process.env, options: { cpus?: number } = {}): Config {
  const problems: string[] = [];
  const parsed = environmentSchema.safeParse(env);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) problems.push(sentence(String(issue.path[0]), issue.message));
  }
  const overrides = baseUrlOverrides(env, problems);
  // The one rule across two variables, listed with the rest (the default concurrency is always below the pool).
  if (parsed.success) {
    const { UV_THREADPOOL_SIZE: pool, LATCHKEY_PASSWORD_HASH_CONCURRENCY: concurrency } = parsed.data;
    if (concurrency !== undefined && concurrency >= pool && pool > 1) {
      problems.push(
        `LATCHKEY_PASSWORD_HASH_CONCURRENCY must be below the libuv thread pool size (UV_THREADPOOL_SIZE, ${pool}), so password hashing cannot take every thread`,
      );
    }
  }
  if (!parsed.success || problems.length > 0) throw new ConfigError(problems);
  const v = parsed.data;

  const pool = v.UV_THREADPOOL_SIZE;
  const concurrency = v.LATCHKEY_PASSWORD_HASH_CONCURRENCY ?? defaultHashConcurrency(pool, options.cpus);
  const production = v.NODE_ENV === 'production';
  return {
    host: v.HOST ?? '127.0.0.1',
    port: v.PORT,
    production,
    dataDir: path.resolve(v.LATCHKEY_DATA_DIR ?? './.latchkey'),
    databaseUrl: v.DATABASE_URL,
    ownerDatabaseUrl: v.LATCHKEY_OWNER_DATABASE_URL,
    databaseSchema: v.LATCHKEY_DATABASE_SCHEMA,
    keyDir: v.LATCHKEY_KEY_DIR,
    webDir: path.resolve(v.LATCHKEY_WEB_DIR ?? fileURLToPath(new URL('../../web/dist', import.meta.url))),
    logLevel: v.LOG_LEVEL ?? 'info',
    trustProxy: v.LATCHKEY_TRUST_PROXY,
    secureCookies: v.LATCHKEY_SECURE_COOKIES ?? production,
    sessionIdleMs: v.LATCHKEY_SESSION_IDLE_HOURS,
    inviteTtlMs: v.LATCHKEY_INVITE_HOURS,
    signInLimits: {
      perAccount: v.LATCHKEY_SIGNIN_MAX_PER_ACCOUNT,
      perAddress: v.LATCHKEY_SIGNIN_MAX_PER_ADDRESS,
      perAccountAndAddress: v.LATCHKEY_SIGNIN_MAX_PER_ACCOUNT_ADDRESS,
      windowMs: v.LATCHKEY_SIGNIN_WINDOW_SECONDS * 1000,
      maxDelayMs: v.LATCHKEY_SIGNIN_MAX_DELAY_SECONDS * 1000,
    },
    signUpLimits: {
      perAddress: v.LATCHKEY_SIGNUP_MAX_PER_ADDRESS,
      total: v.LATCHKEY_SIGNUP_MAX_TOTAL,
      windowMs: v.LATCHKEY_SIGNUP_WINDOW_SECONDS * 1000,
    },
    passwordHashQueue: {
      concurrency,
      maxWaiting: v.LATCHKEY_PASSWORD_HASH_QUEUE,
      maxWaitMs: v.LATCHKEY_PASSWORD_HASH_MAX_WAIT_MS,
    },
    runnerSettings: {
      baseUrlOverrides: overrides,
      policy: v.LATCHKEY_OUTBOUND_ALLOW,
      timeoutMs: v.LATCHKEY_OUTBOUND_TIMEOUT_MS,
      maxResponseBytes: v.LATCHKEY_OUTBOUND_MAX_BYTES,
      maxRedirects: 5,
    },
    dataKeyMaxEncryptions: v.LATCHKEY_DATA_KEY_MAX_ENCRYPTIONS,
    publicUrl: v.LATCHKEY_PUBLIC_URL,
    oauthRefreshSkewMs: v.LATCHKEY_OAUTH_REFRESH_SKEW_SECONDS * 1000,
    masterKeyVariables: {
      NODE_ENV: v.NODE_ENV,
      LATCHKEY_MASTER_KEY: v.LATCHKEY_MASTER_KEY,
      LATCHKEY_MASTER_KEY_FILE: v.LATCHKEY_MASTER_KEY_FILE,
      LATCHKEY_PREVIOUS_MASTER_KEYS: v.LATCHKEY_PREVIOUS_MASTER_KEYS,
      LATCHKEY_KEY_DIR: v.LATCHKEY_KEY_DIR,
      XDG_CONFIG_HOME: v.XDG_CONFIG_HOME,
    },
  };
}

/** The variables as the Markdown table of docs/operations.md ("Running"). */
export function environmentTable(): string {
  const rows = [
    ...Object.entries(ENVIRONMENT).map(([name, v]) => ({ name, shown: v.shown, meaning: v.meaning })),
    BASE_URL_ROW,
  ];
  return [
    '| variable | default | meaning |',
    '|---|---|---|',
    ...rows.map((r) => `| \`${r.name}\` | ${r.shown} | ${r.meaning} |`),
  ].join('\n');
}
