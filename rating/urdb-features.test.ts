/**
 * The URDB fields real rates use: tier units, demand tier units, ratchets, coincident demand (both
 * spellings), per-tier sell rates, free-text attributes, informative fields, startdate and enddate, the
 * newer API's camelCase spellings, and the decisions on data wrong on its face (rating/README.md).
 */
import { describe, expect, it } from 'vitest';
import multiTierTou from './fixtures/urdb-multi-tier-tou.json';
import { importUrdb, UrdbImportError, type UrdbIssue } from './index.js';
import { linesOf, local, rateWith, series } from './test-support.js';

const LA = 'America/Los_Angeles';
const allHours = (p = 0) => Array.from({ length: 12 }, () => Array(24).fill(p));
const base = {
  label: 'test-rate',
  name: 'Test rate',
  energyratestructure: [[{ rate: 0.1, unit: 'kWh' }]],
  energyweekdayschedule: allHours(),
  energyweekendschedule: allHours(),
};

function refusal(rate: unknown, options = {}): UrdbIssue[] {
  try {
    importUrdb(rate, { timeZone: LA, ...options });
  } catch (err) {
    expect(err).toBeInstanceOf(UrdbImportError);
    return (err as UrdbImportError).issues;
  }
  return expect.fail('expected a refusal');
}

describe('URDB import: units', () => {
  it('keeps kWh daily, kWh/kW and kWh/kW daily tiers; a missing max among kWh/kW blocks means no limit, as SAM reads it', () => {
    const { tariff } = importUrdb(
      {
        ...base,
        energyratestructure: [
          [
            { max: 200, unit: 'kWh/kW', rate: 0.03 },
            { max: 3000, unit: 'kWh', rate: 0.13 },
            { unit: 'kWh', rate: 0.1 },
            { max: 10, unit: 'kWh/kW daily', rate: 0.02 },
            { unit: 'kWh daily', rate: 0.01 },
          ],
        ],
      },
      { timeZone: LA },
    );
    expect(tariff.energy!.periods[0].tiers).toEqual([
      { max: '200', unit: 'kWh/kW', rate: '0.03' },
      { max: '3000', rate: '0.13' },
      { max: '100000000000000000000000000000000000000', rate: '0.1' },
      { max: '10', unit: 'kWh/kW daily', rate: '0.02' },
      { unit: 'kWh daily', rate: '0.01' },
    ]);
  });

  it('accepts "unit": "kW" on demand tiers (REopt) and refuses kVA, hp and kWh/kVA by name', () => {
    const demand = { demandratestructure: [[{ rate: 10, unit: 'kW' }]], demandweekdayschedule: allHours(), demandweekendschedule: allHours() };
    expect(importUrdb({ ...base, ...demand }, { timeZone: LA }).tariff.demand!.periods![0].tiers).toEqual([{ rate: '10' }]);
    expect(refusal({ ...base, ...demand, demandratestructure: [[{ rate: 10, unit: 'kVA' }]] }).map((i) => i.path)).toEqual([
      'rate.demandratestructure[0][0].unit',
    ]);
    expect(refusal({ ...base, ...demand, demandunits: 'hp' }).map((i) => i.path)).toEqual(['rate.demandunits']);
    expect(refusal({ ...base, energyratestructure: [[{ rate: 0.1, unit: 'kWh/kVA' }]] }).map((i) => i.path)).toEqual(['rate.energyratestructure[0][0].unit']);
  });

  it('rates in kW, with a warning, a generic demandunits kVA that the own unit of every structure contradicts as kW', () => {
    const demand = { demandratestructure: [[{ rate: 10 }]], demandweekdayschedule: allHours(), demandweekendschedule: allHours() };
    const flat = { flatdemandstructure: [[{ rate: 4 }]], flatdemandmonths: Array(12).fill(0) };
    const { tariff, warnings } = importUrdb({ ...base, ...demand, ...flat, demandunits: 'kVA', demandrateunit: 'kW', flatdemandunit: 'kW' }, { timeZone: LA });
    expect(tariff.demand!.periods![0].tiers).toEqual([{ rate: '10' }]);
    expect(warnings).toEqual([
      { path: 'rate.demandunits', message: 'unit "kVA" contradicts the kW of demandrateunit and flatdemandunit: demand is rated in kW, as the structure\'s own unit says' },
    ]);
    // Refused when a structure it applies to does not state kW itself.
    expect(refusal({ ...base, ...demand, ...flat, demandunits: 'kVA', flatdemandunit: 'kW' }).map((i) => i.path)).toEqual(['rate.demandunits']);
    expect(refusal({ ...base, ...demand, demandunits: 'kVA', demandrateunit: 'kVA' }).map((i) => i.path)).toEqual(['rate.demandrateunit', 'rate.demandunits']);
  });
});

