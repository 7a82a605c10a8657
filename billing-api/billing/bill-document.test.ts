/** Canonical JSON, the content hash, bill headers, bill totals and CSV escaping (pure). */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { rateMeteredWindows, type MeterInterval, type TariffDocument } from '../../rating/index.js';
import { Dec } from '../../rating/money.js';
import { assembleBill, billHeader, billLinesCsv, creditNote, type BillHeader, type MeterBillSection } from './bill-document.js';
import { canonicalJson, contentHash } from './canonical-json.js';
import { cycleContaining } from './cycles.js';

const header: BillHeader = {
  id: 'A.2026-03-01', accountId: 'A', timezone: 'UTC', billingDay: 1,
  cycle: { from: '2026-03-01T00:00:00Z', to: '2026-04-01T00:00:00Z', firstDay: '2026-03-01', lastDay: '2026-03-31', days: 31 },
  billDate: '2026-04-04', closedAt: '2026-04-04T00:15:00Z', run: { id: 'run_x', asOf: '2026-04-04T00:15:00.000Z', cutoff: '2026-04-01T00:15:00.000Z', graceDays: 3 }, currency: 'EUR',
};
const meter = (meterId: string, subtotal: string, taxes: string, total: string, name = 'Standing charge'): MeterBillSection => ({
  meterId, intervalSeconds: 900, tariffId: 't', tariffIds: ['t'], tariffVersions: [{ tariffId: 't', version: 1, effectiveFrom: null }],
  lines: [{ type: 'fixed', name, quantity: '31', unit: 'day', rate: '0.1', amount: subtotal, tariffId: 't' }, { type: 'tax', name: 'VAT', rate: '0.2', base: subtotal, amount: taxes }],
  subtotal, taxes, total, asOf: null, coverage: { expectedIntervals: 2976, actualIntervals: 0, estimatedIntervals: 0, missingIntervals: 2976 },
  pieces: [], estimated: { linear: 0, profile: 0 }, warnings: [], warningsOmitted: {},
});

describe('canonical JSON and content hash', () => {
  it('sorts keys at every level, keeps array order, drops undefined members', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { f: 2, e: 'x"y' }], c: null, z: undefined } })).toBe('{"a":{"c":null,"d":[1,{"e":"x\\"y","f":2}]},"b":1}');
    expect(contentHash({ b: 1, a: 2 })).toBe(createHash('sha256').update('{"a":2,"b":1}').digest('hex'));
    expect(contentHash({ a: 2, b: 1 })).toBe(contentHash({ b: 1, a: 2 }));
    expect(() => canonicalJson({ x: Number.NaN })).toThrow();
  });
});

describe('bill totals and CSV', () => {
  it('sums meters and tax-inclusive adjustments exactly', () => {
    const { document, contentHash: hash } = assembleBill(header, 2, [meter('m1', '3.10', '0.62', '3.72'), meter('m2', '0.01', '0.00', '0.01')], [
      { type: 'adjustment', meterId: 'm1', reason: 'late_data', correctsBillId: 'A.2026-02-01', period: { from: 'f', to: 't' }, previouslyBilled: '10.00', rerated: { subtotal: '8.00', taxes: '1.60', total: '9.60', coverage: { expectedIntervals: 0, actualIntervals: 0, estimatedIntervals: 0, missingIntervals: 0 }, tariffVersions: [] }, amount: '-0.40' },
    ]);
    // 3.10 + 0.01 = 3.11; 0.62 + 0 = 0.62; -0.40; 3.11 + 0.62 - 0.40 = 3.33
    expect(document).toMatchObject({ subtotal: '3.11', taxes: '0.62', adjustmentsTotal: '-0.40', total: '3.33' });
    expect(document.coverage).toEqual({ expectedIntervals: 5952, actualIntervals: 0, estimatedIntervals: 0, missingIntervals: 5952 });
    expect(hash).toBe(contentHash(document));
  });

  it('quotes fields holding commas, quotes or line breaks (RFC 4180)', () => {
    const { document } = assembleBill(header, 2, [meter('m1', '3.10', '0.62', '3.72', 'Charge, "standing"\nline')], []);
    const csv = billLinesCsv(document);
    expect(csv.split('\r\n')[1]).toContain(',"Charge, ""standing""\nline",');
    expect(csv.endsWith('\r\n')).toBe(true);
  });
});

