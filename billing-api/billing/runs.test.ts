/**
 * Billing runs people can follow, through the HTTP API against the real stack: POST answers 202 at once and
 * the run is polled to its end; a run with one failing account closes every other account and names the
 * failure (account, cycle, reason); a later run retries it; runs are listed with paging; "the cycles ending
 * in a month" instead of asOf arithmetic. Amounts: the flat tariff of close.test.ts (0.20/kWh, 0.50/day,
 * 10/month, tax 5%).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageModes } from '../../test/support/database.js';
import { startTestStack, type TestStack } from '../../test/support/stack.js';
import { billingRun, billsOf, createAccount, createMeter, createTariff, flatTariff, insertReadings } from '../test-support.js';

describe.each(storageModes())('billing runs followed (%s storage)', (mode) => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack(mode, { BILLING_CRON: 'off' });
    await createTariff(stack, flatTariff('flat-uk', { currency: 'GBP', timeZone: 'Europe/London', rate: '0.20', perDay: '0.50', perMonth: '10', tax: '0.05' }));
    // September 2026 in London: 31 August 23:00Z to 30 September 23:00Z = 720 h = 2880 intervals.
    for (const id of ['R-OK1', 'R-BAD', 'R-OK3']) {
      await createAccount(stack, id, 'Europe/London', 1);
      if (id === 'R-BAD') {
        // A meter without a tariff: its account cannot be rated.
        const res = await stack.api('/v1/meters', { body: { id: 'M-R-BAD', accountId: id, timezone: 'Europe/London', intervalSeconds: 900 } });
        expect(res.status, JSON.stringify(res.body)).toBe(201);
      } else await createMeter(stack, `M-${id}`, id, 'Europe/London', 'flat-uk');
      await insertReadings(stack, `M-${id}`, '2026-08-31T23:00:00Z', 2880, 50_000);
    }
    // Billing day 15: the cycle 15 August to 15 September ends in September; 15 September to 15 October does not.
    await createAccount(stack, 'R-MID', 'Europe/London', 15);
    await createMeter(stack, 'M-R-MID', 'R-MID', 'Europe/London', 'flat-uk');
    await insertReadings(stack, 'M-R-MID', '2026-08-14T23:00:00Z', 2 * 2976, 50_000);
  });
  afterAll(async () => stack?.close());

  it('answers 202 at once; the run, polled to its end, closes every other account and names the failing one', async () => {
    const started = await stack.api('/v1/billing-runs', { body: { cyclesEndingIn: '2026-09' } });
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    expect(started.body).toMatchObject({ id: expect.any(String), state: 'running', trigger: 'api', cyclesEndingIn: '2026-09', finishedAt: null, progress: { accountsTotal: 4 } });

    let run = started.body;
    const seen = new Set<string>();
    while (run.state === 'running') {
      const res = await stack.api(`/v1/billing-runs/${started.body.id}`);
      expect(res.status).toBe(200);
      run = res.body;
      seen.add(run.state);
      expect(run.progress.accountsDone).toBeLessThanOrEqual(4);
    }
    expect(run).toMatchObject({ state: 'finished', billsCreated: 3, failureCount: 1, progress: { accountsTotal: 4, accountsDone: 4 }, error: null });
    expect(run.durationMs).toBeGreaterThanOrEqual(0);
    expect(run.failures).toEqual([
      {
        accountId: 'R-BAD',
        cycle: { from: '2026-08-31T23:00:00Z', to: '2026-09-30T23:00:00Z' },
        code: 'no_tariff_in_effect',
        message: expect.stringContaining('M-R-BAD'),
      },
    ]);
    expect(run.billIds.sort()).toEqual(['R-MID.2026-08-15', 'R-OK1.2026-09-01', 'R-OK3.2026-09-01']);
    // 2880 x 50 Wh = 144 kWh x 0.20 = 28.80; 30 x 0.50 = 15.00; + 10.00 = 53.80; tax 2.69; total 56.49
    expect((await stack.api('/v1/bills/R-OK3.2026-09-01')).body).toMatchObject({ total: '56.49' });
    expect(await billsOf(stack, 'R-BAD')).toEqual([]);
    // The cycle of R-MID ending in October is not closed.
    expect((await billsOf(stack, 'R-MID')).map((b) => b.id)).toEqual(['R-MID.2026-08-15']);
    // The failure is stored with the run.
    const stored = await stack.pool.query('SELECT account_id, code FROM billing_run_failures WHERE run_id = $1', [run.id]);
    expect(stored.rows).toEqual([{ account_id: 'R-BAD', code: 'no_tariff_in_effect' }]);
  });

  it('retries a failed account in a later run once it can be rated', async () => {
    const assigned = await stack.api('/v1/meters/M-R-BAD/tariff', { method: 'PUT', body: { tariffId: 'flat-uk', effectiveFrom: '2026-01-01T00:00:00Z' } });
    expect(assigned.status, JSON.stringify(assigned.body)).toBeLessThan(300);
    const run = await billingRun(stack, { cyclesEndingIn: '2026-09' });
    expect(run.status).toBe(202);
    expect(run.body).toMatchObject({ state: 'finished', billsCreated: 1, failureCount: 0, failures: [], billIds: ['R-BAD.2026-09-01'] });
    expect((await stack.api('/v1/bills/R-BAD.2026-09-01')).body).toMatchObject({ total: '56.49' });
  });

  it('lists runs latest first, with paging, state, counts, duration and failures', async () => {
    const all = await stack.api('/v1/billing-runs');
    expect(all.status).toBe(200);
    expect(all.body.next).toBeNull();
    expect(all.body.items).toHaveLength(2);
    const [latest, first] = all.body.items;
    expect(Date.parse(latest.startedAt)).toBeGreaterThanOrEqual(Date.parse(first.startedAt));
    expect(first).toMatchObject({ state: 'finished', billsCreated: 3, failureCount: 1, failures: [expect.objectContaining({ accountId: 'R-BAD' })] });
    expect(latest).toMatchObject({ billsCreated: 1, failureCount: 0 });
    const page1 = await stack.api('/v1/billing-runs?limit=1');
    expect(page1.body.items.map((r: { id: string }) => r.id)).toEqual([latest.id]);
    expect(page1.body.next).toBe(`/v1/billing-runs?limit=1&after=${latest.id}`);
    const page2 = await stack.api(page1.body.next);
    expect(page2.body.items.map((r: { id: string }) => r.id)).toEqual([first.id]);
    expect((await stack.api('/v1/billing-runs?state=running')).body.items).toEqual([]);
  });

  it('bills a net-metered account that exports with what earlier cycles carried into it, beside the others', async () => {
    const rate = {
      label: 'nem-rate',
      dgrules: 'Net Metering',
      energyratestructure: [[{ rate: 0.1, sell: 0.1 }]],
      energyweekdayschedule: Array.from({ length: 12 }, () => Array(24).fill(0)),
      energyweekendschedule: Array.from({ length: 12 }, () => Array(24).fill(0)),
    };
    expect((await stack.api('/v1/tariffs/urdb', { body: { timezone: 'Europe/London', rate } })).status).toBe(201);
    await createAccount(stack, 'R-NEM', 'Europe/London', 1);
    await createMeter(stack, 'M-R-NEM', 'R-NEM', 'Europe/London', 'nem-rate');
    await insertReadings(stack, 'M-R-NEM', '2026-08-31T23:00:00Z', 2880, 50_000, { exportMwh: 80_000 });
    await createAccount(stack, 'R-OK4', 'Europe/London', 1);
    await createMeter(stack, 'M-R-OK4', 'R-OK4', 'Europe/London', 'flat-uk');
    await insertReadings(stack, 'M-R-OK4', '2026-08-31T23:00:00Z', 2880, 50_000);
    const run = await billingRun(stack, { cyclesEndingIn: '2026-09' });
    expect(run.body).toMatchObject({ state: 'finished', billsCreated: 2, billIds: ['R-NEM.2026-09-01', 'R-OK4.2026-09-01'], failureCount: 0, failures: [] });
    const [meter] = (await stack.api('/v1/bills/R-NEM.2026-09-01')).body.meters;
    // The first cycle of the tariff: nothing carried in; it exports more than it imports, so it carries a surplus out.
    expect(meter.metering).toMatchObject({ mode: 'net_metering', carriedIn: { banks: [], runningNetKwh: '0' } });
    expect(meter.metering.carriedOut).not.toEqual(meter.metering.carriedIn);
  });

  it('refuses both or neither of asOf and cyclesEndingIn, a malformed month, and a month not begun', async () => {
    for (const body of [{}, { asOf: '2026-10-05T00:00:00Z', cyclesEndingIn: '2026-09' }, { cyclesEndingIn: '2026-13' }, { cyclesEndingIn: '2999-01' }]) {
      const res = await stack.api('/v1/billing-runs', { body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.details[0].field).toMatch(/^body\.(asOf|cyclesEndingIn)$/);
    }
    const reader = (await stack.api('/v1/tokens', { body: { role: 'reader' } })).body.token;
    expect((await stack.api('/v1/billing-runs', { body: { cyclesEndingIn: '2026-09' }, token: reader })).status).toBe(403);
    expect((await stack.api('/v1/billing-runs', { token: reader })).status).toBe(200);
    expect((await stack.api('/v1/billing-runs/no-such-run')).status).toBe(404);
  });
});
