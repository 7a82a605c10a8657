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
import type { PeriodEnergy, WindowEnergy } from './net-metering.js';

/**
 * The energy of each billing window per tariff period, kept beside the totals for a net-metered fleet:
 * what the simulator's own net-metering account (./net-metering.ts) is computed from.
 */
export interface LedgerPeriods {
  /** consecutive billing windows [from, to), epoch ms */
  windows: readonly { from: number; to: number }[];
  /** the tariff period of an interval start */
  periodOf: (intervalStart: number) => string;
}

export interface LedgerWindow {
  from: string;
  to: string;
  /** per period: exact decimal Wh */
  periods: Record<string, { importWh: string; exportWh: string }>;
}

export interface LedgerMeter {
  readings: number;
  /** Exact decimal Wh. */
  importWh: string;
  exportWh: string;
  /** With reactive energy (--reactive): the readings that carried it, and its sums, exact decimal varh. */
  reactiveReadings?: number;
  reactiveImportVarh?: string;
  reactiveExportVarh?: string;
  /** With a net-metering tariff: each billing window's energy per period. */
  windows?: LedgerWindow[];
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
  reactiveReadings: number;
  reactiveImportMvarh: bigint;
  reactiveExportMvarh: bigint;
  /** Intervals already counted, one bit per interval from `baseMs`. */
  counted: Uint8Array;
  /** With `LedgerPeriods`: per window, per period. */
  windows: Map<string, PeriodEnergy>[] | null;
}

export class Ledger {
  invalidSent = 0;
  duplicatesSent = 0;
  private readonly meters = new Map<string, MeterTotals>();
  private fromMs: number;
  private toMs: number;

  /**
   * `baseMs`: the earliest interval start a valid reading can have (the window start); every meter of
   * `meterIds` appears in the document, with 0 readings if none was acknowledged. `reactive`: the
   * document carries each meter's reactive energy.
   */
  constructor(
    meterIds: readonly string[],
    private readonly baseMs: number,
    private readonly intervalMs: number,
    window: { fromMs: number; toMs: number },
    private readonly periods: LedgerPeriods | null = null,
    private readonly reactive = false,
  ) {
    this.fromMs = window.fromMs;
    this.toMs = window.toMs;
    for (const id of meterIds) {
      const windows = periods ? periods.windows.map(() => new Map<string, PeriodEnergy>()) : null;
      this.meters.set(id, {
        readings: 0, importMwh: 0n, exportMwh: 0n, reactiveReadings: 0, reactiveImportMvarh: 0n, reactiveExportMvarh: 0n,
        counted: new Uint8Array(0), windows,
      });
    }
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
      if (reading.reactiveImportMvarh !== undefined || reading.reactiveExportMvarh !== undefined) {
        totals.reactiveReadings++;
        totals.reactiveImportMvarh += BigInt(reading.reactiveImportMvarh ?? 0);
        totals.reactiveExportMvarh += BigInt(reading.reactiveExportMvarh ?? 0);
      }
      if (totals.windows) this.recordPeriod(totals.windows, reading.intervalStart, BigInt(reading.importMwh), BigInt(reading.exportMwh));
    }
  }

  /** A meter's energy per billing window and period (empty without `LedgerPeriods`). */
  windowEnergy(meterId: string): WindowEnergy[] {
    const windows = this.meters.get(meterId)?.windows;
    if (!windows || !this.periods) return [];
    return this.periods.windows.map((span, i) => ({ from: span.from, to: span.to, periods: Object.fromEntries(windows[i]!) }));
  }

  private recordPeriod(windows: Map<string, PeriodEnergy>[], intervalStart: number, importMwh: bigint, exportMwh: bigint): void {
    const spans = this.periods!.windows;
    let lo = 0;
    let hi = spans.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (intervalStart < spans[mid]!.from) hi = mid - 1;
      else if (intervalStart >= spans[mid]!.to) lo = mid + 1;
      else {
        const period = this.periods!.periodOf(intervalStart);
        const energy = windows[mid]!.get(period) ?? { importMwh: 0n, exportMwh: 0n };
        energy.importMwh += importMwh;
        energy.exportMwh += exportMwh;
        windows[mid]!.set(period, energy);
        return;
      }
    }
    throw new Error(`ledger: interval ${isoUtc(intervalStart)} in no billing window`);
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
        ...(this.reactive
          ? {
              reactiveReadings: totals.reactiveReadings,
              reactiveImportVarh: mwhToWhString(totals.reactiveImportMvarh),
              reactiveExportVarh: mwhToWhString(totals.reactiveExportMvarh),
            }
          : {}),
        ...(totals.windows ? { windows: this.windowDocuments(totals.windows) } : {}),
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

  private windowDocuments(windows: Map<string, PeriodEnergy>[]): LedgerWindow[] {
    return this.periods!.windows.map((span, i) => ({
      from: isoUtc(span.from),
      to: isoUtc(span.to),
      periods: Object.fromEntries(
        [...windows[i]!.entries()]
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([period, e]) => [period, { importWh: mwhToWhString(e.importMwh), exportWh: mwhToWhString(e.exportMwh) }]),
      ),
    }));
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