describe('URDB import: ratchets, coincident demand, sell rates per tier', () => {
  it('turns lookbackpercent and lookbackmonths into billingDemand, warning when the look-back is assumed', () => {
    const rate = { ...base, flatdemandstructure: [[{ rate: 5 }]], lookbackpercent: 0.8, lookbackrange: 0, lookbackmonths: [false, false, false, false, false, true, true, true, false, false, false, false] };
    const assumed = importUrdb(rate, { timeZone: LA });
    expect(assumed.tariff.billingDemand).toEqual({ lookbackPercent: '0.8', lookbackMonths: [6, 7, 8], lookbackHorizonMonths: 11 });
    expect(assumed.warnings.map((w) => w.path)).toEqual(['rate.lookbackrange']);
    const stated = importUrdb(rate, { timeZone: LA, billingDemand: { lookbackHorizonMonths: 6 } });
    expect(stated.tariff.billingDemand!.lookbackHorizonMonths).toBe(6);
    expect(stated.warnings).toEqual([]);
    expect(importUrdb({ ...rate, lookbackrange: 12 }, { timeZone: LA }).tariff.billingDemand!.lookbackHorizonMonths).toBe(12);
    // Every month flagged: no month list (all of them).
    expect(importUrdb({ ...rate, lookbackmonths: Array(12).fill(true) }, { timeZone: LA }).tariff.billingDemand).toEqual({ lookbackPercent: '0.8', lookbackHorizonMonths: 11 });
    // Zero percentages say nothing (REopt's files carry them).
    expect(importUrdb({ ...base, lookbackpercent: 0, lookbackmonths: Array(12).fill(false) }, { timeZone: LA }).tariff.billingDemand).toBeUndefined();
  });

  it('reads coincident demand with its schedule under both spellings', () => {
    const schedule = allHours(0).map((row, m) => row.map((_, h) => (m >= 5 && m <= 8 && h >= 15 && h < 18 ? 1 : 0)));
    for (const field of ['coincidentrateschedule', 'coincidentschedule']) {
      const { tariff } = importUrdb({ ...base, coincidentratestructure: [[{ rate: 0 }], [{ rate: 8.55 }]], coincidentrateunit: 'kW', [field]: schedule }, { timeZone: LA });
      expect(tariff.demand!.coincident!.periods).toEqual([
        { id: 'p0', tiers: [{ rate: '0' }] },
        { id: 'p1', tiers: [{ rate: '8.55' }] },
      ]);
      const day = { from: local(LA, '2026-07-06T00:00'), to: local(LA, '2026-07-07T00:00') };
      const charges = rateWith(tariff, series(day.from, day.to, 3600, (_, h) => (h === 16 ? 20_000_000 : 1_000_000)), day.from, day.to);
      expect(linesOf(charges, 'demand').map((l) => [l.coincidentPeriod, l.quantity, l.amount])).toEqual([
        ['p0', '1', '0.00'],
        ['p1', '20', '171.00'],
      ]);
    }
  });

  it('keeps sell rates per tier when they differ', () => {
    const { tariff } = importUrdb(
      { ...base, energyratestructure: [[{ max: 2000, rate: 0.035, sell: 0.0177 }, { rate: 0.035, sell: 0.0279 }]] },
      { timeZone: LA },
    );
    expect(tariff.energy!.periods[0]).toEqual({
      id: 'p0',
      sell: '0.0177',
      tiers: [
        { max: '2000', rate: '0.035', sell: '0.0177' },
        { rate: '0.035', sell: '0.0279' },
      ],
    });
  });
});

