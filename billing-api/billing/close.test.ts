/**
 * Billing runs end to end (real HTTP, real database, both storage modes): closing cycles across DST months
 * in Los Angeles and London, re-runs, two concurrent runs, estimation in empty cycles, validation warnings,
 * immutability and the content hash, CSV, and customer scoping. Every amount is worked out by hand in the
 * comments from the flat tariffs below (0.20 per kWh, 0.50 per day, 10 per month, tax 5%).
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageModes } from '../../test/support/database.js';
import { startTestStack, type TestStack } from '../../test/support/stack.js';
import { billingRun, billsOf, createAccount, createMeter, createTariff, flatTariff, insertReadings, lineOf } from '../test-support.js';

/** An independent canonical form: keys sorted at every level, then JSON.stringify. */
const canonical = (v: unknown): unknown =>
  Array.isArray(v) ? v.map(canonical) : v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])])) : v;
const sha256 = (doc: unknown) => createHash('sha256').update(JSON.stringify(canonical(doc))).digest('hex');

describe.each(storageModes())('billing runs (%s storage)', (mode) => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack(mode, { BILLING_CRON: 'off' });
    await createTariff(stack, flatTariff('flat-la', { currency: 'USD', timeZone: 'America/Los_Angeles', rate: '0.20', perDay: '0.50', perMonth: '10', tax: '0.05' }));
    await createTariff(stack, flatTariff('flat-uk', { currency: 'GBP', timeZone: 'Europe/London', rate: '0.20', perDay: '0.50', perMonth: '10', tax: '0.05' }));
    // March 2026: Los Angeles from 1 March 00:00 PST (08:00Z) to 1 April 00:00 PDT (07:00Z) = 743 h = 2972 intervals.
    await createAccount(stack, 'LA-MAR', 'America/Los_Angeles', 1);
    await createMeter(stack, 'M-LA-MAR', 'LA-MAR', 'America/Los_Angeles', 'flat-la');
    await insertReadings(stack, 'M-LA-MAR', '2026-03-01T08:00:00Z', 2972, 100_000);
    // London: 1 March 00:00 GMT to 1 April 00:00 BST (31 March 23:00Z) = 743 h.
    await createAccount(stack, 'UK-MAR', 'Europe/London', 1);
    await createMeter(stack, 'M-UK-MAR', 'UK-MAR', 'Europe/London', 'flat-uk');
    await insertReadings(stack, 'M-UK-MAR', '2026-03-01T00:00:00Z', 2972, 100_000);
    // London October: 1 October 00:00 BST (30 September 23:00Z) to 1 November 00:00 GMT = 745 h = 2980 intervals.
    await createAccount(stack, 'UK-OCT', 'Europe/London', 1);
    await createMeter(stack, 'M-UK-OCT', 'UK-OCT', 'Europe/London', 'flat-uk');
    await insertReadings(stack, 'M-UK-OCT', '2026-09-30T23:00:00Z', 2980, 100_000);
    // Los Angeles, billing day 15: 15 October 00:00 PDT (07:00Z) to 15 November 00:00 PST (08:00Z) = 745 h.
    await createAccount(stack, 'LA-OCT', 'America/Los_Angeles', 15);
    await createMeter(stack, 'M-LA-OCT', 'LA-OCT', 'America/Los_Angeles', 'flat-la');
    await insertReadings(stack, 'M-LA-OCT', '2026-10-15T07:00:00Z', 2980, 100_000);
    // A meter with a spike and a 25-hour zero run in March (London).
    await createAccount(stack, 'WARN', 'Europe/London', 1);
    await createMeter(stack, 'M-WARN', 'WARN', 'Europe/London', 'flat-uk');
    await insertReadings(stack, 'M-WARN', '2026-03-01T00:00:00Z', 912, 100_000); // to 10 March 12:00Z
    await insertReadings(stack, 'M-WARN', '2026-03-10T12:00:00Z', 1, 5_000_000); // 5 kWh: 50 x the median
    await insertReadings(stack, 'M-WARN', '2026-03-10T12:15:00Z', 935, 100_000); // to 20 March 06:00Z
    await insertReadings(stack, 'M-WARN', '2026-03-20T06:00:00Z', 100, 0); // 25 h of zeros, to 21 March 07:00Z
    await insertReadings(stack, 'M-WARN', '2026-03-21T07:00:00Z', 1023, 100_000); // to 31 March 23:00Z
  });
  afterAll(async () => stack?.close());

  it('closes the March cycles in Los Angeles and London with hand-computed amounts', async () => {
    // asOf 5 April, grace 3 days: cycles that ended by 2 April 00:00Z close; October data is not due.
    const run = await billingRun(stack, '2026-04-05T00:00:00Z');
    expect(run.status, JSON.stringify(run.body)).toBe(202);
    expect(run.body).toMatchObject({ trigger: 'api', asOf: '2026-04-05T00:00:00.000Z', cutoff: '2026-04-02T00:00:00.000Z', graceDays: 3, billsCreated: 3, failures: [] });
    expect(run.body.billIds.sort()).toEqual(['LA-MAR.2026-03-01', 'UK-MAR.2026-03-01', 'WARN.2026-03-01']);
    // counted in bills_closed_total{trigger="api"} on /metrics
    const metrics = await stack.api('/metrics');
    expect(metrics.body).toMatch(/^bills_closed_total\{trigger="api"\} 3$/m);

    const la = await stack.api('/v1/bills/LA-MAR.2026-03-01');
    expect(la.status).toBe(200);
    const bill = la.body;
    expect(bill.cycle).toEqual({ from: '2026-03-01T08:00:00Z', to: '2026-04-01T07:00:00Z', firstDay: '2026-03-01', lastDay: '2026-03-31', days: 31 });
    expect(bill).toMatchObject({ accountId: 'LA-MAR', timezone: 'America/Los_Angeles', billingDay: 1, currency: 'USD', run: { id: run.body.id, graceDays: 3 } });
    const [meter] = bill.meters;
    // 2972 x 100 Wh = 297.2 kWh x 0.20 = 59.44; 31 days x 0.50 = 15.50; 1 month x 10 = 10.00
    expect(lineOf(meter.lines, 'energy')).toEqual([expect.objectContaining({ period: 'any', tier: 1, quantity: '297.2', unit: 'kWh', rate: '0.2', amount: '59.44' })]);
    expect(lineOf(meter.lines, 'fixed').map((l: any) => [l.quantity, l.unit, l.amount])).toEqual([['31', 'day', '15.50'], ['1', 'month', '10.00']]);
    // subtotal 84.94; tax 5% = 4.247 -> 4.25; total 89.19
    expect(lineOf(meter.lines, 'tax')).toEqual([expect.objectContaining({ rate: '0.05', base: '84.94', amount: '4.25' })]);
    expect(meter).toMatchObject({ meterId: 'M-LA-MAR', subtotal: '84.94', taxes: '4.25', total: '89.19', asOf: '2026-04-01T07:00:00Z', estimated: { linear: 0, profile: 0 }, warnings: [] });
    expect(meter.coverage).toEqual({ expectedIntervals: 2972, actualIntervals: 2972, estimatedIntervals: 0, missingIntervals: 0 });
    expect(meter.tariffVersions).toEqual([{ tariffId: 'flat-la', version: 1, effectiveFrom: null }]);
    expect(bill).toMatchObject({ subtotal: '84.94', taxes: '4.25', adjustmentsTotal: '0.00', total: '89.19', adjustments: [] });
    expect(bill.billDate).toBe(new Date(Date.parse(bill.closedAt) - 8 * 3_600_000).toISOString().slice(0, 10)); // PST in late November

    const uk = (await stack.api('/v1/bills/UK-MAR.2026-03-01')).body;
    expect(uk.cycle).toMatchObject({ from: '2026-03-01T00:00:00Z', to: '2026-03-31T23:00:00Z', days: 31 });
    expect(uk).toMatchObject({ currency: 'GBP', subtotal: '84.94', taxes: '4.25', total: '89.19' });
    expect(uk.meters[0].coverage.expectedIntervals).toBe(2972);
  });

  it('stores each bill with the SHA-256 of its canonical JSON, and the database refuses to change it', async () => {
    const { body } = await stack.api('/v1/bills/UK-MAR.2026-03-01');
    const { contentHash, status, ...document } = body;
    expect(status).toBe('issued');
    expect(contentHash).toBe(sha256(document));
    const row = await stack.pool.query('SELECT content_hash, total::text, subtotal::text FROM bills WHERE id = $1', ['UK-MAR.2026-03-01']);
    expect(row.rows[0]).toEqual({ content_hash: contentHash, total: '89.19', subtotal: '84.94' });
    const meters = await stack.pool.query('SELECT meter_id, total::text, coverage, lines FROM bill_meters WHERE bill_id = $1', ['UK-MAR.2026-03-01']);
    expect(meters.rows).toEqual([{ meter_id: 'M-UK-MAR', total: '89.19', coverage: document.meters[0].coverage, lines: document.meters[0].lines }]);

    for (const sql of [
      `UPDATE bills SET total = 0 WHERE id = 'UK-MAR.2026-03-01'`,
      `DELETE FROM bills WHERE id = 'UK-MAR.2026-03-01'`,
      'TRUNCATE bills CASCADE',
      `UPDATE bill_meters SET total = 0 WHERE bill_id = 'UK-MAR.2026-03-01'`,
      `DELETE FROM bill_meters WHERE bill_id = 'UK-MAR.2026-03-01'`,
    ]) {
      await expect(stack.pool.query(sql), sql).rejects.toThrow(/bills are immutable/);
    }
    // A second bill for the same account and cycle is refused by the database itself.
    await expect(
      stack.pool.query(
        `INSERT INTO bills (id, account_id, cycle_start, cycle_end, billing_run_id, closed_at, currency, subtotal, taxes, adjustments, total, document, content_hash)
         SELECT 'dup', account_id, cycle_start, cycle_end, billing_run_id, closed_at, currency, 0, 0, 0, 0, '{}', content_hash FROM bills WHERE id = 'UK-MAR.2026-03-01'`,
      ),
    ).rejects.toThrow(/bills_one_per_account_cycle/);
    expect((await stack.api('/v1/bills/UK-MAR.2026-03-01')).body).toEqual(body);
  });

  it('running the same billing run again creates no second bill', async () => {
    const before = (await stack.pool.query('SELECT id, content_hash FROM bills ORDER BY id')).rows;
    const again = await billingRun(stack, '2026-04-05T00:00:00Z');
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ billsCreated: 0, failures: [] });
    const later = await billingRun(stack, '2026-04-06T12:00:00+02:00');
    expect(later.body.billsCreated).toBe(0);
    expect((await stack.pool.query('SELECT id, content_hash FROM bills ORDER BY id')).rows).toEqual(before);
  });

  it('flags the spike and the zero run on the bill', async () => {
    const { body } = await stack.api('/v1/bills/WARN.2026-03-01');
    expect(body.meters[0].warnings).toEqual([
      { code: 'spike', from: '2026-03-10T12:00:00Z', to: '2026-03-10T12:15:00Z', message: expect.stringContaining('import 5 kWh is more than 10 x') },
      { code: 'zero_run', from: '2026-03-20T06:00:00Z', to: '2026-03-21T07:00:00Z', message: '25 hours of consecutive actual intervals with zero import and zero export' },
    ]);
    expect(body.meters[0].warningsOmitted).toEqual({});
  });

  it('two concurrent runs create exactly one bill per account and cycle', async () => {
    // Twenty accounts with September data (London: 1 September 00:00 BST = 31 August 23:00Z, 30 days).
    for (let i = 1; i <= 20; i++) {
      const id = `C-${String(i).padStart(2, '0')}`;
      await createAccount(stack, id, 'Europe/London', 1);
      await createMeter(stack, `M-${id}`, id, 'Europe/London', 'flat-uk');
      await insertReadings(stack, `M-${id}`, '2026-08-31T23:00:00Z', 2880, 50_000);
    }
    const [a, b] = await Promise.all([billingRun(stack, '2026-10-10T00:00:00Z'), billingRun(stack, '2026-10-10T00:00:00Z')]);
    expect([a.status, b.status]).toEqual([202, 202]);
    expect([...a.body.failures, ...b.body.failures]).toEqual([]);
    // Due (cutoff 7 October): the 20 September cycles, and April to September for LA-MAR, UK-MAR and WARN.
    expect(a.body.billsCreated + b.body.billsCreated).toBe(20 + 3 * 6);
    const dupes = await stack.pool.query('SELECT account_id, cycle_start FROM bills GROUP BY 1, 2 HAVING count(*) > 1');
    expect(dupes.rows).toEqual([]);
    expect(Number((await stack.pool.query('SELECT count(*) FROM bills')).rows[0].count)).toBe(3 + 38);
    // 2880 x 50 Wh = 144 kWh x 0.20 = 28.80; 30 x 0.50 = 15.00; + 10.00 = 53.80; tax 2.69; total 56.49
    const c07 = (await stack.api('/v1/bills/C-07.2026-09-01')).body;
    expect(c07).toMatchObject({ subtotal: '53.80', taxes: '2.69', total: '56.49' });
    expect(c07.cycle).toMatchObject({ from: '2026-08-31T23:00:00Z', to: '2026-09-30T23:00:00Z', days: 30 });
  });

  it('bills a meter from its first activity: one added later is not charged for earlier cycles', async () => {
    await createAccount(stack, 'TWO', 'Europe/London', 1);
    await createMeter(stack, 'M-TWO-A', 'TWO', 'Europe/London', 'flat-uk'); // reports in September
    await insertReadings(stack, 'M-TWO-A', '2026-08-31T23:00:00Z', 2880, 50_000);
    await createMeter(stack, 'M-TWO-B', 'TWO', 'Europe/London', 'flat-uk'); // created now, nothing sent yet
    await createMeter(stack, 'M-TWO-C', 'TWO', 'Europe/London', 'flat-uk'); // created now, backlog from 20 September
    await insertReadings(stack, 'M-TWO-C', '2026-09-19T23:00:00Z', 4, 50_000);
    const run = await billingRun(stack, '2026-10-10T00:00:00Z');
    expect(run.body).toMatchObject({ billsCreated: 1, billIds: ['TWO.2026-09-01'], failures: [] });
    const bill = (await stack.api('/v1/bills/TWO.2026-09-01')).body;
    expect(bill.meters.map((m: any) => m.meterId)).toEqual(['M-TWO-A', 'M-TWO-C']);
  });

  it('estimates an empty cycle from the same weekday of the previous four weeks, as far as actual history reaches', async () => {
    // UK-MAR reported until 31 March 23:00Z. April (31 March 23:00Z to 30 April 23:00Z, 2880 intervals): a slot
    // has an actual reading 1 to 4 weeks earlier up to 28 April 23:00Z: 28 x 96 = 2688 estimated at 100 Wh
    // (the mean of 100 Wh readings), 192 left missing.
    const april = (await stack.api('/v1/bills/UK-MAR.2026-04-01')).body.meters[0];
    expect(april.coverage).toEqual({ expectedIntervals: 2880, actualIntervals: 0, estimatedIntervals: 2688, missingIntervals: 192 });
    expect(april.estimated).toEqual({ linear: 0, profile: 2688 });
    expect(lineOf(april.lines, 'energy')[0]).toMatchObject({ quantity: '268.8', amount: '53.76' });
    expect(april.warnings).toEqual([expect.objectContaining({ code: 'unestimated_gap', from: '2026-04-28T23:00:00Z', to: '2026-04-30T23:00:00Z' })]);
    const stored = await stack.pool.query(`SELECT count(*)::int AS n, min(import_mwh)::int AS lo, max(import_mwh)::int AS hi FROM readings WHERE meter_id = 'M-UK-MAR' AND quality = 'estimated'`);
    expect(stored.rows[0]).toEqual({ n: 2688, lo: 100_000, hi: 100_000 });
    // May: the four weeks before hold estimates only, never used as a profile: nothing estimated.
    const may = (await stack.api('/v1/bills/UK-MAR.2026-05-01')).body.meters[0];
    expect(may.coverage).toMatchObject({ actualIntervals: 0, estimatedIntervals: 0, missingIntervals: 2976 });
    // fixed charges only: 31 x 0.50 + 10 = 25.50; tax 1.275 -> 1.28
    expect(may).toMatchObject({ subtotal: '25.50', taxes: '1.28', total: '26.78' });
  });

  it('closes October in London and 15 October to 15 November in Los Angeles (fall-back months)', async () => {
    const run = await billingRun(stack, '2026-11-20T00:00:00Z');
    expect(run.body.failures).toEqual([]);
    // 2980 x 100 Wh = 298 kWh x 0.20 = 59.60; 31 x 0.50 = 15.50; + 10 = 85.10; tax 4.255 -> 4.26; total 89.36
    for (const [id, cycle] of [
      ['UK-OCT.2026-10-01', { from: '2026-09-30T23:00:00Z', to: '2026-11-01T00:00:00Z', firstDay: '2026-10-01', lastDay: '2026-10-31', days: 31 }],
      ['LA-OCT.2026-10-15', { from: '2026-10-15T07:00:00Z', to: '2026-11-15T08:00:00Z', firstDay: '2026-10-15', lastDay: '2026-11-14', days: 31 }],
    ] as const) {
      const { body } = await stack.api(`/v1/bills/${id}`);
      expect(body.cycle).toEqual(cycle);
      expect(body.meters[0].coverage).toEqual({ expectedIntervals: 2980, actualIntervals: 2980, estimatedIntervals: 0, missingIntervals: 0 });
      expect(lineOf(body.meters[0].lines, 'energy')[0]).toMatchObject({ quantity: '298', amount: '59.60' });
      expect(body).toMatchObject({ subtotal: '85.10', taxes: '4.26', total: '89.36' });
    }
    expect((await billsOf(stack, 'UK-OCT')).map((b) => b.id)).toEqual(['UK-OCT.2026-10-01']);
  });

  it('lists an account\'s bills oldest first, pages them, and serves a bill\'s lines as CSV', async () => {
    const page = await stack.api('/v1/accounts/UK-MAR/bills?limit=3');
    expect(page.body.items.map((b: any) => b.id)).toEqual(['UK-MAR.2026-03-01', 'UK-MAR.2026-04-01', 'UK-MAR.2026-05-01']);
    expect(page.body.items[0]).toMatchObject({ accountId: 'UK-MAR', currency: 'GBP', total: '89.19', contentHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const rest = await stack.api(page.body.next);
    expect(rest.body.items[0].id).toBe('UK-MAR.2026-06-01');

    const csv = await fetch(`${stack.apiUrl}/v1/bills/LA-MAR.2026-03-01/lines.csv`, { headers: { authorization: `Bearer ${(stack as any).adminToken ?? 'test-admin-token-0123456789abcdef'}` } });
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    const rows = (await csv.text()).trimEnd().split('\r\n').map((r) => r.split(','));
    expect(rows[0]).toEqual(['bill_id', 'account_id', 'cycle_from', 'cycle_to', 'meter_id', 'type', 'name', 'period', 'tier', 'quantity', 'unit', 'rate', 'amount', 'currency', 'tariff_id', 'corrects_bill_id', 'corrected_from', 'corrected_to']);
    const col = (name: string) => rows[0].indexOf(name);
    expect(rows.slice(1).map((r) => [r[col('type')], r[col('quantity')], r[col('amount')]])).toEqual([
      ['energy', '297.2', '59.44'],
      ['fixed', '31', '15.50'],
      ['fixed', '1', '10.00'],
      ['tax', '', '4.25'],
    ]);
    const viaFormat = await stack.api('/v1/bills/LA-MAR.2026-03-01?format=csv');
    expect(viaFormat.body).toBe(rows.map((r) => r.join(',')).join('\r\n') + '\r\n');
  });

  it('lets a customer read only its own account\'s bills and charges; only an admin starts a run', async () => {
    const customer = (await stack.api('/v1/tokens', { body: { role: 'customer', accountId: 'UK-MAR' } })).body.token;
    const reader = (await stack.api('/v1/tokens', { body: { role: 'reader' } })).body.token;
    expect((await stack.api('/v1/accounts/UK-MAR/bills', { token: customer })).status).toBe(200);
    expect((await stack.api('/v1/bills/UK-MAR.2026-03-01', { token: customer })).status).toBe(200);
    expect((await stack.api('/v1/bills/UK-MAR.2026-03-01/lines.csv', { token: customer })).status).toBe(200);
    for (const path of ['/v1/accounts/LA-MAR/bills', '/v1/bills/LA-MAR.2026-03-01', '/v1/bills/LA-MAR.2026-03-01/lines.csv', '/v1/bills/LA-MAR.2026-03-01?format=csv', '/v1/accounts/LA-MAR/charges', '/v1/bills/no-such-bill', '/v1/accounts/NO-SUCH/bills']) {
      const res = await stack.api(path, { token: customer });
      expect(res.status, path).toBe(404);
    }
    expect((await stack.api('/v1/accounts/LA-MAR/bills', { token: reader })).status).toBe(200);
    expect((await billingRun(stack, '2026-04-05T00:00:00Z', customer)).status).toBe(403);
    expect((await billingRun(stack, '2026-04-05T00:00:00Z', reader)).status).toBe(403);
    expect((await stack.api('/v1/billing-runs', { body: { asOf: '2026-04-05T00:00:00Z' }, token: null })).status).toBe(401);
    expect((await stack.api('/v1/accounts/NO-SUCH/bills')).status).toBe(404);
    expect((await stack.api('/v1/bills/no-such-bill')).status).toBe(404);
  });

  it('refuses an asOf in the future, or not an instant with an offset', async () => {
    const future = await billingRun(stack, new Date(Date.now() + 3_600_000).toISOString());
    expect(future.status).toBe(400);
    expect(future.body.error.details).toEqual([expect.objectContaining({ field: 'body.asOf', message: expect.stringMatching(/future/) })]);
    const local = await billingRun(stack, '2026-04-05T00:00:00');
    expect(local.status).toBe(400);
    expect(local.body.error.details[0].field).toBe('body.asOf');
    expect((await stack.api('/v1/billing-runs', { body: { asOf: '2026-04-05T00:00:00Z', extra: 1 } })).status).toBe(400);
    const runs = (await stack.pool.query('SELECT count(*)::int AS n FROM billing_runs')).rows[0].n;
    const run = await billingRun(stack, '2026-04-05T00:00:00Z');
    expect((await stack.api(`/v1/billing-runs/${run.body.id}`)).body).toMatchObject({ id: run.body.id, billsCreated: 0, finishedAt: expect.any(String) });
    expect((await stack.pool.query('SELECT count(*)::int AS n FROM billing_runs')).rows[0].n).toBe(runs + 1);
  });
});
