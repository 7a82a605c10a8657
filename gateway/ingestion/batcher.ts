/**
 * Group commit. Messages from many clients are gathered into batches; each batch is committed with one
 * round trip (plus one for quarantine records, when there are any); each message's promise resolves only
 * once everything it contained is committed, and the gateway releases the PUBACK then.
 *
 * Flow: a batch is flushed as soon as a commit slot is free (so latency stays low under light load) and
 * grows while all slots are busy (so throughput rises with load), up to `maxBatchRows`.
 *
 * A failed commit is handled by its kind (`commitFailureKind` in readings-writer.ts):
 * - outage (the database is unreachable or cannot work now): retried with capped exponential backoff until
 *   it succeeds; nothing is acknowledged meanwhile, and the devices' own flow control (no socket reads while
 *   a message is pending) bounds memory.
 * - data (the database refused these rows): the batch is split in halves, each committed the same way,
 *   down to the single readings that fail by themselves; those are quarantined as `commit_rejected` with
 *   the database's message, everything else is committed and acknowledged. So no reading can hold a commit
 *   slot, and no device can stop the others being served.
 *
 * `health()` says whether commits are going through; the gateways expose it for readiness.
 */
import type { Logger } from '../../common/logger.js';
import type { Metrics } from '../../common/metrics.js';
import type { CandidateReading, DecodedMessage } from './decode.js';
import { commitFailureKind, describeCommitError, type CommitFailureKind, type ReadingsWriter, type ReadingOutcome } from './readings-writer.js';
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
  store: ReadingsWriter;
  log: Logger;
  metrics?: Metrics;
  maxBatchRows: number;
  maxInflightBatches: number;
  /** called after each committed batch with the readings that were stored or replaced */
  onCommitted?: (readings: CandidateReading[]) => void;
  /** commits failing for an outage this long make health() unhealthy (default COMMIT_OUTAGE_UNHEALTHY_MS) */
  outageUnhealthyMs?: number;
  /** this many batches in a row with every reading refused make health() unhealthy (default REJECTED_BATCHES_UNHEALTHY) */
  rejectedBatchesUnhealthy?: number;
}

export const COMMIT_OUTAGE_UNHEALTHY_MS = 5_000;
/** How long a meter with a refused reading has its readings committed apart from the others'. */
const SUSPECT_MS = 10 * 60_000;
const MAX_SUSPECTS = 10_000;
export const REJECTED_BATCHES_UNHEALTHY = 3;

/** Whether commits are going through (readiness). */
export interface CommitHealth {
  /** false while commits have been failing for an outage for `outageUnhealthyMs`, or the last batches were refused whole */
  healthy: boolean;
  /** when the current run of outage failures began (epoch ms), null while commits succeed */
  outageSince: number | null;
  /** batches in a row of which the database refused every reading */
  rejectedBatchesInARow: number;
  /** the database's message for the latest failure, null before any */
  lastError: string | null;
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
  private outageSince: number | null = null;
  private rejectedBatchesInARow = 0;
  private lastError: string | null = null;
  /** meter id -> until when (epoch ms) its readings are committed apart: the database refused one recently */
  private readonly suspects = new Map<string, number>();
  /** prom-client refuses a label the counter was not declared with */
  private readonly failuresLabelled: boolean;

  constructor(private readonly opts: BatcherOptions) {
    const counter = opts.metrics?.ingestCommitFailures as unknown as { labelNames?: string[] } | undefined;
    this.failuresLabelled = Boolean(counter?.labelNames?.includes('kind'));
  }

