/**
 * Errors of billing-api's domains, in domain words. Services throw these and nothing HTTP: the offending
 * input is named as the domain names it (`asOf`, `timezone`, `meterIds`), never as a request field. The
 * error handler (http/errors.ts) maps each, and the rating core's `RatingError`, to an HTTP answer in one
 * place.
 */

/** One problem with an input: the input it concerns (a domain name, e.g. `timezone`) and what is wrong. */
export interface Problem {
  field?: string;
  message: string;
}

export abstract class DomainError extends Error {
  abstract readonly code: string;
}

/** Input the domain refuses (HTTP 400): every problem found, each naming its input. */
export class InvalidInput extends DomainError {
  readonly code = 'invalid_request';
  /** `summary`: what the problems amount to (default: their count) */
  constructor(
    readonly problems: Problem[],
    summary = `${problems.length} problem(s)`,
  ) {
    super(summary);
  }
}

/** Something named does not exist (HTTP 404); `what` names it, e.g. `meter "M-1"`. */
export class NotFound extends DomainError {
  readonly code = 'not_found';
  constructor(readonly what: string) {
    super(`${what} not found`);
  }
}

/** The request contradicts what is stored (HTTP 409): an id in use, history that may not be rewritten. */
export class Conflict extends DomainError {
  readonly code = 'conflict';
}

/** A meter without any tariff assignment cannot be rated (HTTP 409, `no_tariff`). */
export class NoTariffAssigned extends DomainError {
  readonly code = 'no_tariff';
  constructor(readonly meterId: string) {
    super(`meter "${meterId}" has no tariff assigned`);
  }
}

/** An account's meters are rated in different currencies, so they cannot be summed (HTTP 409). */
export class CurrencyMismatch extends DomainError {
  readonly code = 'currency_mismatch';
  constructor(readonly currencies: string[]) {
    super(`the account's meters are rated in different currencies (${currencies.join(', ')})`);
  }
}

/**
 * What was asked could not be rated (HTTP 409, the rating core's code, e.g. `no_tariff_in_effect`): a void
 * whose re-bill cannot be rated is refused, and nothing is stored.
 */
export class RatingFailed extends DomainError {
  constructor(
    readonly code: string,
    message: string,
    readonly details: string[] = [],
  ) {
    super(message);
  }
}