describe('bill header', () => {
  it("names the bill by account and first local day; the cycle in UTC and in the account's local days", () => {
    // Billing day 31 in Los Angeles: the February cycle starts 31 Jan local midnight (08:00Z) and ends on
    // 28 Feb local midnight (clamped), 28 local days.
    const cycle = cycleContaining(Date.parse('2026-02-10T00:00:00Z'), 'America/Los_Angeles', 31);
    const run = { id: 'run_1', asOf: '2026-03-05T00:00:00.000Z', cutoff: '2026-03-02T00:00:00.000Z', graceDays: 3 };
    const closedAt = Date.parse('2026-03-05T00:00:01Z');
    expect(billHeader({ accountId: 'ACC-9', timezone: 'America/Los_Angeles', billingDay: 31 }, cycle, run, closedAt, '2026-03-04', 'USD')).toEqual({
      id: 'ACC-9.2026-01-31',
      accountId: 'ACC-9',
      timezone: 'America/Los_Angeles',
      billingDay: 31,
      cycle: { from: '2026-01-31T08:00:00Z', to: '2026-02-28T08:00:00Z', firstDay: '2026-01-31', lastDay: '2026-02-27', days: 28 },
      billDate: '2026-03-04',
      closedAt: '2026-03-05T00:00:01Z',
      run,
      currency: 'USD',
    });
  });
});

describe('credit note', () => {
  it("negates the voided bill's meter charges and every later adjustment of them; its own adjustment lines stand", () => {
    const adjustment = {
      type: 'adjustment' as const, meterId: 'm1', reason: 'late_data' as const, correctsBillId: 'A.2026-02-01', period: { from: '2026-02-01T00:00:00Z', to: '2026-03-01T00:00:00Z' },
      previouslyBilled: '10.00', rerated: { subtotal: '11.00', taxes: '1.00', total: '12.00', coverage: { expectedIntervals: 0, actualIntervals: 0, estimatedIntervals: 0, missingIntervals: 0 }, tariffVersions: [] },
      amount: '2.00',
    };
    const { document: bill, contentHash: billHash } = assembleBill(header, 2, [meter('m1', '3.10', '0.62', '3.72'), meter('m2', '1.00', '0.20', '1.20')], [adjustment]);
    expect(bill.total).toBe('6.92'); // 4.10 + 0.82 + 2.00
    const { document, contentHash: hash } = creditNote({
      id: 'A.2026-03-01.credit', bill, billContentHash: billHash, laterAdjustments: [{ billId: 'A.2026-04-01', meterId: 'm1', amount: '-0.55' }],
      rebillId: 'A.2026-03-01.r1', reason: null, closedAt: Date.parse('2026-05-02T10:00:00Z'), billDate: '2026-05-02', minorUnit: 2,
    });
    expect(document.lines).toEqual([
      { type: 'reversal', what: 'charges', billId: 'A.2026-03-01', amount: '-4.92' },
      { type: 'reversal', what: 'adjustment', billId: 'A.2026-04-01', meterId: 'm1', amount: '0.55' },
    ]);
    // -(4.10 + 0.82) + 0.55 = -4.37: the February correction the bill carried is not reversed.
    expect(document).toMatchObject({ kind: 'credit_note', reverses: bill.id, reversesContentHash: billHash, subtotal: '-4.10', taxes: '-0.82', adjustmentsTotal: '0.55', total: '-4.37', cycle: bill.cycle });
    expect(hash).toBe(contentHash(document));
    expect(billLinesCsv(document).split('\r\n')[1]).toBe('A.2026-03-01.credit,A,2026-03-01T00:00:00Z,2026-04-01T00:00:00Z,,reversal,charges,,,,,,-4.92,EUR,,A.2026-03-01,,');
  });
});

