/**
 * What one device sends: readings from its source, through its fault injector, packed into messages.
 * Pull-based and lazy, so a backfill of months for thousands of meters holds only a few messages per
 * device in memory.
 */
import type { Reading } from '../../common/reading.js';
import type { FaultInjector } from '../generator/index.js';
import type { MessagePacker, OutboundMessage } from './message.js';

/** Readings a device has collected, in the order it collected them. */
export interface ReadingSource {
  /** The next reading available now, or undefined. */
  next(): Reading | undefined;
  /** True once no reading will ever come again. */
  readonly ended: boolean;
}

/** Backfill: every reading of a finite range, from a generator. */
export class IteratorSource implements ReadingSource {
  ended = false;

  constructor(private readonly readings: Iterator<Reading>) {}

  next(): Reading | undefined {
    if (this.ended) return undefined;
    const step = this.readings.next();
    if (step.done) this.ended = true;
    return step.done ? undefined : step.value;
  }
}

/** Live: readings appended as intervals end. */
export class QueueSource implements ReadingSource {
  ended = false;
  private queue: Reading[] = [];
  private head = 0;

  append(readings: readonly Reading[]): void {
    if (this.ended) return;
    if (this.head > 0 && this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    }
    this.queue.push(...readings);
  }

  /** No more readings: what is queued is still delivered. */
  end(): void {
    this.ended = true;
  }

  next(): Reading | undefined {
    return this.head < this.queue.length ? this.queue[this.head++] : undefined;
  }
}

export class DeviceFeed {
  /** Readings taken from the source so far. */
  readingsCollected = 0;
  private readonly ready: OutboundMessage[] = [];
  private injectorEnded = false;
  private halted = false;

  constructor(
    private readonly source: ReadingSource,
    private readonly injector: FaultInjector,
    private readonly packer: MessagePacker,
  ) {}

  /** The next message to publish, or null when nothing is ready now. */
  next(): OutboundMessage | null {
    if (this.ready.length === 0) this.build();
    return this.ready.shift() ?? null;
  }

  /** Whether `next()` would return a message. */
  hasReady(): boolean {
    if (this.ready.length === 0) this.build();
    return this.ready.length > 0;
  }

  /**
   * True when this feed will produce nothing more by itself. Conflicting variants still waiting for an
   * acknowledgement may yet be released by `acknowledged`.
   */
  get finished(): boolean {
    if (this.halted) return true;
    return this.injectorEnded && this.ready.length === 0 && this.injector.readyCount === 0 && this.packer.pendingItems === 0;
  }

  /** A message was acknowledged (QoS 1) or written (QoS 0): its valid readings count as delivered. */
  acknowledged(message: OutboundMessage): void {
    for (const item of message.items) {
      if (item.reading) this.injector.acknowledged(item.meterId, item.intervalStart);
    }
  }

  /** Stops producing at once (what is already published is still awaited by the session). */
  halt(): void {
    this.halted = true;
    this.ready.length = 0;
  }

  private build(): void {
    if (this.halted) return;
    while (this.ready.length === 0) {
      const item = this.injector.take();
      if (item) {
        this.ready.push(...this.packer.offer(item));
        continue;
      }
      const reading = this.source.next();
      if (reading) {
        this.readingsCollected++;
        this.injector.push(reading);
        continue;
      }
      if (this.source.ended && !this.injectorEnded) {
        this.injector.end();
        this.injectorEnded = true;
        continue;
      }
      const partial = this.packer.flush();
      if (partial) this.ready.push(partial);
      return;
    }
  }
}
