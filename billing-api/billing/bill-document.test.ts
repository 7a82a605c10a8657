/** Canonical JSON, the content hash, bill headers, bill totals and CSV escaping (pure). */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
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
