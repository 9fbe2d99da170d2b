import path from 'node:path';
import { fileURLToPath } from 'node:url';

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
  /** Fastify `trustProxy`: honour X-Forwarded-* from a proxy in front (`true`, or comma-separated addresses/CIDRs). */
  trustProxy: boolean | string;
  /** Mark the session cookie Secure even when requests arrive over plain http (behind TLS termination). */
  secureCookies: boolean;
}

function parseTrustProxy(value: string | undefined): boolean | string {
  if (!value || value === 'false') return false;
  return value === 'true' ? true : value;
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
  };
}
