/**
 * Builders for the rating tests: instants from local wall-clock times (via luxon, independently of the
 * core's own offset arithmetic), interval series, small tariffs, and a deliberately naive reference
 * classifier that the core's results are checked against.
 */
import { DateTime } from 'luxon';
import type { Charges, ChargeLine, MeterInterval, TariffDocument, TariffTimelineEntry } from './index.js';
import { rateWindow } from './index.js';

/** Epoch ms of a local wall-clock time ("2026-03-08T01:45") in a zone; the earlier one when repeated. */
export function local(zone: string, wallClock: string): number {
  const dt = DateTime.fromISO(wallClock, { zone });
  if (!dt.isValid) throw new Error(`invalid local time ${wallClock} in ${zone}`);
  return dt.toMillis();
}

/** Epoch ms of an ISO instant with offset. */
export function at(iso: string): number {
  return Date.parse(iso);
}

/** Intervals of `seconds` from `from` (inclusive) to `to` (exclusive), energy from a function of the start. */
export function series(
  from: number,
  to: number,
  seconds: number,
  importMwh: (start: number, index: number) => number,
  exportMwh: (start: number, index: number) => number = () => 0,
): MeterInterval[] {
  const intervals: MeterInterval[] = [];
  for (let start = from, i = 0; start < to; start += seconds * 1000, i++) {
    intervals.push({ intervalStart: start, intervalSeconds: seconds, importMwh: importMwh(start, i), exportMwh: exportMwh(start, i), quality: 'actual' });
  }
  return intervals;
}

/** A one-season, one-period tariff priced `rate` per kWh; override any field. */
export function flatTariff(overrides: Partial<TariffDocument> = {}): TariffDocument {
  return {
    id: 'flat',
    name: 'Flat rate',
    currency: { code: 'USD', minorUnit: 2 },
    timeZone: 'America/Los_Angeles',
    seasons: [{ id: 'all', fromMonth: 1, toMonth: 12 }],
    energy: {
      periods: [{ id: 'any', tiers: [{ rate: '0.1' }] }],
      schedule: [{ seasons: ['all'], dayTypes: ['weekday', 'weekend'], periods: [{ from: '00:00', period: 'any' }] }],
    },
    ...overrides,
  };
}

/** A timeline with one tariff in effect forever. */
export function always(tariff: TariffDocument): TariffTimelineEntry[] {
  return [{ from: Number.NEGATIVE_INFINITY, tariff }];
}

/** Rates a window with one tariff in effect forever. */
export function rateWith(
  tariff: TariffDocument,
  intervals: MeterInterval[],
  from: number,
  to: number,
  extra: { meterIntervalSeconds?: number; billingCycle?: { from: number; to: number } } = {},
): Charges {
  return rateWindow({
    tariffTimeline: always(tariff),
    intervals,
    billingWindow: { from, to },
    meterIntervalSeconds: extra.meterIntervalSeconds ?? intervals[0]?.intervalSeconds ?? 900,
    ...(extra.billingCycle ? { billingCycle: extra.billingCycle } : {}),
  });
}

/** Lines of a type, e.g. linesOf(charges, 'energy'). */
export function linesOf<T extends ChargeLine['type']>(charges: Charges, type: T): Extract<ChargeLine, { type: T }>[] {
  return charges.lines.filter((l): l is Extract<ChargeLine, { type: T }> => l.type === type);
}

/**
 * Reference time-of-use classification, written independently of the core: luxon gives the local
 * date and time of each instant, holidays are given as explicit local dates, and the schedule is
 * searched linearly.
 */
export function referencePeriod(tariff: TariffDocument, instant: number, holidays: string[] = []): string {
  const localTime = DateTime.fromMillis(instant, { zone: tariff.timeZone });
  const season = tariff.seasons.find((s) =>
    s.fromMonth <= s.toMonth
      ? localTime.month >= s.fromMonth && localTime.month <= s.toMonth
      : localTime.month >= s.fromMonth || localTime.month <= s.toMonth,
  )!;
  const weekend = (tariff.weekendDays ?? [6, 7]).includes(localTime.weekday);
  const holiday = holidays.includes(localTime.toISODate()!);
  const rules = tariff.energy!.schedule.filter((r) => r.seasons.includes(season.id));
  const rule =
    (holiday && rules.find((r) => r.dayTypes.includes('holiday'))) ||
    rules.find((r) => r.dayTypes.includes(holiday || weekend ? 'weekend' : 'weekday'))!;
  const minute = localTime.hour * 60 + localTime.minute;
  let period = rule.periods[0].period;
  for (const start of rule.periods) {
    const [h, m] = start.from.split(':').map(Number);
    if (h * 60 + m <= minute) period = start.period;
  }
  return period;
}

/** kWh per energy period over all tiers, as exact decimal strings keyed by period. */
export function energyKwhByPeriod(charges: Charges): Record<string, string> {
  const sums: Record<string, bigint> = {};
  for (const line of linesOf(charges, 'energy')) {
    const [whole, fraction = ''] = line.quantity.split('.');
    sums[line.period] = (sums[line.period] ?? 0n) + BigInt(whole) * 1_000_000n + BigInt(fraction.padEnd(6, '0'));
  }
  return Object.fromEntries(Object.entries(sums).map(([period, mwh]) => [period, kwhText(mwh)]));
}

/** Exact kWh text of an integer mWh amount, written independently of the core ("1.5", "0.000001"). */
export function kwhText(mwh: bigint): string {
  const digits = mwh.toString().padStart(7, '0');
  const fraction = digits.slice(-6).replace(/0+$/, '');
  return digits.slice(0, -6) + (fraction ? `.${fraction}` : '');
}
