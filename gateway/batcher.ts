/**
 * Group commit. Messages from many clients are gathered into batches; each batch is committed with one
 * round trip (plus one for quarantine records, when there are any); each message's promise resolves only
 * once everything it contained is committed, and the gateway releases the PUBACK then.
 *
 * Flow: a batch is flushed as soon as a commit slot is free (so latency stays low under light load) and
 * grows while all slots are busy (so throughput rises with load), up to `maxBatchRows`. A failed commit is
 * retried with capped exponential backoff until it succeeds: nothing is acknowledged meanwhile, and the
 * devices' own flow control (no socket reads while a message is pending) bounds memory.
 */
import type { Logger } from '../common/logger.js';
import type { Metrics } from '../common/metrics.js';
import type { CandidateReading, DecodedMessage } from './decode.js';
import type { IngestStore, ReadingOutcome } from './ingest-store.js';
import { quarantineReading, type QuarantineReason, type QuarantineRecord } from './quarantine.js';

export interface MessageOutcome {
  stored: number;
  replaced: number;
  duplicates: number;
  quarantined: Partial<Record<QuarantineReason, number>>;
}

interface PendingMessage {
  decoded: DecodedMessage;
  deviceId: string;
  topic: string;
  resolve: (outcome: MessageOutcome) => void;
  reject: (err: Error) => void;
}

export interface BatcherOptions {
  store: IngestStore;
  log: Logger;
  metrics?: Metrics;
  maxBatchRows: number;
  maxInflightBatches: number;
  /** called after each committed batch with the readings that were stored or replaced */
  onCommitted?: (readings: CandidateReading[]) => void;
}

export class ShuttingDownError extends Error {
  constructor() {
    super('gateway is shutting down');
  }
}

