import { describe, expect, it } from 'vitest';
import multiTierTou from './fixtures/urdb-multi-tier-tou.json';
import { tariffSchema, UrdbImportError, urdbToTariff, type UrdbIssue } from './index.js';
import { linesOf, local, rateWith, series } from './test-support.js';

const LA = 'America/Los_Angeles';

function issuesOf(rate: unknown): UrdbIssue[] {
  try {
    urdbToTariff(rate, { timeZone: LA });
  } catch (error) {
    expect(error).toBeInstanceOf(UrdbImportError);
    return (error as UrdbImportError).issues;
  }
  return expect.fail('expected the URDB rate to be refused');
}

describe('urdbToTariff: a multi-tier TOU rate shaped like an OpenEI response', () => {
  const tariff = urdbToTariff(multiTierTou, { timeZone: LA });

  it('converts to a valid native tariff: seasons from the schedules, periods keyed p0, p1, ...', () => {
    expect(tariffSchema.safeParse(tariff).success).toBe(true);
    expect(tariff.id).toBe('5c6d4e8f5457a3c81f7a9b21');
    expect(tariff.seasons).toEqual([
      { id: 'oct-may', fromMonth: 10, toMonth: 5 },
      { id: 'jun-sep', fromMonth: 6, toMonth: 9 },
    ]);
    expect(tariff.energy?.periods.map((p) => p.id)).toEqual(['p0', 'p1', 'p2']);
    expect(tariff.energy?.periods[1]).toEqual({
      id: 'p1',
      tiers: [{ max: '500', rate: '0.12', adj: '0.004' }, { rate: '0.1', adj: '0.004' }],
      sell: '0.03',
    });
    expect(tariff.energy?.schedule).toContainEqual({
      seasons: ['jun-sep'],
      dayTypes: ['weekday'],
      periods: [
        { from: '00:00', period: 'p0' },
        { from: '12:00', period: 'p1' },
        { from: '18:00', period: 'p0' },
      ],
    });
    expect(tariff.demand?.windowMinutes).toBe(15);
    expect(tariff.demand?.flat).toEqual([
      { id: 'p0', seasons: ['jun-sep'], tiers: [{ max: '50', rate: '4' }, { rate: '5.5' }] },
      { id: 'p1', seasons: ['oct-may'], tiers: [{ rate: '3.25' }] },
    ]);
    expect(tariff.fixedCharges).toEqual([{ name: 'Fixed charge', amount: '150', per: 'month' }]);
    expect(tariff.minimumCharge).toEqual({ amount: '200', per: 'month' });
    expect(tariff.urdb).toMatchObject({ label: '5c6d4e8f5457a3c81f7a9b21', utility: 'Sierra Foothills Electric Cooperative' });
  });

  it('rates July 2026 with per-period tiers (tierScope "period") to the hand-computed total of 4168.12', () => {
    const perPeriod = urdbToTariff(multiTierTou, { timeZone: LA, tierScope: 'period' });
    // 20 kW all month; 120 kW on weekday on-peak hours (12:00-18:00, 23 weekdays); 1 kWh exported per quarter hour 10:00-15:00.
    const from = local(LA, '2026-07-01T00:00');
    const to = local(LA, '2026-08-01T00:00');
    const hourOf = (start: number) => new Date(start - 7 * 3_600_000).getUTCHours(); // PDT all July
    const weekday = (start: number) => ![0, 6].includes(new Date(start - 7 * 3_600_000).getUTCDay());
    const readings = series(
      from,
      to,
      900,
      (start) => (weekday(start) && hourOf(start) >= 12 && hourOf(start) < 18 ? 30_000_000 : 5_000_000),
      (start) => (hourOf(start) >= 10 && hourOf(start) < 15 ? 1_000_000 : 0),
    );
    const charges = rateWith(perPeriod, readings, from, to);
    // p1 (on-peak): 23 days x 24 quarter hours x 30 kWh = 16560 kWh; p0: 2424 x 5 = 12120 kWh.
    // Export: 620 kWh, of which 23 days x 12 quarter hours = 276 kWh in p1 and 344 kWh in p0.
    const label = (line: (typeof charges.lines)[number]) => ('period' in line ? line.period : 'name' in line ? line.name : '');
    expect(charges.lines.map((l) => ('quantity' in l ? [l.type, label(l), l.quantity, l.amount] : [l.type, l.amount]))).toEqual([
      ['energy', 'p0', '1000', '64.00'], // x (0.06 + 0.004)
      ['energy', 'p0', '11120', '600.48'], // x 0.054
      ['energy', 'p1', '500', '62.00'], // x 0.124
      ['energy', 'p1', '16060', '1670.24'], // x 0.104
      ['demand', 'p0', '20', '0.00'],
      ['demand', 'p1', '100', '850.00'], // x 8.5
      ['demand', 'p1', '20', '205.00'], // x 10.25
      ['demand', 'flat', '50', '200.00'], // flatdemandstructure[0] in July: x 4
      ['demand', 'flat', '70', '385.00'], // x 5.5
      ['fixed', 'Fixed charge', '1', '150.00'],
      ['export_credit', 'p0', '344', '-10.32'],
      ['export_credit', 'p1', '276', '-8.28'],
    ]);
    expect([charges.subtotal, charges.taxes, charges.total]).toEqual(['4168.12', '0.00', '4168.12']);
  });

  it('rates July 2026 with window tiers (the default) to the hand-computed total of 4156.12', () => {
    // 20 kW all month; 120 kW on weekday on-peak hours (12:00-18:00, 23 weekdays); 1 kWh exported per quarter hour 10:00-15:00.
    const from = local(LA, '2026-07-01T00:00');
    const to = local(LA, '2026-08-01T00:00');
    const hourOf = (start: number) => new Date(start - 7 * 3_600_000).getUTCHours(); // PDT all July
    const weekday = (start: number) => ![0, 6].includes(new Date(start - 7 * 3_600_000).getUTCDay());
    const readings = series(
      from,
      to,
      900,
      (start) => (weekday(start) && hourOf(start) >= 12 && hourOf(start) < 18 ? 30_000_000 : 5_000_000),
      (start) => (hourOf(start) >= 10 && hourOf(start) < 15 ? 1_000_000 : 0),
    );
    const charges = rateWith(tariff, readings, from, to);
    // Window tiers: the cumulative import of both periods. July 1: 00:00-12:00 p0 240 kWh; from 12:00 p1 adds
    // 30 kWh a quarter hour and the window reaches p1's limit of 500 kWh after 260 kWh of p1 (mid-quarter:
    // split); at 18:00 the window holds 960 kWh, so p0's limit of 1000 kWh is reached at 20:00 after 40 more.
    // p1 (on-peak): 23 days x 24 quarter hours x 30 kWh = 16560 kWh; p0: 2424 x 5 = 12120 kWh.
    // Export: 620 kWh, of which 23 days x 12 quarter hours = 276 kWh in p1 and 344 kWh in p0.
    const label = (line: (typeof charges.lines)[number]) => ('period' in line ? line.period : 'name' in line ? line.name : '');
    expect(charges.lines.map((l) => ('quantity' in l ? [l.type, label(l), l.quantity, l.amount] : [l.type, l.amount]))).toEqual([
      ['energy', 'p0', '280', '17.92'], // x (0.06 + 0.004)
      ['energy', 'p0', '11840', '639.36'], // x 0.054
      ['energy', 'p1', '260', '32.24'], // x 0.124
      ['energy', 'p1', '16300', '1695.20'], // x 0.104
      ['demand', 'p0', '20', '0.00'],
      ['demand', 'p1', '100', '850.00'], // x 8.5
      ['demand', 'p1', '20', '205.00'], // x 10.25
      ['demand', 'flat', '50', '200.00'], // flatdemandstructure[0] in July: x 4
      ['demand', 'flat', '70', '385.00'], // x 5.5
      ['fixed', 'Fixed charge', '1', '150.00'],
      ['export_credit', 'p0', '344', '-10.32'],
      ['export_credit', 'p1', '276', '-8.28'],
    ]);
    expect([charges.subtotal, charges.taxes, charges.total]).toEqual(['4156.12', '0.00', '4156.12']);
  });

  it('uses flatdemandstructure[flatdemandmonths[month]] and the winter schedule in January', () => {
    const from = local(LA, '2026-01-05T00:00'); // a Monday
    const to = local(LA, '2026-01-06T00:00');
    const readings = series(from, to, 900, (_, i) => (i === 70 ? 10_000_000 : 1_000_000)); // 17:30: 40 kW
    const charges = rateWith(tariff, readings, from, to);
    expect(linesOf(charges, 'energy').map((l) => [l.period, l.quantity])).toEqual([['p0', '80'], ['p2', '25']]);
    expect(linesOf(charges, 'demand').map((l) => [l.period, l.flatDemandPeriod, l.quantity, l.amount])).toEqual([
      ['p0', undefined, '40', '0.00'],
      ['flat', 'p1', '40', '130.00'],
    ]);
  });
});

