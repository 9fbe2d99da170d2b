import type { Registry } from '@latchkey/core';
import type { Kysely } from 'kysely';
import type { Database } from './db/schema.js';
import type { ScryptCost } from './identity/passwords.js';
import type { WorkspaceKeys } from './keys/workspace-keys.js';
import type { RunnerSettings } from './runner/settings.js';

/** What the domain modules need; built once at start-up and shared by every request. */
export interface Services {
  db: Kysely<Database>;
  registry: Registry;
  keys: WorkspaceKeys;
  passwordCost: ScryptCost;
  sessionTtlMs: number;
  /** A session unused for this long is over (`LATCHKEY_SESSION_IDLE_HOURS`, identity/session-expiry.ts). */
  sessionIdleMs: number;
  inviteTtlMs: number;
  /** What the runner may reach, and how (LATCHKEY_OUTBOUND_*, LATCHKEY_BASE_URL_*: config.ts). */
  runnerSettings: RunnerSettings;
  /**
   * Encryptions allowed under one workspace data key before the next version replaces it (keys/key-usage.ts):
   * `LATCHKEY_DATA_KEY_MAX_ENCRYPTIONS`, default 2^30 (AES-GCM with random nonces: NIST's bound is 2^32).
   */
  dataKeyMaxEncryptions: number;
  /** Which database: PostgreSQL serialises token refreshes on the credential's row (oauth/refresh.ts). */
  databaseKind: 'pglite' | 'postgres';
  /** OAuth2 connections (oauth/): where browsers come back to, and how early tokens are renewed. */
  oauth: OAuthSettings;
}

export interface OAuthSettings {
  /** LATCHKEY_PUBLIC_URL, or (set once the server listens) its own address. */
  publicUrl: string;
  refreshSkewMs: number;
}

/** The signed-in user a domain operation acts for. */
export interface Actor {
  userId: string;
}
