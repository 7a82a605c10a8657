/** Why the rating core refused to rate: a typed error the API maps to a 4xx/5xx with `code` and `details`. */
export type RatingErrorCode =
  | 'invalid_tariff'
  | 'invalid_window'
  | 'invalid_interval'
  | 'overlapping_intervals'
  | 'invalid_tariff_timeline'
  | 'no_tariff_in_effect'
  | 'currency_mismatch'
  | 'missing_dynamic_price'
  | 'interval_spans_price_slots'
  | 'net_metering_not_rated';

export class RatingError extends Error {
  constructor(
    readonly code: RatingErrorCode,
    message: string,
    /** One entry per offending item (interval, field, span), for the API's `details`. */
    readonly details: string[] = [],
  ) {
    super(message);
    this.name = 'RatingError';
  }
}
