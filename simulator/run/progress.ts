/**
 * Progress while running: a bar on an interactive terminal (cli-progress), plain periodic lines otherwise
 * (logs, CI, pipes). Both go to stderr so that stdout carries only the final summary.
 */
import cliProgress from 'cli-progress';

export interface ProgressSnapshot {
  /** Readings generated so far (taken from the generator by the devices). */
  collected: number;
  /** Readings to generate in all (backfill); null in live mode. */
  total: number | null;
  readingsAcked: number;
  messagesSent: number;
  messagesAcked: number;
  connected: number;
  reconnects: number;
  /** Simulated time of the latest interval end (live mode). */
  clock: string | null;
  /** Live: wall-clock epoch ms when the next interval completes (and is published); null otherwise. */
  nextIntervalEndMs: number | null;
  /** QoS 1: acknowledgement latency so far, ms; null at QoS 0. */
  ackLatencyMs: { p50: number | null; p99: number | null } | null;
}

/** `next interval in 14m32s` (live) and `ack p50 12 ms p99 80 ms` (QoS 1), as far as they apply. */
export function liveDetails(s: ProgressSnapshot, nowMs = Date.now()): string {
  const parts: string[] = [];
  if (s.nextIntervalEndMs !== null) {
    const seconds = Math.max(0, Math.round((s.nextIntervalEndMs - nowMs) / 1000));
    const at = new Date(Math.round(s.nextIntervalEndMs / 1000) * 1000).toISOString().slice(11, 19);
    parts.push(`next interval at ${at} (in ${seconds >= 60 ? `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s` : `${seconds}s`})`);
  }
  if (s.ackLatencyMs) {
    parts.push(s.ackLatencyMs.p50 === null ? 'ack latency: none yet' : `ack p50 ${s.ackLatencyMs.p50} ms p99 ${s.ackLatencyMs.p99} ms`);
  }
  return parts.join(' | ');
}

export interface ProgressReporter {
  update(snapshot: ProgressSnapshot): void;
  stop(snapshot: ProgressSnapshot): void;
}

export function createProgressReporter(options: {
  interactive: boolean;
  intervalMs?: number;
  stream?: NodeJS.WritableStream;
}): ProgressReporter {
  const stream = options.stream ?? process.stderr;
  return options.interactive ? new BarReporter(stream) : new LineReporter(stream, options.intervalMs ?? 5_000);
}

class BarReporter implements ProgressReporter {
  private bar: cliProgress.SingleBar | null = null;

  constructor(private readonly stream: NodeJS.WritableStream) {}

  update(s: ProgressSnapshot): void {
    const payload = { ...s, clock: s.clock ?? '', details: liveDetails(s) };
    if (!this.bar) {
      // Live runs have no total: no bar and no percentage, but when the next interval completes.
      const format =
        s.total === null
          ? 'live | {value} readings generated | acked {readingsAcked} | msgs {messagesAcked}/{messagesSent} | conn {connected} | {clock} | {details}'
          : '{bar} {percentage}% | {value}/{total} readings generated | acked {readingsAcked} | ' +
            'msgs {messagesAcked}/{messagesSent} | conn {connected} | {details}';
      this.bar = new cliProgress.SingleBar({ stream: this.stream, format, hideCursor: true, etaBuffer: 50 }, cliProgress.Presets.shades_classic);
      this.bar.start(s.total ?? 0, s.collected, payload);
    }
    this.bar.update(s.collected, payload);
  }

  stop(s: ProgressSnapshot): void {
    if (this.bar) {
      this.update(s);
      this.bar.stop();
    }
  }
}

class LineReporter implements ProgressReporter {
  // The first update prints at once; later ones every intervalMs.
  private lastPrintAt = Number.NEGATIVE_INFINITY;
  private readonly startedAt = performance.now();

  constructor(
    private readonly stream: NodeJS.WritableStream,
    private readonly intervalMs: number,
  ) {}

  update(s: ProgressSnapshot): void {
    const now = performance.now();
    if (now - this.lastPrintAt < this.intervalMs) return;
    this.lastPrintAt = now;
    this.print(s, now);
  }

  stop(s: ProgressSnapshot): void {
    this.print(s, performance.now());
  }

  private print(s: ProgressSnapshot, now: number): void {
    const elapsed = ((now - this.startedAt) / 1000).toFixed(1);
    const generated = s.total === null ? `${s.collected}` : `${s.collected}/${s.total}`;
    const clock = s.clock ? ` clock=${s.clock}` : '';
    const details = liveDetails(s);
    this.stream.write(
      `[simulate] ${elapsed}s generated=${generated} acked=${s.readingsAcked} ` +
        `messages=${s.messagesAcked}/${s.messagesSent} connected=${s.connected} reconnects=${s.reconnects}${clock}${details ? ` | ${details}` : ''}\n`,
    );
  }
}