describe('URDB import: what rates say in words, and dates', () => {
  it('keeps attributes, labels, supersedes and comments; shows attributes as notes on charges', () => {
    const { tariff } = importUrdb(
      {
        ...base,
        energyattrs: [{ 'Voltage Discount (2KV-<50KV)': '$-0.00106/Kwh' }],
        fixedattrs: [{ 'Daily Charge': '$1.06' }, { Empty: '' }],
        supercedes: '66635e3c5f3c73de780e30f8',
        energytoulabels: ['Off-Peak'],
        energycomments: 'Rate = delivery + supply',
        sourceReference: 'https://example.org/tariff.pdf',
        mindemand: 500,
      },
      { timeZone: LA },
    );
    expect(tariff.attributes).toEqual({
      energy: [{ name: 'Voltage Discount (2KV-<50KV)', value: '$-0.00106/Kwh' }],
      fixed: [{ name: 'Daily Charge', value: '$1.06' }, { name: 'Empty', value: '' }],
    });
    expect(tariff.urdb).toMatchObject({ supersedes: '66635e3c5f3c73de780e30f8', energyTouLabels: ['Off-Peak'], comments: ['Rate = delivery + supply'] });
    const day = { from: local(LA, '2026-07-06T00:00'), to: local(LA, '2026-07-07T00:00') };
    expect(rateWith(tariff, series(day.from, day.to, 3600, () => 1_000_000), day.from, day.to).notes).toEqual([
      'energy attribute (informative, not rated): Voltage Discount (2KV-<50KV): $-0.00106/Kwh',
      'fixed attribute (informative, not rated): Daily Charge: $1.06',
      'fixed attribute (informative, not rated): Empty',
    ]);
  });

  it('takes startdate as effectiveFrom unless told otherwise, and warns about an enddate already past', () => {
    const rate = { ...base, startdate: 1727762400, enddate: 1498806000 };
    const imported = importUrdb(rate, { timeZone: LA, asOf: Date.parse('2026-11-30T00:00:00Z') });
    expect(imported.tariff.effectiveFrom).toBe('2024-10-01T06:00:00Z');
    expect(imported.tariff.urdb).toMatchObject({ startDate: '2024-10-01T06:00:00Z', endDate: '2017-06-30T07:00:00Z' });
    expect(imported.warnings).toEqual([{ path: 'rate.enddate', message: 'the rate ended on 2017-06-30T07:00:00Z: it may have been superseded' }]);
    expect(importUrdb(rate, { timeZone: LA, effectiveFrom: '2026-01-01T00:00:00-08:00' }).tariff.effectiveFrom).toBe('2026-01-01T00:00:00-08:00');
    expect(importUrdb(rate, { timeZone: LA, effectiveFrom: null }).tariff.effectiveFrom).toBeUndefined();
    expect(importUrdb({ ...base, startdate: '2017-01-01 00:00:00' }, { timeZone: LA }).tariff.effectiveFrom).toBe('2017-01-01T08:00:00Z');
  });

  it('reads the newer API spellings (dgRules, flatDemandUnits, demandRateUnits, demandReactPwrCharge)', () => {
    const { tariff } = importUrdb({ ...base, dgRules: 'Net Metering', flatDemandUnits: 'kW', demandRateUnits: 'kW', flatdemandstructure: [[{ rate: 3 }]] }, { timeZone: LA });
    expect(tariff.netMetering).toEqual({});
    expect(importUrdb({ ...base, demandReactPwrCharge: 0.25 }, { timeZone: LA }).tariff.demand?.reactive).toEqual({ rate: '0.25' });
    expect(importUrdb({ ...base, demandReactPwrCharge: 0 }, { timeZone: LA }).tariff.demand).toBeUndefined();
  });
});