describe('urdbToTariff: tiered residential rate (REopt API test: Florida Power & Light)', () => {
  // REopt's test documents 24,000 kWh a year at 2,000 kWh a month: $2,342.88 of energy charges.
  const fpl = {
    label: '5cc1c5b35457a3d5c1f0a1b2',
    utility: 'Florida Power & Light Co.',
    name: 'RS-1 Residential Service',
    sector: 'Residential',
    approved: true,
    energyratestructure: [[{ max: 1000, rate: 0.07531, adj: 0.0119, unit: 'kWh' }, { rate: 0.09613, adj: 0.0119, unit: 'kWh' }]],
    energyweekdayschedule: Array.from({ length: 12 }, () => Array(24).fill(0)),
    energyweekendschedule: Array.from({ length: 12 }, () => Array(24).fill(0)),
    fixedchargefirstmeter: 0.26,
    fixedchargeunits: '$/day',
  };
  const tariff = urdbToTariff(fpl, { timeZone: 'America/New_York' });

  it('bills 2,000 kWh a month as 1000 x 0.08721 + 1000 x 0.10803, $2,342.88 over a year', () => {
    let yearEnergy = 0;
    for (let month = 1; month <= 12; month++) {
      const from = local('America/New_York', `2026-${String(month).padStart(2, '0')}-01T00:00`);
      const to = local('America/New_York', month === 12 ? '2027-01-01T00:00' : `2026-${String(month + 1).padStart(2, '0')}-01T00:00`);
      const readings = series(from, to, 3600, (_, i) => (i < 666 ? 3_000_000 : i === 666 ? 2_000_000 : 0)); // 2000 kWh
      const charges = rateWith(tariff, readings, from, to);
      expect(linesOf(charges, 'energy').map((l) => l.amount)).toEqual(['87.21', '108.03']);
      yearEnergy += linesOf(charges, 'energy').reduce((sum, l) => sum + Math.round(Number(l.amount) * 100), 0);
      const days = Math.round((to - from) / 86_400_000);
      expect(linesOf(charges, 'fixed')[0]).toMatchObject({ quantity: String(days), unit: 'day', rate: '0.26' });
    }
    expect(yearEnergy).toBe(234_288);
  });

  it('has a single all-year season when the schedules never change', () => {
    expect(tariff.seasons).toEqual([{ id: 'all_year', fromMonth: 1, toMonth: 12 }]);
  });
});

