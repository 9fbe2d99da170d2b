import { AsyncLocalStorage } from 'node:async_hooks';
import {
  CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  type Driver,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';

/**
 * Row-level security, the second wall behind every query's own `workspace_id` filter (docs/security.md).
 *
 * The policies (migration 0005) let a statement see a workspace's rows only when `latchkey.workspace_id` is
 * set to that workspace (memberships and workspaces also the rows of `latchkey.user_id`), and they bind the
 * application role `latchkey_app`. A request's scope — the workspace it names and the signed-in user — lives in
 * an AsyncLocalStorage, and the driver below applies it, with the role switched to `latchkey_app`, to every
 * statement before it runs:
 *   - a Kysely transaction gets it with `set_config(…, true)` (transaction-local) right after BEGIN, in the
 *     same round trip;
 *   - a statement outside a transaction (its own implicit transaction) runs under the connection's session
 *     settings, which the driver first sets to the statement's scope when they hold another one — one round
 *     trip, none when the connection's previous statement had the same scope (docs/decisions.md);
 *   - a statement without a scope first clears a scope the connection still holds: on PostgreSQL the
 *     application's login role then sees no workspace-scoped row at all; on PGlite (one in-process superuser
 *     session) it runs as the superuser, which is how migrations, the key check and maintenance run there;
 *   - in the one-URL mode (PostgreSQL whose login role owns the tables, db/connect.ts) the session stays
 *     `latchkey_app` when the scope is cleared, a new pooled connection is switched before its first
 *     statement or transaction, and an application statement that could switch it back is refused.
 * Every statement goes through this driver, so none runs under a scope it was not given.
 */
export interface DbScope {
  workspaceId?: string | undefined;
  userId?: string | undefined;
}

/** The role the policies and grants name; the application's login role must be a member of it. */
export const APP_ROLE = 'latchkey_app';

const storage = new AsyncLocalStorage<DbScope>();

/** Runs `fn` with its database statements scoped to a workspace and/or user (nested scopes replace outer ones). */
export function withDbScope<T>(scope: DbScope, fn: () => Promise<T>): Promise<T> {
  return storage.run(scope, fn);
}

/** Statements whose result no scope changes: the connection's scope is left as it is. */
const SELF_SCOPED: DbScope = Object.freeze({});

/**
 * Runs `fn`, whose statements do not depend on a scope — they set their own (migration 0005's functions) or
 * touch no workspace-scoped table (the session check) — so no round trip is spent changing the connection's.
 */
export function scopeIndependent<T>(fn: () => Promise<T>): Promise<T> {
  return storage.run(SELF_SCOPED, fn);
}

export function currentDbScope(): DbScope | undefined {
  const scope = storage.getStore();
  return scope === SELF_SCOPED ? undefined : scope;
}

// Ids are UUIDs (identity/tokens.ts newId); the scope statement inlines them, so anything else is refused here
// and becomes the empty scope, which matches no row.
const SCOPE_VALUE = /^[A-Za-z0-9_-]{1,128}$/;
const scopeValue = (value: string | undefined) => (value && SCOPE_VALUE.test(value) ? value : '');
const literal = (value: string | undefined) => `'${scopeValue(value)}'`;

function beginPlain(settings: TransactionSettings = {}): string {
  const modes = [
    settings.isolationLevel ? `isolation level ${settings.isolationLevel}` : '',
    settings.accessMode ?? '',
  ].filter(Boolean);
  return modes.length ? `start transaction ${modes.join(', ')}` : 'begin';
}

/** `begin` (with its isolation level) and the scope, as one simple-protocol round trip. */
function beginScoped(scope: DbScope, settings: TransactionSettings = {}): string {
  return (
    `${beginPlain(settings)}; select set_config('latchkey.workspace_id', ${literal(scope.workspaceId)}, true), ` +
    `set_config('latchkey.user_id', ${literal(scope.userId)}, true), set_config('role', '${APP_ROLE}', true)`
  );
}

const keyOf = (scope: DbScope) => `${scopeValue(scope.workspaceId)}/${scopeValue(scope.userId)}`;

/** The scope as the connection's session settings, for the statements that follow outside transactions. */
function sessionScope(scope: DbScope): CompiledQuery {
  return CompiledQuery.raw(
    `select set_config('latchkey.workspace_id', $1, false), set_config('latchkey.user_id', $2, false), set_config('role', '${APP_ROLE}', false)`,
    [scopeValue(scope.workspaceId), scopeValue(scope.userId)],
  );
}

/** No scope; the role back to the login role (two-role: the restricted one; PGlite: its superuser). */
const CLEAR_SESSION_SCOPE = CompiledQuery.raw(
  `select set_config('latchkey.workspace_id', '', false), set_config('latchkey.user_id', '', false), set_config('role', 'none', false)`,
);

/** No scope, still as `latchkey_app`: the one-URL mode's login role owns the tables. */
const CLEAR_SESSION_SCOPE_PINNED = CompiledQuery.raw(
  `select set_config('latchkey.workspace_id', '', false), set_config('latchkey.user_id', '', false), set_config('role', '${APP_ROLE}', false)`,
);

/** Ignorable text between statements: white space, comments, opening parentheses. */
const GAP = String.raw`(?:\s|\(|--[^\n]*(?:\n|$)|/\*[\s\S]*?\*/)*`;
const DATA_STATEMENT = new RegExp(`^${GAP}(?:select|insert|update|delete|with|values|explain)\\b`, 'i');
const EMPTY_STATEMENT = new RegExp(`^${GAP}$`);
const FOREIGN_SET_CONFIG = /\bset_config"?\s*\(\s*(?!'latchkey\.)/i;

/**
 * The one-URL mode's guard: an application statement may read and write data, never switch the role back to
 * the tables' owner — no `SET`/`RESET ROLE`, `SET SESSION AUTHORIZATION`, `RESET ALL`, `DISCARD`, DO blocks or
 * DDL (only select, insert, update, delete, with, values and explain statements) and no `set_config` but the
 * scope's. Every `;`-separated part is checked (a `;` inside a literal can only make it stricter).
 */
export function refuseRoleChange(text: string): void {
  for (const part of text.split(';')) {
    if (DATA_STATEMENT.test(part) || EMPTY_STATEMENT.test(part)) continue;
    throw new Error(
      `Refused on the application connection: only select, insert, update, delete and with statements run as ${APP_ROLE} (one-URL mode)`,
    );
  }
  if (FOREIGN_SET_CONFIG.test(text)) {
    throw new Error(
      `Refused on the application connection: set_config of a setting other than latchkey.* (one-URL mode keeps the role ${APP_ROLE})`,
    );
  }
}

/** Runs a multi-statement script on the connection (PostgreSQL: simple protocol; PGlite: `exec`). */
export type ScriptRunner = (connection: DatabaseConnection, script: string) => Promise<void>;

/** What a database session's settings hold: the scope (`keyOf`), null for none, undefined when unknown. */
interface SessionState {
  scope: string | null | undefined;
}

class ScopedConnection implements DatabaseConnection {
  inTransaction = false;

  constructor(
    readonly inner: DatabaseConnection,
    private readonly session: SessionState,
    private readonly runScript: ScriptRunner,
    private readonly trace: (sql: string) => void,
    /** One-URL mode: every statement runs as `latchkey_app`, scoped or not (the login role owns the tables). */
    private readonly pinned: boolean,
  ) {}

  /** A control statement (begin, scope, commit, rollback), reported like Kysely reports the others. */
  async control(script: string): Promise<void> {
    this.trace(script);
    if (script.includes(';')) await this.runScript(this.inner, script);
    else await this.inner.executeQuery(CompiledQuery.raw(script));
  }

  async begin(scope: DbScope | undefined, settings: TransactionSettings = {}) {
    // An unscoped transaction must not inherit the session's scope (transaction-local settings override it).
    // One-URL mode: nor run a statement as the owner if a statement ends the transaction early.
    if (!scope || scope === SELF_SCOPED || this.sessionUnknown()) await this.sessionTo(undefined);
    try {
      await this.control(
        scope && scope !== SELF_SCOPED ? beginScoped(scope, settings) : beginPlain(settings),
      );
    } catch (error) {
      // BEGIN may have run before the scope failed: never leave the connection inside a transaction.
      await this.control('rollback').catch(() => {});
      throw error;
    }
  }

  /** One-URL mode: a connection whose session role is not known to be `latchkey_app` yet (new, or a failed switch). */
  private sessionUnknown(): boolean {
    return this.pinned && this.session.scope === undefined;
  }

  /** Brings the session settings to `scope` (none: cleared) unless they are there already. */
  async sessionTo(scope: DbScope | undefined): Promise<void> {
    const wanted = scope ? keyOf(scope) : null;
    if (this.session.scope === wanted) return;
    this.session.scope = undefined;
    const query = scope
      ? sessionScope(scope)
      : this.pinned
        ? CLEAR_SESSION_SCOPE_PINNED
        : CLEAR_SESSION_SCOPE;
    this.trace(query.sql);
    await this.inner.executeQuery(query);
    this.session.scope = wanted;
  }

  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    if (this.pinned) refuseRoleChange(compiledQuery.sql);
    const scope = storage.getStore();
    if (!this.inTransaction) {
      if (scope !== SELF_SCOPED) await this.sessionTo(scope);
      else if (this.sessionUnknown()) await this.sessionTo(undefined);
    }
    return this.inner.executeQuery<R>(compiledQuery);
  }

  streamQuery<R>(compiledQuery: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    if (!this.inTransaction) throw new Error('Latchkey streams query results only inside a transaction');
    if (this.pinned) refuseRoleChange(compiledQuery.sql);
    return this.inner.streamQuery<R>(compiledQuery, chunkSize);
  }
}