describe('URDB import: data wrong on its face', () => {
  it('refuses a tier that states no price at all, never pricing it at 0', () => {
    expect(refusal({ ...base, energyratestructure: [[{ unit: 'kWh' }]] })).toEqual([
      { path: 'rate.energyratestructure[0][0].rate', message: 'the tier states no price (no rate, no adj): refused rather than priced at 0' },
    ]);
    expect(refusal({ ...base, energyratestructure: [[{ sell: 0.024 }]] }).map((i) => i.path)).toEqual(['rate.energyratestructure[0][0].rate']);
  });

  it('bills a tier with adj but no rate at its adj, with a warning', () => {
    const { tariff, warnings } = importUrdb({ ...base, energyratestructure: [[{ adj: 0.11932 }]] }, { timeZone: LA });
    expect(tariff.energy!.periods[0].tiers).toEqual([{ rate: '0', adj: '0.11932' }]);
    expect(warnings).toEqual([{ path: 'rate.energyratestructure[0][0].rate', message: 'the tier has no rate: billed at its adj 0.11932 alone' }]);
  });

  it('imports negative prices and prices above the sanity bound as stated, with warnings', () => {
    const { warnings } = importUrdb(
      { ...base, energyratestructure: [[{ max: 400, rate: -0.0178 }, { rate: 0.95 }]], flatdemandstructure: [[{ rate: 150 }]] },
      { timeZone: LA },
    );
    expect(warnings.map((w) => [w.path, w.message])).toEqual([
      ['rate.energyratestructure[0][0].rate', 'negative price -0.0178 $/kWh: billed as a credit, as stated'],
      ['rate.energyratestructure[0][1].rate', 'price 0.95 $/kWh is above the sanity bound of 0.75 $/kWh: check for a typo'],
      ['rate.flatdemandstructure[0][0].rate', 'price 150 $/kW is above the sanity bound of 100 $/kW: check for a typo'],
    ]);
  });

  it('drops a max on the last tier and an empty last tier, with warnings', () => {
    const lastMax = importUrdb({ ...base, energyratestructure: [[{ max: 500, rate: 0.1 }, { max: 1000, rate: 0.12 }]] }, { timeZone: LA });
    expect(lastMax.tariff.energy!.periods[0].tiers).toEqual([{ max: '500', rate: '0.1' }, { rate: '0.12' }]);
    expect(lastMax.warnings.map((w) => w.path)).toEqual(['rate.energyratestructure[0][1].max']);
    const empty = importUrdb({ ...base, energyratestructure: [[{ rate: 0.09, adj: 0.07 }, { unit: 'kWh' }]] }, { timeZone: LA });
    expect(empty.tariff.energy!.periods[0].tiers).toEqual([{ rate: '0.09', adj: '0.07' }]);
    expect(empty.warnings.map((w) => w.path)).toEqual(['rate.energyratestructure[0][1]']);
  });

  it('refuses schedules that name a period the structure lacks', () => {
    const schedule = allHours(0);
    schedule[6][13] = 2;
    expect(refusal({ ...base, energyweekdayschedule: schedule }).map((i) => i.path)).toEqual(['rate.energyweekdayschedule[6][13]']);
  });

  it('accepts net metering for windows without export, with a warning', () => {
    const { tariff, warnings } = importUrdb({ ...multiTierTou, dgrules: 'Net Metering' }, { timeZone: LA });
    expect(tariff.netMetering).toEqual({});
    expect(warnings.map((w) => w.path)).toContain('rate.dgrules');
  });
});