describe('urdbToTariff: refusals', () => {
  it('names every unsupported or malformed field by its path, all at once', () => {
    const rate = {
      ...multiTierTou,
      energyratestructure: [
        [{ max: 1000, rate: 0.06, unit: 'kWh', sell: 0.03 }, { rate: 0.05, unit: 'kWh/kVA', sell: 0.03 }],
        [{ max: 500, rate: 0.12, unit: 'kWh', sell: 0.03 }, { unit: 'kWh', sell: 0.02 }],
        [{ rate: 0.09, max: 0, unit: 'kWh' }],
      ],
      coincidentratestructure: [[{ rate: 3.1, unit: 'hp' }]],
      coincidentrateschedule: Array.from({ length: 12 }, () => Array(24).fill(1)),
      demandratchetpercentage: [0, 0, 0, 0, 0, 0, 0.8, 0.8, 0, 0, 0, 0],
      lookbackpercent: 1.5,
      fueladjustmentsmonthly: [0.01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
      demandrateunit: 'kVA',
      demandwindow: 5,
      fixedchargeunits: '$/year',
      annualmincharge: 1200,
      dgrules: 'Net Billing Daily',
      demandreactivepowercharge: 'about 0.45',
      fixedchargeeaaddl: 25,
      powerfactoradjustment: true,
    };
    expect(issuesOf(rate).map((i) => i.path).sort()).toEqual(
      [
        'rate.coincidentratestructure[0][0].unit',
        'rate.demandratchetpercentage[6]',
        'rate.demandratchetpercentage[7]',
        'rate.demandrateunit',
        'rate.demandreactivepowercharge',
        'rate.demandwindow',
        'rate.dgrules',
        'rate.energyratestructure[0][1].unit',
        'rate.energyratestructure[1][1].rate',
        'rate.energyratestructure[2][0].max',
        'rate.fixedchargeeaaddl',
        'rate.fixedchargeunits',
        'rate.fueladjustmentsmonthly[0]',
        'rate.lookbackpercent',
        'rate.powerfactoradjustment',
        ...Array.from({ length: 12 * 24 }, (_, k) => `rate.coincidentrateschedule[${Math.floor(k / 24)}][${k % 24}]`),
      ].sort(),
    );
  });

  it('explains each refusal', () => {
    const issues = issuesOf({ ...multiTierTou, dgrules: 'Net Billing Daily', foo: 1 });
    expect(issues).toEqual([
      { path: 'rate.foo', message: 'unknown field: not a URDB field this importer knows, refused rather than ignored' },
      {
        path: 'rate.dgrules',
        message: '"Net Billing Daily" is not a URDB metering rule (known: Net Metering, Net Billing Instantaneous, Net Billing Hourly, Buy All Sell All)',
      },
    ]);
  });

  it('accepts unsupported features when they carry no value (zero ratchets, empty attributes)', () => {
    expect(() => urdbToTariff({ ...multiTierTou, lookbackpercent: 0, lookbackmonths: [], fixedattrs: [{ Notes: '' }] }, { timeZone: LA })).not.toThrow();
  });

  it('refuses malformed schedules and structures, and a schedule pointing at a missing period', () => {
    const schedule = multiTierTou.energyweekdayschedule.map((row) => [...row]);
    schedule[6][13] = 7;
    expect(issuesOf({ ...multiTierTou, energyweekdayschedule: schedule }).map((i) => i.path)).toEqual(['rate.energyweekdayschedule[6][13]']);
    expect(issuesOf({ ...multiTierTou, energyweekendschedule: multiTierTou.energyweekendschedule.slice(1) }).map((i) => i.path)).toEqual([
      'rate.energyweekendschedule',
      'rate.energyratestructure',
    ]);
    expect(issuesOf({ ...multiTierTou, flatdemandstructure: [] }).map((i) => i.path)).toEqual(['rate.flatdemandstructure']);
  });

  it('converts API v3 fields: fixedmonthlycharge and minmonthlycharge are $/month', () => {
    const { fixedchargefirstmeter: _fixed, fixedchargeunits: _units, mincharge: _min, minchargeunits: _minUnits, ...v7Free } = multiTierTou;
    const tariff = urdbToTariff({ ...v7Free, fixedmonthlycharge: 275, minmonthlycharge: 300 }, { timeZone: LA, id: 'wallingford-primary' });
    expect(tariff.id).toBe('wallingford-primary');
    expect(tariff.fixedCharges).toEqual([{ name: 'Fixed monthly charge', amount: '275', per: 'month' }]);
    expect(tariff.minimumCharge).toEqual({ amount: '300', per: 'month' });
    expect(issuesOf({ ...multiTierTou, fixedmonthlycharge: 275 }).map((i) => i.path)).toEqual(['rate.fixedmonthlycharge']);
  });

  it('refuses a rate that is not an object and an invalid time zone', () => {
    expect(issuesOf([multiTierTou])).toEqual([{ path: 'rate', message: 'must be one URDB rate object' }]);
    expect(() => urdbToTariff(multiTierTou, { timeZone: 'Pacific Time' })).toThrow(/timezone: must be an IANA time zone/);
  });
});