class ScopedDriver implements Driver {
  private readonly wrapped = new WeakMap<DatabaseConnection, ScopedConnection>();
  /** PGlite: one session, whatever connection object the dialect hands out. */
  private readonly sharedSession: SessionState | undefined;

  constructor(
    private readonly inner: Driver,
    private readonly runScript: ScriptRunner,
    private readonly trace: (sql: string) => void,
    singleSession: boolean,
    private readonly pinned: boolean,
  ) {
    this.sharedSession = singleSession ? { scope: null } : undefined;
  }

  init() {
    return this.inner.init();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    const connection = await this.inner.acquireConnection();
    let scoped = this.wrapped.get(connection);
    if (!scoped) {
      // PostgreSQL: Kysely keeps one connection object per pooled client, so its session goes with it.
      // One-URL mode: a new session runs as the login role (the owner) until its first statement switches it.
      const session = this.sharedSession ?? { scope: this.pinned ? undefined : null };
      scoped = new ScopedConnection(connection, session, this.runScript, this.trace, this.pinned);
      this.wrapped.set(connection, scoped);
    }
    scoped.inTransaction = false;
    return scoped;
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings) {
    const scoped = connection as ScopedConnection;
    await scoped.begin(storage.getStore(), settings);
    scoped.inTransaction = true;
  }

