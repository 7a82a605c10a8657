/**
 * Metering through the core's public entry points: the URDB import of `dgrules`, `annualmincharge` and
 * the options beside `rate`; the native document's metering fields and their consistency; `rateWindow`
 * under each mode, with and without the state carried in.
 */
import { describe, expect, it } from 'vitest';
import { importUrdb, rateWindow, RatingError, tariffSchema, UrdbImportError, type TariffDocument } from '../index.js';
import { EMPTY_METERING_STATE } from './billing-windows.js';
import { meteringOfTariff } from './options.js';
import { months, reading, touTariff, ZONE } from './test-tariffs.js';

const allHours = (p: number) => Array.from({ length: 12 }, () => Array(24).fill(p));
const rate = {
  label: 'nem-test',
  energyratestructure: [[{ rate: 0.1, sell: 0.05 }]],
  energyweekdayschedule: allHours(0),
  energyweekendschedule: allHours(0),
};

function refusal(body: Record<string, unknown>, options: Parameters<typeof importUrdb>[1] = { timeZone: ZONE }): string[] {
  try {
    importUrdb(body, options);
  } catch (err) {
    expect(err).toBeInstanceOf(UrdbImportError);
    return (err as UrdbImportError).issues.map((i) => i.path);
  }
  return [];
}

describe('URDB import of metering', () => {
  it('maps every dgrules value to its metering mode', () => {
    const mode = (dgrules: string) => importUrdb({ ...rate, dgrules }, { timeZone: ZONE }).tariff.meteringMode;
    expect(mode('Net Billing Instantaneous')).toBe('net_billing_instantaneous');
    expect(mode('Net Billing Hourly')).toBe('net_billing_hourly');
    expect(mode('Buy All Sell All')).toBe('buy_all_sell_all');
    expect(mode('Net Metering')).toBe('net_metering');
    expect(importUrdb(rate, { timeZone: ZONE }).tariff.meteringMode).toBeUndefined();
    expect(refusal({ ...rate, dgrules: 'Net Billing Monthly' })).toEqual(['rate.dgrules']);
  });

  it('takes the net metering options beside rate, and states the defaults in a warning when there are none', () => {
    const options = { carryOver: 'dollars' as const, trueUpMonth: 5, trueUpSellRate: '0.02789', trueUpCreditRollover: true };
    const withOptions = importUrdb({ ...rate, dgrules: 'Net Metering' }, { timeZone: ZONE, netMetering: options });
    expect(withOptions.tariff.netMetering).toEqual(options);
    expect(withOptions.warnings).toEqual([]);
    const defaults = importUrdb({ ...rate, dgrules: 'Net Metering' }, { timeZone: ZONE });
    expect(defaults.tariff.netMetering).toEqual({});
    expect(defaults.warnings[0].message).toMatch(/true-up in December at 0/);
    expect(meteringOfTariff(defaults.tariff)).toEqual({
      mode: 'net_metering',
      netMetering: { carryOver: 'kWh', trueUpMonth: 12, trueUpSellRate: '0', trueUpCreditRollover: false },
    });
    expect(importUrdb({ ...rate, usenetmetering: true }, { timeZone: ZONE }).tariff.meteringMode).toBe('net_metering');
    expect(importUrdb(rate, { timeZone: ZONE, netMetering: { trueUpMonth: 4 } }).tariff.netMetering).toEqual({ trueUpMonth: 4 });
  });

  it('takes a net billing credit balance beside a net billing rate, and refuses options that contradict dgrules', () => {
    const netBilling = { carryOver: 'dollars' as const, trueUpMonth: 4, applyCreditInMonthEarned: true };
    const { tariff } = importUrdb({ ...rate, dgrules: 'Net Billing Hourly' }, { timeZone: ZONE, netBilling });
    expect(tariff).toMatchObject({ meteringMode: 'net_billing_hourly', netBilling });
    expect(refusal({ ...rate, dgrules: 'Net Metering' }, { timeZone: ZONE, netBilling })).toEqual(['netBilling']);
    expect(refusal({ ...rate, dgrules: 'Buy All Sell All' }, { timeZone: ZONE, netBilling })).toEqual(['netBilling']);
    expect(refusal({ ...rate, dgrules: 'Net Billing Hourly' }, { timeZone: ZONE, netMetering: {} })).toEqual(['netMetering']);
  });

  it('imports annualmincharge as the annual minimum', () => {
    expect(importUrdb({ ...rate, annualmincharge: 100 }, { timeZone: ZONE }).tariff.annualMinimumCharge).toEqual({ amount: '100' });
    expect(importUrdb({ ...rate, annualmincharge: 0 }, { timeZone: ZONE }).tariff.annualMinimumCharge).toBeUndefined();
    expect(refusal({ ...rate, annualmincharge: 'lots' })).toEqual(['rate.annualmincharge']);
  });
});

