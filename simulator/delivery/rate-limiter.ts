/**
 * The `--rate` cap: messages per second for the whole process, evenly spaced, first come first served.
 * Each caller reserves the next free slot and waits for it, so no timer runs while nobody publishes.
 */
export class RateLimiter {
  private nextSlotMs = 0;
  private readonly spacingMs: number;

  constructor(
    messagesPerSecond: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(messagesPerSecond > 0)) throw new RangeError('messagesPerSecond must be > 0');
    this.spacingMs = 1000 / messagesPerSecond;
  }

  /** Resolves when the caller may send one message. */
  take(): Promise<void> {
    const now = this.now();
    const slot = Math.max(now, this.nextSlotMs);
    this.nextSlotMs = slot + this.spacingMs;
    const waitMs = slot - now;
    return waitMs < 1 ? Promise.resolve() : new Promise((resolve) => setTimeout(resolve, waitMs));
  }
}