  health(now = Date.now()): CommitHealth {
    const outage = this.outageSince !== null && now - this.outageSince >= (this.opts.outageUnhealthyMs ?? COMMIT_OUTAGE_UNHEALTHY_MS);
    const refused = this.rejectedBatchesInARow >= (this.opts.rejectedBatchesUnhealthy ?? REJECTED_BATCHES_UNHEALTHY);
    return { healthy: !outage && !refused, outageSince: this.outageSince, rejectedBatchesInARow: this.rejectedBatchesInARow, lastError: this.lastError };
  }

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
    const rejected = new Map<CandidateReading, string>();
    const outcomes = await this.commitRounds(readings, rejected);
    if (readings.length) {
      // A batch of which nothing could be stored although the database answered: commits keep failing.
      if (rejected.size === readings.length) this.rejectedBatchesInARow++;
      else this.rejectedBatchesInARow = 0;
    }

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
        const detail = outcome === 'commit_rejected' ? `the database refused the reading: ${rejected.get(r) ?? 'unknown error'}` : describeRejection(outcome, r);
        quarantine.push(quarantineReading({ deviceId: m.deviceId, topic: m.topic }, r.element, outcome, detail, r.meterId, r.intervalStart));
        result.quarantined[outcome] = (result.quarantined[outcome] ?? 0) + 1;
      }
    }
    if (quarantine.length) await this.insertQuarantine(quarantine);

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
  private async commitRounds(readings: CandidateReading[], rejected: Map<CandidateReading, string>): Promise<ReadingOutcome[]> {
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
    if (rounds === 1) return this.commitApart(readings, rejected);
    const outcomes = new Array<ReadingOutcome>(readings.length);
    for (let round = 0; round < rounds; round++) {
      const index: number[] = [];
      for (let i = 0; i < readings.length; i++) if (roundOf[i] === round) index.push(i);
      const part = await this.commitApart(index.map((i) => readings[i]), rejected);
      index.forEach((i, k) => (outcomes[i] = part[k]));
    }
    return outcomes;
  }

  /**
   * Readings of meters with a recently refused reading are committed after the others, in a call of their
   * own: a meter that keeps sending readings the database refuses then costs only its own commits, never
   * a failed attempt (and a split) of everyone else's batch. Splitting a refused batch does the same as
   * soon as it has found one refused reading of a meter.
   */
  private async commitApart(readings: CandidateReading[], rejected: Map<CandidateReading, string>): Promise<ReadingOutcome[]> {
    return (await this.commitSuspectsApart(readings, rejected)) ?? this.commitIsolating(readings, rejected);
  }

  /** Commits the readings of suspect meters after the others, each group isolating; null when `readings` is not mixed. */
  private async commitSuspectsApart(readings: CandidateReading[], rejected: Map<CandidateReading, string>, depth = 0): Promise<ReadingOutcome[] | null> {
    if (this.suspects.size === 0) return null;
    const now = Date.now();
    const apart: number[] = [];
    const others: number[] = [];
    readings.forEach((r, i) => {
      const until = this.suspects.get(r.meterId);
      if (until !== undefined && until <= now) this.suspects.delete(r.meterId);
      (until !== undefined && until > now ? apart : others).push(i);
    });
    if (apart.length === 0 || others.length === 0) return null;
    const outcomes = new Array<ReadingOutcome>(readings.length);
    for (const index of [others, apart]) {
      const part = await this.commitIsolating(index.map((i) => readings[i]), rejected, depth);
      index.forEach((i, k) => (outcomes[i] = part[k]));
    }
    return outcomes;
  }

  /**
   * Commits `readings` (unique keys), retrying outages; on a data error splits them in halves until the
   * readings the database refuses are alone, and reports those as `commit_rejected` (their message in
   * `rejected`). Each call of the store is one statement, so a refused call stored nothing.
   */
  private async commitIsolating(readings: CandidateReading[], rejected: Map<CandidateReading, string>, depth = 0): Promise<ReadingOutcome[]> {
    if (readings.length === 0) return [];
    for (let attempt = 1, delay = 100; ; attempt++) {
      const end = this.opts.metrics?.ingestCommitSeconds.startTimer();
      try {
        const outcomes = await this.opts.store.commitReadings(readings);
        end?.();
        this.outageSince = null;
        return outcomes;
      } catch (err) {
        const kind = commitFailureKind(err);
        this.failed(kind, err);
        if (kind === 'data') {
          if (readings.length === 1) {
            const r = readings[0];
            rejected.set(r, describeCommitError(err));
            this.suspects.delete(r.meterId);
            if (this.suspects.size >= MAX_SUSPECTS) this.suspects.delete(this.suspects.keys().next().value!);
            this.suspects.set(r.meterId, Date.now() + SUSPECT_MS);
            this.opts.log.warn({ meterId: r.meterId, intervalStart: r.intervalStart, err: describeCommitError(err) }, 'the database refused a reading; quarantined as commit_rejected, the rest of its batch is committed');
            return ['commit_rejected'];
          }
          if (depth === 0) this.opts.log.warn({ readings: readings.length, err: describeCommitError(err) }, 'the database refused a batch; isolating the readings it refuses');
          // Meters found refused meanwhile (in this split or another batch) are split off first; else halves.
          const apart = await this.commitSuspectsApart(readings, rejected, depth + 1);
          if (apart) return apart;
          const mid = readings.length >>> 1;
          const first = await this.commitIsolating(readings.slice(0, mid), rejected, depth + 1);
          const second = await this.commitIsolating(readings.slice(mid), rejected, depth + 1);
          return first.concat(second);
        }
        this.opts.log.warn({ err: describeCommitError(err), attempt, retryInMs: delay }, 'commit of readings failed; retrying (nothing acknowledged meanwhile)');
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 5_000);
      }
    }
  }

  /**
   * Quarantine records, with the same handling: outages are retried; records the database refuses (none
   * should be: text is cleaned, evidence is bytes) are isolated and written once more with every text
   * field reduced to printable ASCII and no interval start, so the evidence is still kept.
   */
  private async insertQuarantine(records: QuarantineRecord[], sanitised = false): Promise<void> {
    for (let attempt = 1, delay = 100; ; attempt++) {
      try {
        await this.opts.store.insertQuarantine(records);
        return;
      } catch (err) {
        const kind = commitFailureKind(err);
        this.failed(kind, err);
        if (kind === 'data' && !sanitised) {
          if (records.length === 1) {
            this.opts.log.error({ err: describeCommitError(err) }, 'the database refused a quarantine record; writing it with its text reduced to ASCII');
            return this.insertQuarantine([asciiRecord(records[0], describeCommitError(err))], true);
          }
          const mid = records.length >>> 1;
          await this.insertQuarantine(records.slice(0, mid));
          await this.insertQuarantine(records.slice(mid));
          return;
        }
        this.opts.log.warn({ err: describeCommitError(err), attempt, retryInMs: delay }, 'commit of quarantine records failed; retrying (nothing acknowledged meanwhile)');
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 5_000);
      }
    }
  }

  private failed(kind: CommitFailureKind, err: unknown): void {
    const counter = this.opts.metrics?.ingestCommitFailures;
    if (counter) {
      if (this.failuresLabelled) (counter as unknown as { inc(labels: { kind: string }): void }).inc({ kind });
      else counter.inc();
    }
    if (kind === 'outage') this.outageSince ??= Date.now();
    this.lastError = describeCommitError(err);
  }
}

