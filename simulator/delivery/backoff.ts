/**
 * Reconnect delays: exponential with "equal jitter" (half the delay fixed, half random), so that a fleet
 * thrown off by a broker restart does not come back in one synchronized wave.
 */

export interface BackoffPolicy {
  /** First delay, ms. */
  initialMs: number;
  /** Largest delay, ms. */
  maxMs: number;
  /** Growth per failed attempt. */
  factor: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 500, maxMs: 15_000, factor: 2 };

export class Backoff {
  private attempt = 0;

  constructor(
    private readonly policy: BackoffPolicy = DEFAULT_BACKOFF,
    private readonly random: () => number = Math.random,
  ) {}

  /** The delay before the next attempt, ms: in [d/2, d) with d = min(max, initial x factor^attempt). */
  next(): number {
    const ceiling = Math.min(this.policy.maxMs, this.policy.initialMs * this.policy.factor ** this.attempt);
    this.attempt++;
    return Math.round(ceiling / 2 + (ceiling / 2) * this.random());
  }

  /** After a successful connection: the next failure starts from the initial delay again. */
  reset(): void {
    this.attempt = 0;
  }
}
