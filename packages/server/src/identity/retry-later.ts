import { DomainError } from '../errors.js';

/**
 * A refusal that says when to come back: answered `429 TOO_MANY_REQUESTS` with a `Retry-After` header
 * (http/server.ts), so well-behaved clients back off instead of retrying at once.
 */
export abstract class RetryLaterError extends DomainError {
  readonly kind = 'TOO_MANY_REQUESTS';
  constructor(
    message: string,
    /** Whole seconds, at least 1. */
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}
