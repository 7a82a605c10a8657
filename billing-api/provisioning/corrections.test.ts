/**
 * Corrections with a trail, through the public HTTP API against the real stack: PATCH of accounts and meters
 * with the rules of billed history, the stuck tariff assignment repaired through the API alone (an
 * assignment that starts before its tariff's first version is refused; an existing one is moved or removed
 * while no closed bill covers what it changes), every correction an event naming the token, bills across
 * accounts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageModes } from '../../test/support/database.js';
import { startTestStack, type TestStack } from '../../test/support/stack.js';
import { createAccount, createMeter, createTariff, flatTariff, insertReadings } from '../test-support.js';

const mode = storageModes()[0];
let stack: TestStack;

beforeAll(async () => {
  stack = await startTestStack(mode);
});
afterAll(async () => {
  await stack?.close();
});

/**
 * A billing run for `asOf`, followed to its end: the 201 answer of a synchronous run, or, when the run
 * answers 202, its state polled until it has finished.
 */
async function runBilling(asOf: string): Promise<any> {
  const res = await stack.api('/v1/billing-runs', { body: { asOf } });
  expect([201, 202], JSON.stringify(res.body)).toContain(res.status);
  if (res.status === 201) return res.body;
  for (let i = 0; i < 600; i++) {
    const run = await stack.api(`/v1/billing-runs/${encodeURIComponent(res.body.id)}`);
    expect(run.status).toBe(200);
    if (run.body.finishedAt) return run.body;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`billing run ${res.body.id} did not finish`);
}

const billIds = async (accountId: string) => ((await stack.api(`/v1/accounts/${accountId}/bills`)).body.items as { id: string }[]).map((b) => b.id);

const errorMessage = (res: { body: any }) => `${res.body.error.message} ${JSON.stringify(res.body.error.details)}`;

