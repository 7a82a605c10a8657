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
  private readonly bar: cliProgress.SingleBar;
  private started = false;

  constructor(stream: NodeJS.WritableStream) {
    this.bar = new cliProgress.SingleBar(
      {
        stream,
        format:
          '{bar} {percentage}% | {value}/{total} readings generated | acked {readingsAcked} | ' +
          'msgs {messagesAcked}/{messagesSent} | conn {connected} | {clock}',
        hideCursor: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
  }

  update(s: ProgressSnapshot): void {
    const payload = { ...s, clock: s.clock ?? '' };
    if (!this.started) {
      this.bar.start(s.total ?? 0, s.collected, payload);
      this.started = true;
    }
    if (s.total === null) this.bar.setTotal(s.collected);
    this.bar.update(s.collected, payload);
  }

  stop(s: ProgressSnapshot): void {
    if (this.started) {
      this.update(s);
      this.bar.stop();
    }
  }
}

class LineReporter implements ProgressReporter {
  private lastPrintAt = 0;
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
    this.stream.write(
      `[simulate] ${elapsed}s generated=${generated} acked=${s.readingsAcked} ` +
        `messages=${s.messagesAcked}/${s.messagesSent} connected=${s.connected} reconnects=${s.reconnects}${clock}\n`,
    );
  }
}
