/**
 * A tariff assignment correction and a bill close of the same account never interleave: the correction
 * takes the account's billing lock (the one a close holds while it prices and stores the account's bills),
 * so it waits for a close in progress and then judges the bills that close stored; a close started while a
 * correction holds the lock leaves the account for the next run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestStack, type TestStack } from '../../test/support/stack.js';
import { billingRun, createAccount, createMeter, createTariff, flatTariff, insertReadings } from '../test-support.js';

const ACCOUNT_LOCK = `SELECT pg_advisory_xact_lock(hashtextextended('billing-account:' || $1, 0))`;

describe('tariff assignment corrections against bill closes', () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack('plain');
    await createTariff(stack, flatTariff('lock-a', { timeZone: 'Europe/London', rate: '0.10', currency: 'GBP' }));
    await createTariff(stack, flatTariff('lock-b', { timeZone: 'Europe/London', rate: '0.20', currency: 'GBP' }));
    await createAccount(stack, 'ACC-LOCK', 'Europe/London', 1);
    await createMeter(stack, 'MTR-LOCK', 'ACC-LOCK', 'Europe/London', 'lock-a');
    await insertReadings(stack, 'MTR-LOCK', '2026-08-31T23:00:00Z', 2880 + 2976, 1000);
  });
  afterAll(async () => stack?.close());

  it('a correction waits while a close holds its account and goes on when the close ends; a run meanwhile leaves the account for later', async () => {
    const close = await stack.pool.connect();
    let answer: Promise<{ status: number; body: any }> | null = null;
    try {
      await close.query('BEGIN');
      await close.query(ACCOUNT_LOCK, ['ACC-LOCK']);
      answer = stack.api('/v1/meters/MTR-LOCK/tariff', { method: 'PUT', body: { tariffId: 'lock-b', effectiveFrom: '2026-09-15T00:00:00Z' } });
      const early = await Promise.race([answer.then(() => 'answered'), new Promise((resolve) => setTimeout(() => resolve('waiting'), 700))]);
      expect(early).toBe('waiting');
      // While the "close" holds the account, a billing run leaves it for later.
      const skipped = await billingRun(stack, '2026-10-05T00:00:00Z');
      expect(skipped.body).toMatchObject({ state: 'finished', billsCreated: 0, skipped: 1 });
    } finally {
      await close.query('COMMIT');
      close.release();
    }
    const corrected = await answer!;
    expect(corrected.status, JSON.stringify(corrected.body)).toBe(200);
  });

  it('once September is billed, a correction reaching into it is refused naming the bill', async () => {
    const run = await billingRun(stack, '2026-10-05T00:00:00Z');
    expect(run.body).toMatchObject({ state: 'finished', billsCreated: 1 });
    const late = await stack.api('/v1/meters/MTR-LOCK/tariff', { method: 'PUT', body: { tariffId: 'lock-a', effectiveFrom: '2026-09-20T00:00:00Z' } });
    expect(late.status, JSON.stringify(late.body)).toBe(409);
    expect(late.body.error.message).toContain('ACC-LOCK.2026-09-01');
  });
});
