/**
 * Counters of a run and its final summary (the `--json` line).
 */
import type { FaultCounts } from '../generator/index.js';

/** Acknowledgement latencies in logarithmic buckets (2% wide): bounded memory for any run length. */
export class LatencyHistogram {
  private static readonly MIN_MS = 0.01;
  private static readonly GROWTH = 1.02;
  private readonly buckets = new Map<number, number>();
  private count = 0;

  add(ms: number): void {
    const ratio = Math.max(ms, LatencyHistogram.MIN_MS) / LatencyHistogram.MIN_MS;
    const bucket = Math.max(0, Math.ceil(Math.log(ratio) / Math.log(LatencyHistogram.GROWTH)));
    this.buckets.set(bucket, (this.buckets.get(bucket) ?? 0) + 1);
    this.count++;
  }

  /** The `p`-quantile (0-1), ms, to 2%; null without samples. */
  quantile(p: number): number | null {
    if (this.count === 0) return null;
    const rank = Math.max(1, Math.ceil(p * this.count));
    let seen = 0;
    for (const bucket of [...this.buckets.keys()].sort((a, b) => a - b)) {
      seen += this.buckets.get(bucket)!;
      if (seen >= rank) return round(LatencyHistogram.MIN_MS * LatencyHistogram.GROWTH ** bucket, 2);
    }
    return null;
  }
}

/** The final summary: one JSON line with `--json`. */
export interface RunSummary {
  /** Messages published (first attempts). */
  sent: number;
  /** Messages acknowledged by the broker (QoS 1); 0 at QoS 0. */
  acked: number;
  /** Messages published and never acknowledged (or, at QoS 0, never written). */
  failed: number;
  /** Valid readings settled per second of the run. */
  readingsPerSec: number;
  /** From the latest publish of a message to its PUBACK; null at QoS 0. */
  ackLatencyMs: { p50: number | null; p99: number | null };
  /** Peak resident set size of the process, MiB. */
  peakRssMb: number;
  mode: 'backfill' | 'live';
  /** The QoS the readings were published with. */
  qos: 0 | 1;
  /** The broker published to. */
  broker: string;
  /**
   * How it was checked to be the API's: `stored` (an acknowledged reading was found through the API),
   * `address` (it is an address the API lists; no token to check more), `unverified` (--bare-broker, or no
   * valid reading was acknowledged to check with).
   */
  brokerCheck: 'stored' | 'address' | 'already-stored' | 'unverified';
  meters: number;
  devices: number;
  /** Messages published again after a reconnection. */
  resent: number;
  readingsSent: number;
  /** Readings counted in the ledger. */
  readingsAcked: number;
  invalidSent: number;
  duplicatesSent: number;
  reconnects: number;
  /** Connections dropped by the device because an acknowledgement did not come in time. */
  ackTimeouts: number;
  connectFailures: number;
  devicesGaveUp: number;
  elapsedMs: number;
  faults: FaultCounts;
}

/** What the run knows beyond the counters: mode, fleet, ledger totals, fault counts. */
export type SummaryFacts = Pick<
  RunSummary,
  'mode' | 'qos' | 'meters' | 'devices' | 'readingsAcked' | 'invalidSent' | 'duplicatesSent' | 'faults' | 'broker' | 'brokerCheck'
>;

export class RunStats {
  sent = 0;
  resent = 0;
  acked = 0;
  settledAtQos0 = 0;
  failed = 0;
  readingsSent = 0;
  reconnects = 0;
  ackTimeouts = 0;
  connectFailures = 0;
  devicesGaveUp = 0;
  connected = 0;
  readonly latency = new LatencyHistogram();
  private peakRssBytes = process.memoryUsage.rss();
  private readonly sampler: NodeJS.Timeout;
  private readonly startedAt = performance.now();

  constructor() {
    this.sampler = setInterval(() => this.sampleMemory(), 250);
    this.sampler.unref();
  }

  get elapsedMs(): number {
    return performance.now() - this.startedAt;
  }

  sampleMemory(): void {
    this.peakRssBytes = Math.max(this.peakRssBytes, process.memoryUsage.rss());
  }

  stop(): void {
    clearInterval(this.sampler);
    this.sampleMemory();
  }

  summary(base: SummaryFacts): RunSummary {
    const elapsedMs = this.elapsedMs;
    return {
      sent: this.sent,
      acked: this.acked,
      failed: this.failed,
      readingsPerSec: round(base.readingsAcked / Math.max(elapsedMs / 1000, 0.001), 1),
      ackLatencyMs: { p50: this.latency.quantile(0.5), p99: this.latency.quantile(0.99) },
      peakRssMb: round(this.peakRssBytes / 1024 / 1024, 1),
      mode: base.mode,
      qos: base.qos,
      broker: base.broker,
      brokerCheck: base.brokerCheck,
      meters: base.meters,
      devices: base.devices,
      resent: this.resent,
      readingsSent: this.readingsSent,
      readingsAcked: base.readingsAcked,
      invalidSent: base.invalidSent,
      duplicatesSent: base.duplicatesSent,
      reconnects: this.reconnects,
      ackTimeouts: this.ackTimeouts,
      connectFailures: this.connectFailures,
      devicesGaveUp: this.devicesGaveUp,
      elapsedMs: Math.round(elapsedMs),
      faults: base.faults,
    };
  }
}

function round(value: number, decimals: number): number {
  const scale = 10 ** decimals;
  return Math.round(value * scale) / scale;
}
