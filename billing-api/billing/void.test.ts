/**
 * Void, credit and re-issue through the HTTP API against the real stack: a closed bill stays as issued; the
 * void stores a credit note reversing it and a re-bill of the cycle from today's data, service spans and
 * assignments, both with content hashes, naming each other, listed with the account's bills; the three
 * reconcile to the cent. Amounts: the flat tariff of close.test.ts (0.20/kWh, 0.50/day, 10/month, tax 5%).
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dec } from '../../rating/money.js';
import { storageModes } from '../../test/support/database.js';
import { startTestStack, type TestStack } from '../../test/support/stack.js';
import { billingRun, billsOf, createAccount, createMeter, createTariff, flatTariff, insertReadings, lineOf } from '../test-support.js';

const canonical = (v: unknown): unknown =>
  Array.isArray(v) ? v.map(canonical) : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])])) : v;
const sha256 = (doc: unknown) => createHash('sha256').update(JSON.stringify(canonical(doc))).digest('hex');

describe.each(storageModes())('void, credit note and re-bill (%s storage)', (mode) => {
  let stack: TestStack;
  let original: any;

  beforeAll(async () => {
    stack = await startTestStack(mode, { BILLING_CRON: 'off' });
    await createTariff(stack, flatTariff('flat-uk', { currency: 'GBP', timeZone: 'Europe/London', rate: '0.20', perDay: '0.50', perMonth: '10', tax: '0.05' }));
    for (const id of ['V-SAME', 'V-MOVE']) {
      await createAccount(stack, id, 'Europe/London', 1);
      await createMeter(stack, `M-${id}`, id, 'Europe/London', 'flat-uk');
      await insertReadings(stack, `M-${id}`, '2026-08-31T23:00:00Z', 2880, 50_000); // September: 144 kWh
    }
    const run = await billingRun(stack, '2026-10-05T00:00:00Z');
    expect(run.body).toMatchObject({ state: 'finished', billsCreated: 2, failures: [] });
    original = (await stack.api('/v1/bills/V-MOVE.2026-09-01')).body;
    // 144 kWh x 0.20 = 28.80; 30 x 0.50 = 15.00; 10.00; subtotal 53.80; tax 2.69; total 56.49
    expect(original).toMatchObject({ total: '56.49', status: 'issued' });
  });
  afterAll(async () => stack?.close());

  it('voids a bill whose data did not change: the credit note reverses it and the re-bill equals it', async () => {
    const before = (await stack.api('/v1/bills/V-SAME.2026-09-01')).body;
    const res = await stack.api('/v1/bills/V-SAME.2026-09-01/void', { body: { reason: 'customer asked for a copy' } });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const { creditNote, rebill } = res.body;
    expect(res.body.voided).toBe('V-SAME.2026-09-01');
    expect(creditNote).toMatchObject({ id: 'V-SAME.2026-09-01.credit', kind: 'credit_note', reverses: before.id, reversesContentHash: before.contentHash, rebillId: rebill.id, reason: 'customer asked for a copy' });
    expect(creditNote.total).toBe(new Dec(before.total).neg().toFixed(2));
    expect(creditNote).toMatchObject({ subtotal: '-53.80', taxes: '-2.69', adjustmentsTotal: '0.00', total: '-56.49' });
    expect(rebill).toMatchObject({ id: 'V-SAME.2026-09-01.r1', revision: 1, supersedes: before.id, creditNoteId: creditNote.id, total: before.total, cycle: before.cycle });
    expect(rebill.meters.map((m: any) => m.lines)).toEqual(before.meters.map((m: any) => m.lines));
    // original + credit note + re-bill = the re-bill
    expect(new Dec(before.total).plus(creditNote.total).plus(rebill.total).toFixed(2)).toBe(rebill.total);
    // Both are stored documents with content hashes over their canonical JSON.
    for (const doc of [creditNote, rebill]) {
      const { contentHash, ...document } = doc;
      expect(contentHash).toBe(sha256(document));
      const served = (await stack.api(`/v1/bills/${doc.id}`)).body;
      const { contentHash: h, status, ...stored } = served;
      expect([h, status]).toEqual([contentHash, 'issued']);
      expect(stored).toEqual(document);
    }
    // The voided bill is unchanged, now marked voided with its credit note and re-bill.
    const after = (await stack.api('/v1/bills/V-SAME.2026-09-01')).body;
    const { status, voidedBy, ...unchanged } = after;
    expect(status).toBe('voided');
    expect(voidedBy).toEqual({ creditNoteId: creditNote.id, rebillId: rebill.id });
    const { status: _s, ...beforeDoc } = before;
    expect(unchanged).toEqual(beforeDoc);
  });

  it("re-bills with today's data: a move-in recorded after the close prorates the re-bill, which equals a fresh rating", async () => {
    // The customer moved in on 16 September (London): the closed bill charged the whole month.
    const moved = await stack.api('/v1/accounts/V-MOVE/move-in', { body: { at: '2026-09-16T00:00:00+01:00' } });
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    expect(moved.body.billsAffected).toEqual(['V-MOVE.2026-09-01']);
    expect((await stack.api('/v1/bills/V-MOVE.2026-09-01')).body).toEqual(original); // a closed bill never changes

    const res = await stack.api('/v1/bills/V-MOVE.2026-09-01/void', { body: {} });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const { creditNote, rebill } = res.body;
    expect(creditNote.total).toBe('-56.49');
    // In service 15 September 23:00Z to 30 September 23:00Z: 15 of 30 days, 1440 intervals.
    // 72 kWh x 0.20 = 14.40; 15 x 0.50 = 7.50; 10 x 0.5 = 5.00; subtotal 26.90; tax 1.345 -> 1.35; total 28.25
    const [meter] = rebill.meters;
    expect(meter.inService).toEqual({ from: '2026-09-15T23:00:00Z', to: '2026-09-30T23:00:00Z' });
    expect(lineOf(meter.lines, 'energy')).toEqual([expect.objectContaining({ quantity: '72', amount: '14.40' })]);
    expect(lineOf(meter.lines, 'fixed').map((l: any) => [l.quantity, l.unit, l.amount])).toEqual([['15', 'day', '7.50'], ['0.5', 'month', '5.00']]);
    expect(meter.coverage).toEqual({ expectedIntervals: 1440, actualIntervals: 1440, estimatedIntervals: 0, missingIntervals: 0 });
    expect(rebill).toMatchObject({ subtotal: '26.90', taxes: '1.35', total: '28.25' });
    // A fresh rating of the same window from the data stored now.
    const fresh = await stack.api('/v1/meters/M-V-MOVE/charges?from=2026-09-15T23:00:00Z&to=2026-09-30T23:00:00Z');
    expect(fresh.status, JSON.stringify(fresh.body)).toBe(200);
    expect(fresh.body.lines).toEqual(meter.lines);
    expect(fresh.body.total).toBe(rebill.total);
    // Reconciles to the cent: billed for the cycle now = original + credit note + re-bill = the re-bill.
    expect(new Dec(original.total).plus(creditNote.total).plus(rebill.total).toFixed(2)).toBe('28.25');
  });

  it("lists the bill, its credit note and its re-bill with the account's bills, linked to each other", async () => {
    const items = await billsOf(stack, 'V-MOVE');
    expect(items.map((b) => [b.id, b.kind, b.revision, b.status, b.total])).toEqual([
      ['V-MOVE.2026-09-01', 'bill', 0, 'voided', '56.49'],
      ['V-MOVE.2026-09-01.credit', 'credit_note', 0, 'issued', '-56.49'],
      ['V-MOVE.2026-09-01.r1', 'bill', 1, 'issued', '28.25'],
    ]);
    expect(items[0].voidedBy).toEqual({ creditNoteId: 'V-MOVE.2026-09-01.credit', rebillId: 'V-MOVE.2026-09-01.r1' });
    expect(items[1].reverses).toBe('V-MOVE.2026-09-01');
    expect(items[2].supersedes).toBe('V-MOVE.2026-09-01');
    // Paging does not skip a document of a cycle.
    const page1 = await stack.api('/v1/accounts/V-MOVE/bills?limit=2');
    const page2 = await stack.api(page1.body.next);
    expect([...page1.body.items, ...page2.body.items].map((b: any) => b.id)).toEqual(items.map((b) => b.id));
    // The credit note as CSV: its reversal line.
    const csv = await stack.api('/v1/bills/V-MOVE.2026-09-01.credit/lines.csv');
    expect(csv.status).toBe(200);
    expect(String(csv.body)).toContain('reversal,charges');
  });

  it('refuses to void twice, to void a credit note, and a void by a reader; the next run still bills the next cycle once', async () => {
    const twice = await stack.api('/v1/bills/V-MOVE.2026-09-01/void', { body: {} });
    expect(twice.status).toBe(409);
    expect(twice.body.error.message).toMatch(/already voided/);
    expect((await stack.api('/v1/bills/V-MOVE.2026-09-01.credit/void', { body: {} })).status).toBe(409);
    expect((await stack.api('/v1/bills/no-such-bill/void', { body: {} })).status).toBe(404);
    const reader = (await stack.api('/v1/tokens', { body: { role: 'reader' } })).body.token;
    expect((await stack.api('/v1/bills/V-MOVE.2026-09-01.r1/void', { body: {}, token: reader })).status).toBe(403);
    // The re-bill can itself be voided (revision 2).
    const again = await stack.api('/v1/bills/V-MOVE.2026-09-01.r1/void', { body: {} });
    expect(again.status, JSON.stringify(again.body)).toBe(201);
    expect(again.body.creditNote).toMatchObject({ id: 'V-MOVE.2026-09-01.r1.credit', total: '-28.25' });
    expect(again.body.rebill).toMatchObject({ id: 'V-MOVE.2026-09-01.r2', revision: 2, total: '28.25' });
    await insertReadings(stack, 'M-V-MOVE', '2026-09-30T23:00:00Z', 2976, 50_000); // October
    const run = await billingRun(stack, '2026-11-05T00:00:00Z');
    expect(run.body).toMatchObject({ state: 'finished', failures: [] });
    expect(run.body.billIds).toContain('V-MOVE.2026-10-01');
    expect((await stack.api('/v1/bills/V-MOVE.2026-10-01')).body.adjustments).toEqual([]);
  });
});