  async commitTransaction(connection: DatabaseConnection) {
    const scoped = connection as ScopedConnection;
    scoped.inTransaction = false;
    await scoped.control('commit');
  }

  async rollbackTransaction(connection: DatabaseConnection) {
    const scoped = connection as ScopedConnection;
    scoped.inTransaction = false;
    await scoped.control('rollback');
  }

  releaseConnection(connection: DatabaseConnection) {
    return this.inner.releaseConnection((connection as ScopedConnection).inner);
  }

  destroy() {
    return this.inner.destroy();
  }
}

/**
 * A dialect whose driver applies the current scope to every statement (see above). `trace` sees the statements
 * it issues itself (Kysely's `log` sees the others), so round trips can be counted. `singleSession`: every
 * connection object the dialect hands out is the same database session (PGlite).
 */
export function scopedDialect(
  inner: Dialect,
  options: {
    runScript: ScriptRunner;
    trace?: ((sql: string) => void) | undefined;
    singleSession: boolean;
    /**
     * The one-URL mode (PostgreSQL whose login role owns the tables): every statement runs as `latchkey_app`,
     * with or without a scope, and no application statement may switch the role back (`refuseRoleChange`).
     */
    pinAppRole?: boolean;
  },
): Dialect {
  const trace = options.trace ?? (() => {});
  return {
    createAdapter: () => inner.createAdapter(),
    createDriver: () =>
      new ScopedDriver(
        inner.createDriver(),
        options.runScript,
        trace,
        options.singleSession,
        options.pinAppRole ?? false,
      ),
    createQueryCompiler: () => inner.createQueryCompiler(),
    createIntrospector: (db) => inner.createIntrospector(db),
  };
}
