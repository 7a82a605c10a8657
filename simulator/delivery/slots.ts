/**
 * A counting semaphore with a FIFO queue: the `--connections` cap (devices beyond it wait for a free
 * connection), and the cap on simultaneous MQTT handshakes.
 */
export class Slots {
  private used = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(readonly limit: number) {
    if (!(limit >= 1)) throw new RangeError('limit must be >= 1');
  }

  /** Resolves with a slot; rejects (and leaves the queue) if `signal` aborts first. */
  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.used < this.limit) {
      this.used++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const index = this.waiters.indexOf(grant);
        if (index >= 0) this.waiters.splice(index, 1);
        reject(signal!.reason);
      };
      const grant = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(grant);
    });
  }

  /** Hands the slot to the longest waiter, if any. */
  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.used--;
  }

  /** Callers waiting for a slot. */
  get waiting(): number {
    return this.waiters.length;
  }

  get inUse(): number {
    return this.used;
  }
}

/** A one-shot wake-up: `wait()` resolves at the next `notify()` (or at once if one came since the last wait). */
export class Wakeup {
  private pending = false;
  private resolve: (() => void) | null = null;

  wait(): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      this.resolve = resolve;
    });
  }

  notify(): void {
    const resolve = this.resolve;
    if (resolve) {
      this.resolve = null;
      resolve();
    } else {
      this.pending = true;
    }
  }
}