describe(`corrections (${mode} storage)`, () => {
  let assignmentIds: string[] = [];
  let readerToken = '';

  it('sets up an account in London billed for September', async () => {
    await createTariff(stack, flatTariff('flat-old', { timeZone: 'Europe/London', rate: '0.10', currency: 'GBP' }));
    await createTariff(stack, flatTariff('flat-mid', { timeZone: 'Europe/London', rate: '0.15', currency: 'GBP' }));
    await createTariff(stack, { ...flatTariff('flat-new', { timeZone: 'Europe/London', rate: '0.20', currency: 'GBP' }), effectiveFrom: '2026-10-15T00:00:00Z' });
    await createAccount(stack, 'ACC-S', 'Europe/London', 1);
    await createMeter(stack, 'MTR-S', 'ACC-S', 'Europe/London', 'flat-old');
    // 1 Wh per 15 minutes from 1 September (local) to the end of October: 2880 + 2980 intervals.
    await insertReadings(stack, 'MTR-S', '2026-08-31T23:00:00Z', 2880 + 2980, 1000);
    await runBilling('2026-10-05T00:00:00Z');
    expect(await billIds('ACC-S')).toEqual(['ACC-S.2026-09-01']);
    const reader = await stack.api('/v1/tokens', { body: { role: 'reader' } });
    readerToken = reader.body.token;
  });

  it('refuses an assignment that starts before its tariff\'s first version, naming the field and the first version', async () => {
    const res = await stack.api('/v1/meters/MTR-S/tariff', { method: 'PUT', body: { tariffId: 'flat-new', effectiveFrom: '2026-10-10T00:00:00Z' } });
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(res.body.error.details).toEqual([{ field: 'body.effectiveFrom', message: expect.stringContaining('2026-10-15T00:00:00.000Z') }]);
    // One second before the first version is refused too: no gap is ever left.
    const second = await stack.api('/v1/meters/MTR-S/tariff', { method: 'PUT', body: { tariffId: 'flat-new', effectiveFrom: '2026-10-14T23:59:59Z' } });
    expect(second.status).toBe(400);
  });

  it('repairs a stuck assignment (stored by an older release) through the API alone', async () => {
    // What an older release accepted: flat-new from 10 October, five days before its first version.
    await stack.pool.query(`INSERT INTO meter_tariffs (meter_id, effective_from, tariff_id) VALUES ('MTR-S', '2026-10-10T00:00:00Z', 'flat-new')`);
    const stuckRun = await runBilling('2026-11-05T00:00:00Z');
    expect(JSON.stringify(stuckRun.failures)).toContain('ACC-S');
    expect(await billIds('ACC-S')).toEqual(['ACC-S.2026-09-01']);

    const listed = await stack.api('/v1/meters/MTR-S/tariff');
    expect(listed.status).toBe(200);
    expect(listed.body.assignments.map((a: any) => [a.tariffId, a.effectiveFrom])).toEqual([['flat-old', null], ['flat-new', '2026-10-10T00:00:00.000Z']]);
    assignmentIds = listed.body.assignments.map((a: any) => a.id);
    const stuck = assignmentIds[1];

    // Moving it into billed September would reprice a closed bill: refused, naming the bill.
    const intoBilled = await stack.api(`/v1/meters/MTR-S/tariff-assignments/${stuck}`, { method: 'PATCH', body: { tariffId: 'flat-mid', effectiveFrom: '2026-09-20T00:00:00Z' } });
    expect(intoBilled.status).toBe(409);
    expect(errorMessage(intoBilled)).toContain('ACC-S.2026-09-01');
    // Still before the first version: refused as the creation is.
    const tooEarly = await stack.api(`/v1/meters/MTR-S/tariff-assignments/${stuck}`, { method: 'PATCH', body: { effectiveFrom: '2026-10-12T00:00:00Z' } });
    expect(tooEarly.status).toBe(400);
    expect(tooEarly.body.error.details[0].field).toBe('body.effectiveFrom');
    // Unknown assignment: 404.
    expect((await stack.api('/v1/meters/MTR-S/tariff-assignments/999999', { method: 'PATCH', body: { effectiveFrom: '2026-10-15T00:00:00Z' } })).status).toBe(404);

    const moved = await stack.api(`/v1/meters/MTR-S/tariff-assignments/${stuck}`, { method: 'PATCH', body: { effectiveFrom: '2026-10-15T00:00:00Z' } });
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    expect(moved.body.assignments.map((a: any) => [a.id, a.tariffId, a.effectiveFrom])).toEqual([
      [assignmentIds[0], 'flat-old', null],
      [stuck, 'flat-new', '2026-10-15T00:00:00.000Z'],
    ]);

    // The next run closes October, rated with both tariffs, and nothing else had to change.
    const run = await runBilling('2026-11-05T00:00:00Z');
    expect(JSON.stringify(run.failures ?? [])).not.toContain('ACC-S');
    expect(await billIds('ACC-S')).toEqual(['ACC-S.2026-09-01', 'ACC-S.2026-10-01']);
    const bill = await stack.api('/v1/bills/ACC-S.2026-10-01');
    expect(bill.status).toBe(200);
    const versions = bill.body.meters[0].tariffVersions.map((v: { tariffId: string }) => v.tariffId);
    expect(versions).toEqual(['flat-old', 'flat-new']);
  });

  it('removes an assignment no bill covers, and refuses to remove one a bill covers', async () => {
    const added = await stack.api('/v1/meters/MTR-S/tariff', { method: 'PUT', body: { tariffId: 'flat-old', effectiveFrom: '2026-12-01T00:00:00Z' } });
    expect(added.status, JSON.stringify(added.body)).toBe(200);
    const december = added.body.assignments[2].id;
    const removed = await stack.api(`/v1/meters/MTR-S/tariff-assignments/${december}`, { method: 'DELETE' });
    expect(removed.status, JSON.stringify(removed.body)).toBe(200);
    expect(removed.body.assignments.map((a: any) => a.id)).toEqual(assignmentIds);

    const first = await stack.api(`/v1/meters/MTR-S/tariff-assignments/${assignmentIds[0]}`, { method: 'DELETE' });
    expect(first.status).toBe(409);
    expect(errorMessage(first)).toContain('ACC-S.2026-09-01');
    expect(errorMessage(first)).toContain('ACC-S.2026-10-01');
    // A reader may not correct.
    expect((await stack.api(`/v1/meters/MTR-S/tariff-assignments/${assignmentIds[1]}`, { method: 'DELETE', token: readerToken })).status).toBe(403);
  });

  it('corrects an account: the name always; zone and billing day only before its first bill', async () => {
    const renamed = await stack.api('/v1/accounts/ACC-S', { method: 'PATCH', body: { name: 'Sam Smith Ltd' } });
    expect(renamed.status, JSON.stringify(renamed.body)).toBe(200);
    expect(renamed.body).toMatchObject({ id: 'ACC-S', name: 'Sam Smith Ltd', timezone: 'Europe/London', billingDay: 1 });
    expect((await stack.api('/v1/accounts/ACC-S')).body.name).toBe('Sam Smith Ltd');

    const zone = await stack.api('/v1/accounts/ACC-S', { method: 'PATCH', body: { timezone: 'Europe/Paris', billingDay: 15 } });
    expect(zone.status).toBe(409);
    expect(zone.body.error.message).toContain('timezone and billingDay');
    expect(zone.body.error.message).toContain('ACC-S.2026-10-01');
    expect((await stack.api('/v1/accounts/ACC-S')).body).toMatchObject({ timezone: 'Europe/London', billingDay: 1 });

    await createAccount(stack, 'ACC-NEW', 'Europe/Lisbon', 1);
    const fresh = await stack.api('/v1/accounts/ACC-NEW', { method: 'PATCH', body: { timezone: 'Europe/London', billingDay: 15 } });
    expect(fresh.status, JSON.stringify(fresh.body)).toBe(200);
    expect(fresh.body).toMatchObject({ timezone: 'Europe/London', billingDay: 15 });

    const bad = await stack.api('/v1/accounts/ACC-NEW', { method: 'PATCH', body: { timezone: 'Mars/Olympus', billingDay: 40, id: 'X' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.map((d: { field: string }) => d.field).sort()).toEqual(['body.billingDay', 'body.id', 'body.timezone']);
    expect((await stack.api('/v1/accounts/ACC-NEW', { method: 'PATCH', body: {} })).status).toBe(400);
    expect((await stack.api('/v1/accounts/ACC-NONE', { method: 'PATCH', body: { name: 'x' } })).status).toBe(404);
    expect((await stack.api('/v1/accounts/ACC-NEW', { method: 'PATCH', body: { name: 'x' }, token: readerToken })).status).toBe(403);
  });

  it('corrects a meter: maximum power always; zone once no bill has it; interval while it has no reading', async () => {
    const power = await stack.api('/v1/meters/MTR-S', { method: 'PATCH', body: { maxPowerKw: 7.5 } });
    expect(power.status, JSON.stringify(power.body)).toBe(200);
    expect(power.body.maxPowerKw).toBe('7.500');
    const unlimited = await stack.api('/v1/meters/MTR-S', { method: 'PATCH', body: { maxPowerKw: null } });
    expect(unlimited.body.maxPowerKw).toBeNull();

    const both = await stack.api('/v1/meters/MTR-S', { method: 'PATCH', body: { timezone: 'Europe/Dublin', intervalSeconds: 1800 } });
    expect(both.status).toBe(409);
    expect(both.body.error.message).toContain('timezone cannot change: bill "ACC-S.2026-10-01"');
    expect(both.body.error.message).toContain('intervalSeconds cannot change');
    expect(both.body.error.message).toContain('2026-10-31T23:45:00.000Z');

    await createMeter(stack, 'MTR-NEW', 'ACC-NEW', 'Europe/Lisbon', 'flat-old');
    const fresh = await stack.api('/v1/meters/MTR-NEW', { method: 'PATCH', body: { timezone: 'Europe/London', intervalSeconds: 1800 } });
    expect(fresh.status, JSON.stringify(fresh.body)).toBe(200);
    expect(fresh.body).toMatchObject({ timezone: 'Europe/London', intervalSeconds: 1800 });
    expect((await stack.api('/v1/meters/MTR-NEW', { method: 'PATCH', body: { intervalSeconds: 1000 } })).status).toBe(400);
    expect((await stack.api('/v1/meters/MTR-NEW', { method: 'PATCH', body: { accountId: 'ACC-S' } })).body.error.details).toContainEqual({ field: 'body.accountId', message: 'unknown field' });
  });

  it('lists every correction as an event naming the token, per account and across the installation, paged', async () => {
    const res = await stack.api('/v1/accounts/ACC-S/events', { token: readerToken });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const events = res.body.items;
    expect(events.map((e: any) => e.action)).toEqual([
      'tariff_assignment.updated',
      'tariff_assignment.created',
      'tariff_assignment.deleted',
      'account.updated',
      'meter.updated',
      'meter.updated',
    ]);
    for (const e of events) {
      expect(e.actor).toBe('bootstrap-admin');
      expect(e.accountId).toBe('ACC-S');
      expect(Date.parse(e.at)).not.toBeNaN();
    }
    expect(events[0]).toMatchObject({
      subjectType: 'tariff_assignment',
      subjectId: assignmentIds[1],
      before: { meterId: 'MTR-S', tariffId: 'flat-new', effectiveFrom: '2026-10-10T00:00:00.000Z' },
      after: { meterId: 'MTR-S', tariffId: 'flat-new', effectiveFrom: '2026-10-15T00:00:00.000Z' },
    });
    expect(events[2].after).toBeNull();
    expect(events[3]).toMatchObject({ before: { name: 'Account ACC-S' }, after: { name: 'Sam Smith Ltd' } });
    expect(events[4]).toMatchObject({ subjectId: 'MTR-S', before: { maxPowerKw: null }, after: { maxPowerKw: '7.500' } });

    // Refused corrections leave no event; paging walks every event once.
    const seen: string[] = [];
    let next: string | null = '/v1/events?limit=2';
    while (next) {
      const page: { status: number; body: any } = await stack.api(next);
      expect(page.status).toBe(200);
      seen.push(...page.body.items.map((e: { id: string }) => e.id));
      next = page.body.next;
    }
    expect(seen.length).toBe(events.length + 3); // and ACC-NEW's and MTR-NEW's corrections, and the reader token's creation
    expect(new Set(seen).size).toBe(seen.length);
    const meterEvents = await stack.api('/v1/events?subjectType=meter&subjectId=MTR-NEW');
    expect(meterEvents.body.items.map((e: any) => [e.action, e.before.intervalSeconds, e.after.intervalSeconds])).toEqual([['meter.updated', 900, 1800]]);

    const customer = await stack.api('/v1/tokens', { body: { role: 'customer', accountId: 'ACC-S' } });
    expect((await stack.api('/v1/events', { token: customer.body.token })).status).toBe(403);
    expect((await stack.api('/v1/accounts/ACC-NONE/events')).status).toBe(404);
    expect((await stack.api('/v1/events?after=x')).status).toBe(400);
  });

  it('lists bills across accounts in closing order, paged, for staff only', async () => {
    const all: string[] = [];
    let next: string | null = '/v1/bills?limit=1';
    while (next) {
      const page: { status: number; body: any } = await stack.api(next, { token: readerToken });
      expect(page.status, JSON.stringify(page.body)).toBe(200);
      all.push(...page.body.items.map((b: { id: string }) => b.id));
      next = page.body.next;
    }
    expect(all).toEqual(['ACC-S.2026-09-01', 'ACC-S.2026-10-01']);
    const one = await stack.api('/v1/bills?accountId=ACC-S&limit=10');
    expect(one.body.items[0]).toMatchObject({ id: 'ACC-S.2026-09-01', accountId: 'ACC-S', currency: 'GBP', contentHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const none = await stack.api(`/v1/bills?closedFrom=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}`);
    expect(none.body.items).toEqual([]);
    expect((await stack.api('/v1/bills?after=nonsense')).status).toBe(400);
    const customer = await stack.api('/v1/tokens', { body: { role: 'customer', accountId: 'ACC-S' } });
    expect((await stack.api('/v1/bills', { token: customer.body.token })).status).toBe(403);
  });

  it('corrects billed time with rebill=true: the bill is voided with a credit note and re-billed with the corrected tariffs', async () => {
    const stuck = assignmentIds[1];
    const refused = await stack.api(`/v1/meters/MTR-S/tariff-assignments/${stuck}`, { method: 'PATCH', body: { effectiveFrom: '2026-10-20T00:00:00Z' } });
    expect(refused.status).toBe(409);
    expect(refused.body.error.message).toContain('rebill=true');

    const res = await stack.api(`/v1/meters/MTR-S/tariff-assignments/${stuck}?rebill=true`, { method: 'PATCH', body: { effectiveFrom: '2026-10-20T00:00:00Z' } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.rebillFailures).toEqual([]);
    expect(res.body.rebilled).toEqual([{ voided: 'ACC-S.2026-10-01', creditNoteId: expect.any(String), rebillId: expect.any(String) }]);
    const rebill = await stack.api(`/v1/bills/${res.body.rebilled[0].rebillId}`);
    expect(rebill.status).toBe(200);
    // October (London) holds 2980 quarter hours of 1 Wh: flat-old now until 20 October 00:00 UTC (1828 of
    // them, 1.828 kWh), flat-new after it (1152, 1.152 kWh); the voided bill had 1.348 and 1.632.
    const energy = JSON.stringify(rebill.body.meters[0]);
    expect(energy).toContain('"quantity":"1.828"');
    expect(energy).toContain('"quantity":"1.152"');
    const original = JSON.stringify((await stack.api('/v1/bills/ACC-S.2026-10-01')).body.meters[0]);
    expect(original).toContain('"quantity":"1.348"');
    expect(original).toContain('"quantity":"1.632"');

    const events = (await stack.api('/v1/accounts/ACC-S/events?subjectType=tariff_assignment')).body.items;
    expect(events[events.length - 1]).toMatchObject({ action: 'tariff_assignment.updated', after: { effectiveFrom: '2026-10-20T00:00:00.000Z', rebill: ['ACC-S.2026-10-01'] } });
    // The re-bill is now the current bill: a further correction of October names it.
    const again = await stack.api(`/v1/meters/MTR-S/tariff-assignments/${stuck}`, { method: 'PATCH', body: { effectiveFrom: '2026-10-25T00:00:00Z' } });
    expect(again.status).toBe(409);
    expect(again.body.error.message).toContain(res.body.rebilled[0].rebillId);
  });
});
