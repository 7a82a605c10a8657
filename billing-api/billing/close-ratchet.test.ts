/**
 * A bill run rates a demand ratchet with the peaks of the account's preceding cycles, as the charges
 * endpoint does, and copies the rating's notes into the bill (through the HTTP API, real stack).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageModes } from '../../test/support/database.js';
import { startTestStack, type TestStack } from '../../test/support/stack.js';
import { billingRun, createAccount, insertReadings, lineOf } from '../test-support.js';

describe.each(storageModes())('bill close with a demand ratchet (%s storage)', (mode) => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startTestStack(mode, { BILLING_CRON: 'off' });
    const rate = {
      label: 'ratchet-rate',
      name: 'Flat demand with a ratchet',
      energyratestructure: [[{ rate: 0.1 }]],
      energyweekdayschedule: Array.from({ length: 12 }, () => Array(24).fill(0)),
      energyweekendschedule: Array.from({ length: 12 }, () => Array(24).fill(0)),
      flatdemandstructure: [[{ rate: 10 }]],
      flatdemandmonths: Array(12).fill(0),
      lookbackpercent: 0.8,
      lookbackrange: 0,
      lookbackmonths: Array(12).fill(true),
      fixedattrs: [{ 'Outside City Monthly Charge': '$11.75' }],
    };
    expect((await stack.api('/v1/tariffs/urdb', { body: { timezone: 'Europe/London', rate, billingDemand: { lookbackHorizonMonths: 3 } } })).status).toBe(201);
    await createAccount(stack, 'RATCHET', 'Europe/London', 1);
    expect((await stack.api('/v1/meters', { body: { id: 'M-RATCHET', accountId: 'RATCHET', timezone: 'Europe/London', intervalSeconds: 900, tariffId: 'ratchet-rate' } })).status).toBe(201);
    // April to July complete (London, UTC+1): 1 kW throughout, one quarter hour of 100 kW in April, 12.5 kW in July.
    await insertReadings(stack, 'M-RATCHET', '2026-03-31T23:00:00Z', 1343, 250_000);
    await insertReadings(stack, 'M-RATCHET', '2026-04-14T22:45:00Z', 1, 25_000_000);
    await insertReadings(stack, 'M-RATCHET', '2026-04-14T23:00:00Z', 2880 - 1344 + 2976 + 2880, 250_000); // to 30 June 23:00Z
    await insertReadings(stack, 'M-RATCHET', '2026-06-30T23:00:00Z', 2976, 3_125_000); // July
  });
  afterAll(async () => stack?.close());

  it("bills July's demand at 80 % of April's peak, as the charges endpoint rates it, with the tariff's notes", async () => {
    const run = await billingRun(stack, '2026-08-05T00:00:00Z');
    expect(run.body).toMatchObject({ state: 'finished', billsCreated: 4, failures: [] });
    const july = (await stack.api('/v1/bills/RATCHET.2026-07-01')).body;
    const [meter] = july.meters;
    // 80 % of April's 100 kW = 80 kW > July's 12.5 kW: 80 x 10 = 800.00
    expect(lineOf(meter.lines, 'demand')).toEqual([
      expect.objectContaining({ quantity: '80', measuredKw: '12.5', amount: '800.00', billingDemandSetBy: { from: '2026-03-31T23:00:00Z', to: '2026-04-30T23:00:00Z', peakKw: '100', lookbackPercent: '0.8' } }),
    ]);
    // The history was supplied: the only note is the tariff's informative attribute.
    expect(meter.notes).toEqual(['fixed attribute (informative, not rated): Outside City Monthly Charge: $11.75']);
    const charges = await stack.api('/v1/meters/M-RATCHET/charges?from=2026-06-30T23:00:00Z&to=2026-07-31T23:00:00Z');
    expect(charges.status).toBe(200);
    expect(charges.body.lines).toEqual(meter.lines);
    expect(charges.body.total).toBe(meter.total);
  });
});