const ascii = (s: string | null) => (s === null ? null : JSON.stringify(s).slice(1, -1).replace(/[^\x20-\x7e]/g, '?'));

function asciiRecord(q: QuarantineRecord, why: string): QuarantineRecord {
  return {
    ...q,
    deviceId: ascii(q.deviceId),
    topic: ascii(q.topic),
    meterId: ascii(q.meterId),
    detail: `${ascii(q.detail)} [record refused by the database (${ascii(why)}); text fields reduced to ASCII]`,
    intervalStart: null,
  };
}

function describeRejection(outcome: QuarantineReason, r: CandidateReading): string {
  switch (outcome) {
    case 'unknown_meter': return `meter "${r.meterId}" is not provisioned`;
    case 'not_assigned': return `meter "${r.meterId}" is not assigned to concentrator "${r.via}"`;
    case 'interval_mismatch': return `intervalSeconds ${r.intervalSeconds} differs from the meter's configured interval`;
    case 'misaligned': return `intervalStart is not aligned to ${r.intervalSeconds} s in the meter's local time`;
    case 'implausible': return "interval energy exceeds the meter's configured maximum power";
    case 'before_service_window': return `intervalStart is earlier than meter "${r.meterId}"'s service window (its creation minus the backfill window)`;
    case 'conflicting_duplicate': return 'a stored reading for this meter and intervalStart has different values; the stored one is kept';
    default: return outcome;
  }
}