export class IngestBatcher {
  private current: PendingMessage[] = [];
  private currentRows = 0;
  private readonly ready: PendingMessage[][] = [];
  private inflight = 0;
  private flushScheduled = false;
  private pending = 0;
  private stopping = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly opts: BatcherOptions) {}

  /** Readings received and not yet committed. */
  get pendingReadings(): number {
    return this.pending;
  }

  submit(decoded: DecodedMessage, deviceId: string, topic: string): Promise<MessageOutcome> {
    if (this.stopping && this.inflight === 0 && this.current.length === 0 && this.ready.length === 0) {
      // Nothing can be committed any more; the device will resend after reconnecting elsewhere or later.
      return Promise.reject(new ShuttingDownError());
    }
    return new Promise((resolve, reject) => {
      const rows = decoded.readings.length + decoded.quarantined.length;
      this.current.push({ decoded, deviceId, topic, resolve, reject });
      this.currentRows += rows;
      this.pending += rows;
      this.opts.metrics?.ingestPendingReadings.set(this.pending);
      if (this.currentRows >= this.opts.maxBatchRows) this.seal();
      this.schedule();
    });
  }

  /** Resolves once every submitted message has been committed (or the timeout passes). */
  async drain(timeoutMs: number): Promise<boolean> {
    this.stopping = true;
    if (this.current.length) this.seal();
    this.pump();
    if (this.idle()) return true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  private idle(): boolean {
    return this.inflight === 0 && this.current.length === 0 && this.ready.length === 0;
  }

  private seal(): void {
    this.ready.push(this.current);
    this.current = [];
    this.currentRows = 0;
  }

  private schedule(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // setImmediate lets every message already read from the sockets in this turn join the batch.
    setImmediate(() => {
      this.flushScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    while (this.inflight < this.opts.maxInflightBatches) {
      if (this.ready.length === 0 && this.current.length > 0) this.seal();
      const batch = this.ready.shift();
      if (!batch) break;
      this.inflight++;
      void this.commitWithRetry(batch).finally(() => {
        this.inflight--;
        this.pump();
        if (this.idle()) for (const w of this.idleWaiters.splice(0)) w();
      });
    }
  }

  private async commitWithRetry(batch: PendingMessage[]): Promise<void> {
    const readings: CandidateReading[] = [];
    const owners: number[] = [];
    batch.forEach((m, i) => {
      for (const r of m.decoded.readings) {
        readings.push(r);
        owners.push(i);
      }
    });
    const outcomes = await this.retrying('readings', () => this.commitRounds(readings));

    const results: MessageOutcome[] = batch.map(() => ({ stored: 0, replaced: 0, duplicates: 0, quarantined: {} }));
    const quarantine: QuarantineRecord[] = [];
    const committed: CandidateReading[] = [];
    batch.forEach((m, i) => {
      for (const q of m.decoded.quarantined) {
        quarantine.push(q);
        results[i].quarantined[q.reason] = (results[i].quarantined[q.reason] ?? 0) + 1;
      }
    });
    for (let k = 0; k < readings.length; k++) {
      const outcome = outcomes[k];
      const result = results[owners[k]];
      if (outcome === 'stored') { result.stored++; committed.push(readings[k]); }
      else if (outcome === 'replaced') { result.replaced++; committed.push(readings[k]); }
      else if (outcome === 'duplicate') result.duplicates++;
      else {
        const r = readings[k];
        const m = batch[owners[k]];
        quarantine.push(quarantineReading({ deviceId: m.deviceId, topic: m.topic }, r.element, outcome, describeRejection(outcome, r), r.meterId, r.intervalStart));
        result.quarantined[outcome] = (result.quarantined[outcome] ?? 0) + 1;
      }
    }
    if (quarantine.length) await this.retrying('quarantine', () => this.opts.store.insertQuarantine(quarantine));

    const metrics = this.opts.metrics;
    if (metrics) {
      metrics.readingsIngested.inc(committed.length);
      metrics.ingestBatchSize.observe(readings.length);
      let dups = 0;
      for (const r of results) dups += r.duplicates;
      if (dups) metrics.readingsDuplicate.inc(dups);
      for (const q of quarantine) metrics.readingsQuarantined.inc({ reason: q.reason });
    }
    let rows = 0;
    for (const m of batch) rows += m.decoded.readings.length + m.decoded.quarantined.length;
    this.pending -= rows;
    metrics?.ingestPendingReadings.set(this.pending);
    if (committed.length && this.opts.onCommitted) {
      try {
        this.opts.onCommitted(committed);
      } catch (err) {
        this.opts.log.error({ err }, 'onCommitted listener failed');
      }
    }
    batch.forEach((m, i) => m.resolve(results[i]));
  }

  /**
   * The database function needs unique (meter, intervalStart) keys per call. A key repeated in a batch
   * (a resend racing its original, a duplicate inside one message) goes to a later round, which then sees
   * the earlier occurrence as stored. Rounds are rare; most batches are one round trip.
   */
  private async commitRounds(readings: CandidateReading[]): Promise<ReadingOutcome[]> {
    const seen = new Map<string, number>();
    const roundOf = new Array<number>(readings.length);
    let rounds = 1;
    for (let i = 0; i < readings.length; i++) {
      const key = readings[i].meterId + '\u0000' + readings[i].intervalStart;
      const round = seen.get(key) ?? 0;
      seen.set(key, round + 1);
      roundOf[i] = round;
      if (round + 1 > rounds) rounds = round + 1;
    }
    if (rounds === 1) return this.timed(readings);
    const outcomes = new Array<ReadingOutcome>(readings.length);
    for (let round = 0; round < rounds; round++) {
      const index: number[] = [];
      for (let i = 0; i < readings.length; i++) if (roundOf[i] === round) index.push(i);
      const part = await this.timed(index.map((i) => readings[i]));
      index.forEach((i, k) => (outcomes[i] = part[k]));
    }
    return outcomes;
  }

  private async timed(readings: CandidateReading[]): Promise<ReadingOutcome[]> {
    if (readings.length === 0) return [];
    const end = this.opts.metrics?.ingestCommitSeconds.startTimer();
    const outcomes = await this.opts.store.commitReadings(readings);
    end?.();
    return outcomes;
  }

  private async retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let delay = 100;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        this.opts.metrics?.ingestCommitFailures.inc();
        this.opts.log.warn({ err: (err as Error).message, attempt, retryInMs: delay }, `commit of ${what} failed; retrying (nothing acknowledged meanwhile)`);
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 5_000);
      }
    }
  }
}

function describeRejection(outcome: QuarantineReason, r: CandidateReading): string {
  switch (outcome) {
    case 'unknown_meter': return `meter "${r.meterId}" is not provisioned`;
    case 'not_assigned': return `meter "${r.meterId}" is not assigned to concentrator "${r.via}"`;
    case 'interval_mismatch': return `intervalSeconds ${r.intervalSeconds} differs from the meter's configured interval`;
    case 'misaligned': return `intervalStart is not aligned to ${r.intervalSeconds} s in the meter's local time`;
    case 'implausible': return "interval energy exceeds the meter's configured maximum power";
    case 'conflicting_duplicate': return 'a stored reading for this meter and intervalStart has different values; the stored one is kept';
    default: return outcome;
  }
}
