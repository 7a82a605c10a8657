/**
 * The simulated clock of live mode: starts at `startMs` (simulated) when created and runs `speed` times
 * faster than the wall clock.
 */
export class SimulatedClock {
  private readonly realStartMs: number;

  constructor(
    readonly startMs: number,
    readonly speed: number,
    private readonly wallClock: () => number = Date.now,
  ) {
    this.realStartMs = wallClock();
  }

  /** Simulated now, epoch ms. */
  now(): number {
    return this.startMs + (this.wallClock() - this.realStartMs) * this.speed;
  }

  /** Wall-clock milliseconds until the simulated clock reads `simulatedMs` (0 if already past). */
  realDelayUntil(simulatedMs: number): number {
    return Math.max(0, (simulatedMs - this.now()) / this.speed);
  }
}
