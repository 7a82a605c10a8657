/**
 * Shutdown with a billing run in flight: the run started through the API (202, it goes on after the answer)
 * finishes and is recorded as finished before the database closes, instead of being cut off mid-batch.
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { createDatabase } from '../test/support/database.js';
import { startTestStack } from '../test/support/stack.js';
import { createAccount, createMeter, createTariff, flatTariff, insertReadings } from '../billing-api/test-support.js';

const ACCOUNTS = 40;

describe('shutdown with a billing run in flight', () => {
  const dropAfter: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const drop of dropAfter) await drop();
  });

  it('stops only once the run has finished and recorded every bill', { timeout: 120_000 }, async () => {
    const db = await createDatabase('shutdown');
    dropAfter.push(db.drop);
    const stack = await startTestStack('plain', {}, db.url);
    let stopped = false;
    try {
      await createTariff(stack, flatTariff('flat', { currency: 'USD', timeZone: 'UTC', rate: '0.20', perDay: '0.50', perMonth: '10', tax: '0.05' }));
      for (let i = 0; i < ACCOUNTS; i++) {
        await createAccount(stack, `SD-${i}`, 'UTC', 1);
        await createMeter(stack, `SD-M-${i}`, `SD-${i}`, 'UTC', 'flat');
        await insertReadings(stack, `SD-M-${i}`, '2026-09-01T00:00:00Z', 30 * 96, 250_000);
      }
      const started = await stack.api('/v1/billing-runs', { body: { asOf: '2026-10-15T00:00:00Z' } });
      expect(started.status, JSON.stringify(started.body)).toBe(202);
      await stack.stop();
      stopped = true;
    } finally {
      if (!stopped) await stack.stop();
    }
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const runs = await client.query(`SELECT state, bills_created FROM billing_runs`);
      expect(runs.rows).toEqual([{ state: 'finished', bills_created: ACCOUNTS }]);
      const bills = await client.query(`SELECT count(*)::int AS n FROM bills`);
      expect(bills.rows[0].n).toBe(ACCOUNTS);
    } finally {
      await client.end();
    }
  });
});
