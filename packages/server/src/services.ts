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
  inviteTtlMs: number;
  runner: RunnerSettings;
}

/** The signed-in user a domain operation acts for. */
export interface Actor {
  userId: string;
}
