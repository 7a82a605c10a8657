/**
 * The ledger: exactly what the gateway acknowledged as valid readings, so that a test can reconcile the
 * stored data with it to the mWh. See README.md "Ledger" for the format and its semantics.
 *
 * A reading counts once per (meterId, intervalStart), with the value of its first settled copy: the
 * simulator only ever sends one valid value per interval (duplicates are identical; conflicting variants
 * are invalid items, sent after the original was acknowledged).
 */
import { writeFile, rename } from 'node:fs/promises';
import { mwhToWhString } from '../../common/reading.js';
import { isoUtc } from '../../common/time.js';
import type { OutgoingItem } from '../generator/index.js';

export interface LedgerMeter {
  readings: number;
  /** Exact decimal Wh. */
  importWh: string;
  exportWh: string;
}

/** The `--ledger` file, key order included. */
export interface LedgerDocument {
  from: string;
  to: string;
  meters: Record<string, LedgerMeter>;
  invalidSent: number;
  duplicatesSent: number;
}

interface MeterTotals {
  readings: number;
  importMwh: bigint;
  exportMwh: bigint;
  /** Intervals already counted, one bit per interval from `baseMs`. */
  counted: Uint8Array;
}

export class Ledger {
  invalidSent = 0;
  duplicatesSent = 0;
  private readonly meters = new Map<string, MeterTotals>();
  private fromMs: number;
  private toMs: number;

  /**
   * `baseMs`: the earliest interval start a valid reading can have (the window start); every meter of
   * `meterIds` appears in the document, with 0 readings if none was acknowledged.
   */
  constructor(
    meterIds: readonly string[],
    private readonly baseMs: number,
    private readonly intervalMs: number,
    window: { fromMs: number; toMs: number },
  ) {
    this.fromMs = window.fromMs;
    this.toMs = window.toMs;
    for (const id of meterIds) this.meters.set(id, { readings: 0, importMwh: 0n, exportMwh: 0n, counted: new Uint8Array(0) });
  }

  /** Widens the window (live mode, as the simulated clock advances). */
  setWindow(fromMs: number, toMs: number): void {
    this.fromMs = fromMs;
    this.toMs = toMs;
  }

  /** Records the items of a settled message. */
  record(items: readonly OutgoingItem[]): void {
    for (const item of items) {
      if (item.kind === 'invalid' || item.kind === 'conflict') {
        this.invalidSent++;
        continue;
      }
      const reading = item.reading!;
      const totals = this.meters.get(reading.meterId);
      if (!totals) throw new Error(`ledger: unknown meter ${reading.meterId}`);
      if (!this.markCounted(totals, reading.intervalStart)) {
        this.duplicatesSent++;
        continue;
      }
      totals.readings++;
      totals.importMwh += BigInt(reading.importMwh);
      totals.exportMwh += BigInt(reading.exportMwh);
    }
  }

  /** Readings counted over all meters. */
  get readings(): number {
    let count = 0;
    for (const totals of this.meters.values()) count += totals.readings;
    return count;
  }

  toDocument(): LedgerDocument {
    const meters: Record<string, LedgerMeter> = {};
    for (const id of [...this.meters.keys()].sort()) {
      const totals = this.meters.get(id)!;
      meters[id] = {
        readings: totals.readings,
        importWh: mwhToWhString(totals.importMwh),
        exportWh: mwhToWhString(totals.exportMwh),
      };
    }
    return {
      from: isoUtc(this.fromMs),
      to: isoUtc(this.toMs),
      meters,
      invalidSent: this.invalidSent,
      duplicatesSent: this.duplicatesSent,
    };
  }

  /** Writes the document atomically (temporary file, then rename). */
  async write(path: string): Promise<void> {
    const temporary = `${path}.${process.pid}.tmp`;
    await writeFile(temporary, JSON.stringify(this.toDocument(), null, 2) + '\n');
    await rename(temporary, path);
  }

  /** Sets the bit of an interval; false when it was already set. */
  private markCounted(totals: MeterTotals, intervalStart: number): boolean {
    const index = (intervalStart - this.baseMs) / this.intervalMs;
    if (!Number.isInteger(index) || index < 0) {
      throw new Error(`ledger: interval ${isoUtc(intervalStart)} outside the window`);
    }
    const byte = index >> 3;
    if (byte >= totals.counted.length) {
      const grown = new Uint8Array(Math.max(byte + 1, totals.counted.length * 2, 16));
      grown.set(totals.counted);
      totals.counted = grown;
    }
    const bit = 1 << (index & 7);
    if (totals.counted[byte] & bit) return false;
    totals.counted[byte] |= bit;
    return true;
  }
}
