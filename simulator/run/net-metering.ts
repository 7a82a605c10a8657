/**
 * The simulator's own account of net metering with a kWh bank, from its ledger alone (it never calls the
 * rating core): per billing window and period, what was imported and exported, what the bank carried in,
 * what is billed, what is banked for the next window; the running net surplus and the true-up. It is an
 * independent sum to hold the API's charges against (`--reconcile` with the net-metering tariff).
 *
 * The rules, for a tariff whose periods are the same in every month (the simulator's, see
 * ../provision/simulator-tariff.ts), in integer mWh:
 * - per window and period: position = export - import + bank carried in; a deficit is billed, a surplus
 *   is the period's bank for the next window (a bank stays in its period, because the period holds the
 *   same time of day every month);
 * - the running net surplus X = max(X + the window's export - import over all periods, 0);
 * - the window whose last local day falls in the true-up month pays X (`trueUpKwh`); banks and X then
 *   start empty.
 */
import Decimal from 'decimal.js';
import { DAY_MS, utcMillis } from '../../common/time.js';
import { wallClock } from '../generator/wall-clock.js';

export interface PeriodEnergy {
  importMwh: bigint;
  exportMwh: bigint;
}

/** A billing window's energy per period (the ledger's), [from, to) in epoch ms. */
export interface WindowEnergy {
  from: number;
  to: number;
  periods: Record<string, PeriodEnergy>;
}

export interface ExpectedPeriod {
  period: string;
  importKwh: string;
  exportKwh: string;
  bankInKwh: string;
  billedKwh: string;
  /** carried out to the next window (0 in the true-up window) */
  bankOutKwh: string;
}

export interface ExpectedWindow {
  from: number;
  to: number;
  trueUp: boolean;
  periods: ExpectedPeriod[];
  /** the running net surplus after the window (0 after a true-up) */
  runningNetKwh: string;
  /** what the true-up pays, kWh; null outside the true-up window */
  trueUpKwh: string | null;
}

export interface NetMeteringRules {
  /** the tariff's zone: a window is the true-up window when its last local day is in `trueUpMonth` */
  timezone: string;
  trueUpMonth: number;
  /** every period of the tariff, in order */
  periods: readonly string[];
}

/** The expected state of each window, in order; `windows` are consecutive, from a settlement year's start. */
export function expectedNetMetering(windows: readonly WindowEnergy[], rules: NetMeteringRules): ExpectedWindow[] {
  const clock = wallClock(rules.timezone);
  let banks = new Map<string, bigint>();
  let runningNet = 0n;
  return windows.map((window) => {
    const trueUp = clock.localTime(window.to - 1).month === rules.trueUpMonth;
    const nextBanks = new Map<string, bigint>();
    let windowNet = 0n;
    const periods = rules.periods.map((period): ExpectedPeriod => {
      const energy = window.periods[period] ?? { importMwh: 0n, exportMwh: 0n };
      const net = energy.exportMwh - energy.importMwh;
      windowNet += net;
      const bankIn = banks.get(period) ?? 0n;
      const position = net + bankIn;
      if (position > 0n) nextBanks.set(period, position);
      return {
        period,
        importKwh: kwh(energy.importMwh),
        exportKwh: kwh(energy.exportMwh),
        bankInKwh: kwh(bankIn),
        billedKwh: kwh(position < 0n ? -position : 0n),
        bankOutKwh: kwh(trueUp || position < 0n ? 0n : position),
      };
    });
    runningNet = runningNet + windowNet > 0n ? runningNet + windowNet : 0n;
    const trueUpKwh = trueUp ? kwh(runningNet) : null;
    banks = trueUp ? new Map() : nextBanks;
    if (trueUp) runningNet = 0n;
    return { from: window.from, to: window.to, trueUp, periods, runningNetKwh: kwh(runningNet), trueUpKwh };
  });
}

/** The local months (billing day 1) that overlap [fromMs, toMs) in `timezone`, as [from, to) spans. */
export function billingMonths(timezone: string, fromMs: number, toMs: number): { from: number; to: number }[] {
  const clock = wallClock(timezone);
  const months: { from: number; to: number }[] = [];
  const first = clock.localTime(fromMs);
  let year = first.year;
  let month = first.month;
  for (;;) {
    const from = monthStart(timezone, year, month);
    if (from >= toMs) break;
    [year, month] = month === 12 ? [year + 1, 1] : [year, month + 1];
    months.push({ from, to: monthStart(timezone, year, month) });
  }
  return months;
}

function monthStart(timezone: string, year: number, month: number): number {
  const dayNumber = Math.floor(utcMillis(year, month, 1) / DAY_MS);
  return wallClock(timezone).instantAt(dayNumber, 0);
}

/** Integer mWh as an exact decimal string of kWh (6 decimals at most, no trailing zeros). */
export function kwh(mwh: bigint): string {
  return new Decimal(mwh.toString()).div(1_000_000).toFixed();
}

/** Two decimal strings of kWh are the same quantity ("1.50" and "1.5" are). */
export function sameKwh(a: string | undefined | null, b: string): boolean {
  return a !== undefined && a !== null && new Decimal(a).eq(b);
}
