import { asClause, type FieldIssue } from '@latchkey/core';

/**
 * Errors of the product's rules. Each carries a message a user can act on and never a secret value;
 * the tRPC layer maps `kind` to an error code.
 */
export abstract class DomainError extends Error {
  abstract readonly kind:
    | 'BAD_REQUEST'
    | 'UNAUTHORIZED'
    | 'FORBIDDEN'
    | 'NOT_FOUND'
    | 'CONFLICT'
    | 'TOO_MANY_REQUESTS';
}

export class InvalidInputError extends DomainError {
  readonly kind = 'BAD_REQUEST';
  constructor(
    readonly issues: FieldIssue[],
    message = 'Some fields are not valid',
  ) {
    super(
      `${message}: ${issues.map((i) => `${i.path.join('.') || '(input)'}: ${asClause(i.message)}`).join('; ')}`,
    );
  }
}

/**
 * The registry's validation issues as paths of a procedure's input: field issues sit under the input field that
 * carries the fields (`data`, `params`); an issue about the type itself (`credentialType`, `nodeType`) names an
 * input key already and stays as it is.
 */
export function issuesUnder(
  field: 'data' | 'params',
  typeKey: 'credentialType' | 'nodeType',
  issues: readonly FieldIssue[],
): FieldIssue[] {
  return issues.map((issue) =>
    issue.path[0] === typeKey ? issue : { ...issue, path: [field, ...issue.path] },
  );
}

export class NotSignedInError extends DomainError {
  readonly kind = 'UNAUTHORIZED';
  constructor(message = 'Sign in to continue') {
    super(message);
  }
}

export class InvalidCredentialsError extends DomainError {
  readonly kind = 'UNAUTHORIZED';
  constructor() {
    super('Email or password is incorrect');
  }
}

/** The object does not exist *for this caller*: other workspaces' objects are indistinguishable from missing ones. */
export class NotFoundError extends DomainError {
  readonly kind = 'NOT_FOUND';
  constructor(what: string) {
    super(`${what} not found`);
  }
}

export class NotAllowedError extends DomainError {
  readonly kind = 'FORBIDDEN';
}

export class ConflictError extends DomainError {
  readonly kind = 'CONFLICT';
}

/** A secret chosen for a node whose type does not accept its credential type. */
export class SecretNotSelectableError extends DomainError {
  readonly kind = 'BAD_REQUEST';
  constructor(
    readonly nodeName: string,
    readonly accepted: string,
  ) {
    super(`Node '${nodeName}' accepts only ${accepted} credentials`);
  }
}

/** Postgres unique_violation, raised by both pg and PGlite with code 23505. */
export function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === '23505';
}
