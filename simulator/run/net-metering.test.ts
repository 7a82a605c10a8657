/**
 * The simulator's own net-metering account (from its ledger) against the pure rating core's
 * `rateMeteredWindows` over a year of residential-solar readings: the kWh banks carried out of every
 * window, the kWh billed per period and the true-up agree to the mWh, for the simulator's two-period
 * tariff and a one-period variant, with the true-up in December or in April.
 */
import Decimal from 'decimal.js';
import { describe, expect, it } from 'vitest';
import { importUrdb, rateMeteredWindows, type MeterInterval } from '../../rating/index.js';
import { createFleet, readingsFor, type MeterSpec } from '../generator/index.js';
import type { OutgoingItem } from '../generator/index.js';
import { periodAt, simulatorTariffRequest } from '../provision/simulator-tariff.js';
import { Ledger } from './ledger.js';
import { billingMonths, expectedNetMetering, sameKwh, type ExpectedWindow } from './net-metering.js';

const ZONE = 'America/New_York';
const FROM = Date.parse('2026-01-01T05:00:00Z'); // local midnight, January 1
const TO = Date.parse('2027-01-01T05:00:00Z');
const months = billingMonths(ZONE, FROM, TO);
const meters = createFleet({ meters: 3, seed: 'nem-core', profile: 'residential-solar', timezone: ZONE, intervalSeconds: 3600 }).meters;
const readings = new Map(meters.map((m) => [m.id, [...readingsFor(m, FROM, TO)]]));

type Variant = { name: string; periods: string[]; periodOf: (ms: number) => string; trueUpMonth: number };
const VARIANTS: Variant[] = [
  { name: 'two periods, true-up in December', periods: ['p0', 'p1'], periodOf: (ms) => periodAt(ZONE, ms), trueUpMonth: 12 },
  { name: 'two periods, true-up in April', periods: ['p0', 'p1'], periodOf: (ms) => periodAt(ZONE, ms), trueUpMonth: 4 },
  { name: 'one period, true-up in December', periods: ['p0'], periodOf: () => 'p0', trueUpMonth: 12 },
];

/** The simulator's net-metering tariff as the rating core imports it (one period: peak hours dropped). */
function tariffOf(variant: Variant) {
  const request = simulatorTariffRequest(ZONE, 'net-metering') as { rate: Record<string, unknown> };
  const rate = { ...request.rate };
  if (variant.periods.length === 1) {
    const allOffPeak = Array.from({ length: 12 }, () => Array.from({ length: 24 }, () => 0));
    Object.assign(rate, { energyratestructure: [(rate.energyratestructure as unknown[])[0]], energyweekdayschedule: allOffPeak, energyweekendschedule: allOffPeak });
  }
  return importUrdb(rate, {
    timeZone: ZONE,
    effectiveFrom: null,
    netMetering: { carryOver: 'kWh', trueUpMonth: variant.trueUpMonth, trueUpSellRate: '0.04' },
  }).tariff;
}

function ledgerOf(meter: MeterSpec, variant: Variant): Ledger {
  const ledger = new Ledger([meter.id], FROM, 3_600_000, { fromMs: FROM, toMs: TO }, { windows: months, periodOf: variant.periodOf });
  const items = readings.get(meter.id)!.map((reading): OutgoingItem => ({
    kind: 'reading', meterId: meter.id, intervalStart: reading.intervalStart, reading, json: null, rawPayload: null, invalidKind: null, expectedReason: null,
  } as OutgoingItem));
  ledger.record(items);
  return ledger;
}

describe.each(VARIANTS)('net metering with a kWh bank, the simulator against the rating core: $name', (variant) => {
  const tariff = tariffOf(variant);

  it.each(meters.map((m) => [m.id, m] as const))('%s: banks, billed kWh and the true-up agree in every window of the year', (_id, meter) => {
    const expected = expectedNetMetering(ledgerOf(meter, variant).windowEnergy(meter.id), { timezone: ZONE, trueUpMonth: variant.trueUpMonth, periods: variant.periods });
    const intervals: MeterInterval[] = readings.get(meter.id)!.map((r) => ({ ...r, quality: 'actual' as const }));
    const rated = rateMeteredWindows({
      tariffTimeline: [{ from: FROM, tariff }],
      intervals,
      meterIntervalSeconds: 3600,
      windows: months.map((window) => ({ window })),
    });
    expect(rated).toHaveLength(12);
    expect(expected.filter((w) => w.trueUp)).toHaveLength(1);
    rated.forEach((charges, i) => {
      const want: ExpectedWindow = expected[i]!;
      const metering = charges.metering;
      expect(metering.trueUp).toBe(want.trueUp);
      for (const period of want.periods) {
        const got = metering.periods?.find((p) => p.period === period.period);
        const bank = metering.carriedOut.banks.filter((b) => b.period === period.period).reduce((sum, b) => sum + Number(b.kWh) * 1e6, 0);
        expect(got, `${period.period} in window ${i}`).toBeDefined();
        expect(sameKwh(got!.importKwh, period.importKwh) && sameKwh(got!.exportKwh, period.exportKwh), `energy of ${period.period} in window ${i}`).toBe(true);
        expect(sameKwh(got!.bankInKwh, period.bankInKwh), `bank into ${period.period} in window ${i}: ${got!.bankInKwh} vs ${period.bankInKwh}`).toBe(true);
        expect(sameKwh(got!.billedKwh, period.billedKwh), `billed ${period.period} in window ${i}`).toBe(true);
        expect(Math.round(bank), `bank out of ${period.period} in window ${i}`).toBe(Math.round(Number(period.bankOutKwh) * 1e6));
      }
      expect(sameKwh(metering.carriedOut.runningNetKwh, want.runningNetKwh), `running net after window ${i}`).toBe(true);
      if (want.trueUp) expect(sameKwh(metering.trueUpKwh, want.trueUpKwh!), `true-up: ${metering.trueUpKwh} vs ${want.trueUpKwh}`).toBe(true);
    });
  });
});

describe('the account itself', () => {
  it('banks fill in summer and the true-up pays the running net: a year of a sized array carries a bank into autumn', () => {
    const meter = meters[0]!;
    const variant = VARIANTS[0]!;
    const expected = expectedNetMetering(ledgerOf(meter, variant).windowEnergy(meter.id), { timezone: ZONE, trueUpMonth: 12, periods: variant.periods });
    const bankOut = (w: ExpectedWindow) => w.periods.reduce((sum, p) => sum + Number(p.bankOutKwh), 0);
    expect(bankOut(expected[0]!)).toBe(0); // January: the home imports more than it exports in every period
    expect(bankOut(expected[6]!)).toBeGreaterThan(bankOut(expected[4]!)); // the bank grows through summer
    expect(bankOut(expected[11]!)).toBe(0); // emptied at the true-up
    // before the true-up, what was billed minus what is banked is exactly the net import so far, per period
    for (const period of variant.periods) {
      const rows = expected.slice(0, 11).map((w) => w.periods.find((p) => p.period === period)!);
      const billed = rows.reduce((sum, p) => sum.plus(p.billedKwh), new Decimal(0));
      const netImport = rows.reduce((sum, p) => sum.plus(p.importKwh).minus(p.exportKwh), new Decimal(0));
      expect(billed.minus(rows[10]!.bankOutKwh).eq(netImport)).toBe(true);
    }
    expect(new Decimal(expected[11]!.trueUpKwh!).gte(0)).toBe(true);
  });
});