describe('native documents', () => {
  it('refuses metering fields that contradict each other, naming them', () => {
    const paths = (doc: unknown) => {
      const parsed = tariffSchema.safeParse(doc);
      return parsed.success ? [] : parsed.error.issues.map((i) => i.path.join('.'));
    };
    expect(paths({ ...touTariff, meteringMode: 'buy_all_sell_all', netMetering: {} })).toEqual(['meteringMode']);
    expect(paths({ ...touTariff, netMetering: {}, netBilling: {} })).toEqual(['netBilling']);
    // A surplus is paid for at the true-up, never charged for.
    expect(paths({ ...touTariff, netMetering: { trueUpSellRate: '-0.01' } })).toEqual(['netMetering.trueUpSellRate']);
    expect(paths({ ...touTariff, netMetering: { trueUpSellRate: '0.03' } })).toEqual([]);
    expect(paths({ ...touTariff, meteringMode: 'net_billing_hourly', netBilling: { trueUpMonth: 3 }, annualMinimumCharge: { amount: '120' } })).toEqual([]);
  });
});

describe('rateWindow under a metering mode', () => {
  const nem: TariffDocument = { ...touTariff, id: 'tou-nem', meteringMode: 'net_metering', netMetering: { trueUpMonth: 6 } };
  const [may] = months(ZONE, 2018, 5, 5);
  const exporting = [reading(ZONE, '2018-05-01T18:00', 0, 10), reading(ZONE, '2018-05-02T02:00', 2, 0)];
  const input = { tariffTimeline: [{ from: Number.MIN_SAFE_INTEGER, tariff: nem }], meterIntervalSeconds: 3600, billingWindow: may.window, billingCycle: may.billingCycle };

  it('refuses a window with export when what earlier windows carried is not given, rather than billing it gross', () => {
    expect(() => rateWindow({ ...input, intervals: exporting })).toThrow(RatingError);
    try {
      rateWindow({ ...input, intervals: exporting });
    } catch (err) {
      expect((err as RatingError).code).toBe('net_metering_not_rated');
      expect((err as RatingError).details).toEqual(['2018-05-02T01:00:00Z: exports']);
    }
  });

  it('nets with the state carried in, and rates a window without export as the first of its settlement year (saying so)', () => {
    const carriedIn = { ...EMPTY_METERING_STATE, banks: [{ period: 'off', kWh: '1.5', slot: 0 }] };
    const charges = rateWindow({ ...input, intervals: exporting, carriedIn });
    expect(charges.lines.find((l) => l.type === 'energy')).toMatchObject({ period: 'off', quantity: '0.5', amount: '0.05' });
    expect(charges.metering?.carriedOut.banks).toEqual([{ period: 'peak_w', kWh: '10', slot: 3 }]);
    const quiet = rateWindow({ ...input, intervals: [reading(ZONE, '2018-05-02T02:00', 2, 0)] });
    expect(quiet.total).toBe('5.20');
    expect(quiet.notes?.some((n) => n.startsWith('metering: nothing carried in'))).toBe(true);
  });

  it('nets per local hour without any history, and refuses a December window settling an annual minimum without it', () => {
    const hourly: TariffDocument = { ...touTariff, id: 'tou-hourly', meteringMode: 'net_billing_hourly' };
    const quarter = (minute: string, imp: number, exp: number) => ({ ...reading(ZONE, `2018-05-01T10:${minute}`, imp, exp, 900) });
    const charges = rateWindow({
      tariffTimeline: [{ from: Number.MIN_SAFE_INTEGER, tariff: hourly }],
      intervals: [quarter('00', 3, 0), quarter('15', 0, 1)],
      meterIntervalSeconds: 900,
      billingWindow: may.window,
      billingCycle: may.billingCycle,
    });
    expect(charges.lines.find((l) => l.type === 'energy')).toMatchObject({ quantity: '2' });
    expect(charges.lines.some((l) => l.type === 'export_credit')).toBe(false);

    const annual: TariffDocument = { ...touTariff, id: 'tou-annual', annualMinimumCharge: { amount: '100' } };
    const [december] = months(ZONE, 2018, 12, 12);
    const december2018 = { tariffTimeline: [{ from: Number.MIN_SAFE_INTEGER, tariff: annual }], intervals: [reading(ZONE, '2018-12-03T02:00', 1, 0)], meterIntervalSeconds: 3600, billingWindow: december.window, billingCycle: december.billingCycle };
    expect(() => rateWindow(december2018)).toThrow(/annual minimum/);
    const [june] = months(ZONE, 2018, 6, 6);
    const exportingJune = rateWindow({ ...december2018, intervals: [reading(ZONE, '2018-06-04T10:00', 1, 4)], billingWindow: june.window, billingCycle: june.billingCycle });
    expect(exportingJune.lines.find((l) => l.type === 'export_credit')).toMatchObject({ quantity: '4', amount: '-0.16' });
    expect(exportingJune.notes).toBeUndefined();
    const settled = rateWindow({ ...december2018, carriedIn: { ...EMPTY_METERING_STATE, yearBills: '60' } });
    expect(settled.lines.find((l) => l.type === 'minimum')).toMatchObject({ scope: 'annual', billed: '65.10', amount: '34.90' });
  });
});
