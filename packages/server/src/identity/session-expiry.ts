/**
 * Session lifetime beyond the absolute one (`Services.sessionTtlMs`): the idle timeout, and the periodic sweep
 * that deletes what can no longer be used — sessions past their end or idle too long, and sign-in attempt
 * counters whose window has passed — so neither table grows without bound (docs/operations.md "Sessions").
 */
import { sql } from 'kysely';
import type { Services } from '../services.js';

export const DEFAULT_SESSION_IDLE_HOURS = 7 * 24;
/** How often the server sweeps; the sweep is cheap (two indexed deletes), the interval only bounds table size. */
export const SWEEP_INTERVAL_MS = 10 * 60 * 1000;

export interface SweepResult {
  sessions: number;
  signInAttempts: number;
}

/**
 * Deletes the sessions no request can use any more (the same two conditions `callerForSession` checks) and the
 * sign-in and sign-up counters older than `attemptWindowMs`, the longest throttling window (a counter past its
 * window restarts anyway). The one place the counters are cleaned up.
 */
export async function sweepExpired(svc: Services, attemptWindowMs: number): Promise<SweepResult> {
  const sessions = await sql`
    delete from sessions
    where expires_at <= now()
       or last_seen_at <= now() - ${svc.sessionIdleMs}::double precision * interval '1 millisecond'`.execute(
    svc.db,
  );
  const attempts = await sql`
    delete from sign_in_attempts
    where window_started_at <= now() - ${attemptWindowMs}::double precision * interval '1 millisecond'`.execute(
    svc.db,
  );
  return {
    sessions: Number(sessions.numAffectedRows ?? 0),
    signInAttempts: Number(attempts.numAffectedRows ?? 0),
  };
}

/**
 * Sweeps every `intervalMs` until stopped. The timer is unref'd (it never keeps the process alive) and a sweep
 * that fails is reported and retried at the next tick; `stop` waits for a sweep that is running.
 */
export function startExpirySweep(
  svc: Services,
  options: { attemptWindowMs: number; intervalMs?: number; onError: (error: unknown) => void },
): { stop(): Promise<void> } {
  let running: Promise<unknown> | undefined;
  const timer = setInterval(() => {
    if (running) return;
    running = sweepExpired(svc, options.attemptWindowMs)
      .catch(options.onError)
      .finally(() => {
        running = undefined;
      });
  }, options.intervalMs ?? SWEEP_INTERVAL_MS);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