describe('CSV rows of what a meter carries across cycles', () => {
  // Two periods in UTC (peak 17:00-21:00 every day), net metering with a kWh bank, true-up in March.
  const tariff = (netMetering: TariffDocument['netMetering']): TariffDocument => ({
    id: 'nem', name: 'Net metering', currency: { code: 'EUR', minorUnit: 2 }, timeZone: 'UTC',
    seasons: [{ id: 'year', fromMonth: 1, toMonth: 12 }],
    energy: {
      periods: [{ id: 'off', tiers: [{ rate: '0.2' }], sell: '0.05' }, { id: 'peak', tiers: [{ rate: '0.3' }], sell: '0.05' }],
      schedule: [{ seasons: ['year'], dayTypes: ['weekday', 'weekend'], periods: [{ from: '00:00', period: 'off' }, { from: '17:00', period: 'peak' }, { from: '21:00', period: 'off' }] }],
    },
    fixedCharges: [{ name: 'Standing charge', amount: '5', per: 'month' }],
    taxes: [{ name: 'VAT', rate: '0.2' }],
    netMetering,
  });
  const months = ['2026-01-01', '2026-02-01', '2026-03-01', '2026-04-01'].map((d) => Date.parse(`${d}T00:00:00Z`));
  const windows = months.slice(0, 3).map((from, k) => ({ window: { from, to: months[k + 1] } }));
  // kWh per hour [import, export] by month and period: January banks off-peak, February banks peak.
  const flows = [{ off: [0.5, 1], peak: [1, 0] }, { off: [1, 0.5], peak: [0, 1] }, { off: [1, 1], peak: [2, 0] }];
  const intervals: MeterInterval[] = [];
  for (let t = months[0]; t < months[3]; t += 3_600_000) {
    const k = months.findIndex((m) => m > t) - 1;
    const hour = new Date(t).getUTCHours();
    const [imp, exp] = hour >= 17 && hour < 21 ? flows[k].peak : flows[k].off;
    intervals.push({ intervalStart: t, intervalSeconds: 3600, importMwh: imp * 1_000_000, exportMwh: exp * 1_000_000, quality: 'actual' });
  }
  const billOf = (k: number, document: TariffDocument) => {
    const charges = rateMeteredWindows({ tariffTimeline: [{ from: months[0], tariff: document }], intervals, meterIntervalSeconds: 3600, windows })[k];
    const section: MeterBillSection = {
      ...meter('m1', charges.subtotal, charges.taxes, charges.total), lines: charges.lines, metering: charges.metering,
    };
    return assembleBill(header, 2, [section], []).document;
  };
  const rowsOf = (csv: string) => {
    const [head, ...rows] = csv.trimEnd().split('\r\n').map((r) => r.split(','));
    return rows.map((r) => Object.fromEntries(head.map((c, i) => [c, r[i]])) as Record<string, string>);
  };
  const quantity = (rows: Record<string, string>[], type: string, name: string, period = '') => {
    const found = rows.filter((r) => r.type === type && r.name === name && r.period === period);
    expect(found, `${type} ${name} ${period}`).toHaveLength(1);
    return new Dec(found[0].quantity);
  };
  const bank = tariff({ carryOver: 'kWh', trueUpMonth: 3, trueUpSellRate: '0.04' });

  it('states per period the bank carried in, import, export, billed, surplus and carried out, and the running net, after the lines', () => {
    const bill = billOf(0, bank);
    const rows = rowsOf(billLinesCsv(bill));
    const lineCount = bill.meters[0].lines.length;
    // The charge lines keep their rows; the amount column still sums to the bill's total.
    expect(rows.slice(0, lineCount).map((r) => r.type)).toEqual(bill.meters[0].lines.map((l) => l.type));
    expect(rows.reduce((sum, r) => sum.plus(r.amount || 0), new Dec(0)).toFixed(2)).toBe(bill.total);
    // January, 31 days: off-peak 20 h a day at 0.5 kWh in and 1 kWh out banks 310 kWh; peak 4 h at 1 kWh in is billed.
    expect(rows.slice(lineCount).map((r) => [r.meter_id, r.type, r.name, r.period, r.quantity, r.unit, r.amount].join(' '))).toEqual([
      'm1 metering net_metering   kWh ',
      'm1 bank carried_in off 0 kWh ', 'm1 bank import off 310 kWh ', 'm1 bank export off 620 kWh ', 'm1 bank billed off 0 kWh ',
      'm1 bank surplus off 310 kWh ', 'm1 bank dropped off 0 kWh ', 'm1 bank carried_out off 310 kWh ',
      'm1 bank carried_in peak 0 kWh ', 'm1 bank import peak 124 kWh ', 'm1 bank export peak 0 kWh ', 'm1 bank billed peak 124 kWh ',
      'm1 bank surplus peak 0 kWh ', 'm1 bank dropped peak 0 kWh ', 'm1 bank carried_out peak 0 kWh ',
      'm1 running_net carried_in  0 kWh ', 'm1 running_net net  186 kWh ', 'm1 running_net carried_out  186 kWh ',
    ]);
    expect(rows.slice(lineCount).every((r) => r.bill_id === bill.id && r.currency === 'EUR')).toBe(true);
  });

  it('lets a reader follow the bank from cycle to cycle up to the true-up', () => {
    const csv = [0, 1, 2].map((k) => rowsOf(billLinesCsv(billOf(k, bank))));
    for (const [k, rows] of csv.entries())
      for (const period of ['off', 'peak']) {
        const q = (name: string) => quantity(rows, 'bank', name, period);
        expect(q('carried_in').plus(q('export')).minus(q('import')).plus(q('billed')).eq(q('surplus')), `${k} ${period}`).toBe(true);
        if (k < 2) expect(q('surplus').minus(q('dropped')).eq(q('carried_out')), `${k} ${period}`).toBe(true);
        if (k > 0) expect(q('carried_in').eq(quantity(csv[k - 1], 'bank', 'carried_out', period)), `${k} ${period}`).toBe(true);
      }
    // February applies January's off-peak bank (560 in, 280 out, 310 carried in: 30 left) and banks its peak export.
    expect([quantity(csv[1], 'bank', 'carried_out', 'off').toString(), quantity(csv[1], 'bank', 'carried_out', 'peak').toString()]).toEqual(['30', '112']);
    // 186 + (280 - 560) + 112 = 18 carried into March; March nets -248 (peak), so nothing is paid at its true-up.
    expect(quantity(csv[2], 'running_net', 'carried_in').toString()).toBe('18');
    expect(csv[2].find((r) => r.type === 'metering')).toMatchObject({ name: 'net_metering', period: 'trueup', unit: 'kWh' });
    expect(quantity(csv[2], 'running_net', 'trueup').toString()).toBe('0');
    expect(quantity(csv[2], 'bank', 'carried_out', 'off').toString()).toBe('0');
  });

  it('states a money balance in the currency: carried in, earned, applied, settled, carried out', () => {
    const money = tariff({ carryOver: 'dollars', trueUpMonth: 3 });
    const csv = [0, 1, 2].map((k) => ({ bill: billOf(k, money), rows: rowsOf(billLinesCsv(billOf(k, money))) }));
    for (const { bill, rows } of csv) {
      const q = (name: string) => quantity(rows, 'balance', name);
      expect(rows.filter((r) => r.type === 'balance').every((r) => r.unit === 'EUR' && r.amount === '')).toBe(true);
      expect(q('carried_in').plus(q('earned')).plus(q('rolled_over')).minus(q('applied')).minus(q('paid_at_trueup')).minus(q('expired')).toFixed(2)).toBe(q('carried_out').toFixed(2));
      // what the balance applied is the bill's carryover line
      const carryover = bill.meters[0].lines.find((l) => l.type === 'export_credit' && 'period' in l && l.period === 'carryover');
      expect(q('applied').neg().toFixed(2)).toBe(carryover ? carryover.amount : '0.00');
      expect(rows.some((r) => r.type === 'bank' && r.name === 'carried_out')).toBe(false);
      expect(rows.reduce((sum, r) => sum.plus(r.amount || 0), new Dec(0)).toFixed(2)).toBe(bill.total);
    }
    // January earns 310 kWh x 0.05 = 15.50, February starts from it.
    expect(quantity(csv[0].rows, 'balance', 'earned').toFixed(2)).toBe('15.50');
    expect(quantity(csv[1].rows, 'balance', 'carried_in').toFixed(2)).toBe(quantity(csv[0].rows, 'balance', 'carried_out').toFixed(2));
  });

  it("states what a corrected cycle carried out, as billed and as re-rated, beside the adjustment", () => {
    const billed = { banks: [{ period: 'off', kWh: '310', slot: 0 }], runningNetKwh: '186', creditBalance: '0', yearBills: '0' };
    const rerated = { ...billed, banks: [{ period: 'off', kWh: '290', slot: 0 }], runningNetKwh: '166' };
    const { document } = assembleBill(header, 2, [meter('m1', '3.10', '0.62', '3.72')], [
      { type: 'adjustment', meterId: 'm1', reason: 'late_data', correctsBillId: 'A.2026-02-01', period: { from: '2026-02-01T00:00:00Z', to: '2026-03-01T00:00:00Z' }, previouslyBilled: '10.00',
        rerated: { subtotal: '8.00', taxes: '1.60', total: '9.60', coverage: { expectedIntervals: 0, actualIntervals: 0, estimatedIntervals: 0, missingIntervals: 0 }, tariffVersions: [] }, amount: '-0.40',
        carriedOut: { billed, rerated, changed: true } },
    ]);
    const rows = rowsOf(billLinesCsv(document)).filter((r) => r.corrects_bill_id === 'A.2026-02-01' && r.type !== 'adjustment');
    expect(rows.map((r) => [r.type, r.name, r.period, r.quantity, r.unit, r.corrected_from].join(' '))).toEqual([
      'bank carried_out_billed off 310 kWh 2026-02-01T00:00:00Z', 'running_net carried_out_billed  186 kWh 2026-02-01T00:00:00Z', 'balance carried_out_billed  0 EUR 2026-02-01T00:00:00Z',
      'bank carried_out_rerated off 290 kWh 2026-02-01T00:00:00Z', 'running_net carried_out_rerated  166 kWh 2026-02-01T00:00:00Z', 'balance carried_out_rerated  0 EUR 2026-02-01T00:00:00Z',
    ]);
  });
});
