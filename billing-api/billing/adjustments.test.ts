/**
 * Late data after a close (both storage modes, real MQTT, real HTTP): gaps estimated at close and stored as
 * 'estimated' readings; actual readings arriving later replace the estimates; the closed bill never
 * changes; the next bill carries adjustment lines (re-rated minus billed, per meter, naming the bill and
 * period corrected), and a later correction of the same period is measured against everything billed so
 * far. Amounts worked out by hand: 0.20 per kWh, 0.50 per day, 10 per month, tax 5%, London (GMT in
 * January and February).
 */
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageModes } from '../../test/support/database.js';
import { connectDevice, endClient, publishAcked } from '../../test/support/mqtt.js';
import { provisionFleet, startTestStack, type TestStack } from '../../test/support/stack.js';
import { billingRun, createTariff, flatTariff, insertReadings, lineOf } from '../test-support.js';

const Q = 900_000;
const slots = (fromIso: string, count: number, importWh: number) =>
  Array.from({ length: count }, (_, k) => ({ intervalStart: new Date(Date.parse(fromIso) + k * Q).toISOString(), intervalSeconds: 900, importWh }));

describe.each(storageModes())('late data and estimates (%s storage)', (mode) => {
  let stack: TestStack;
  let m1: MqttClient;
  let m2: MqttClient;
  let januaryBill: any;

  beforeAll(async () => {
    stack = await startTestStack(mode, { BILLING_CRON: 'off' });
    await createTariff(stack, flatTariff('flat-uk', { currency: 'GBP', timeZone: 'Europe/London', rate: '0.20', perDay: '0.50', perMonth: '10', tax: '0.05' }));
    const { secrets } = await provisionFleet(stack, { accountId: 'ADJ', meters: 2 });
    for (const id of ['MTR-000001', 'MTR-000002']) {
      const res = await stack.api(`/v1/meters/${id}/tariff`, { method: 'PUT', body: { tariffId: 'flat-uk', effectiveFrom: '2020-01-01T00:00:00Z' } });
      expect(res.status).toBe(200);
    }
    // MTR-000001: all of January at 100 Wh per quarter hour except 15 January 10:00-12:00 (8 intervals).
    await insertReadings(stack, 'MTR-000001', '2026-01-01T00:00:00Z', 14 * 96 + 40, 100_000);
    await insertReadings(stack, 'MTR-000001', '2026-01-15T12:00:00Z', 1584, 100_000);
    // MTR-000002: nothing from 1 to 7 January (no history to estimate from), then 100 Wh.
    await insertReadings(stack, 'MTR-000002', '2026-01-08T00:00:00Z', 24 * 96, 100_000);
    // February complete for both.
    for (const id of ['MTR-000001', 'MTR-000002']) await insertReadings(stack, id, '2026-02-01T00:00:00Z', 28 * 96, 100_000);
    m1 = await connectDevice(stack.mqttUrl, 'MTR-000001', secrets['MTR-000001']);
    m2 = await connectDevice(stack.mqttUrl, 'MTR-000002', secrets['MTR-000002']);
  });
  afterAll(async () => {
    await Promise.all([m1, m2].filter(Boolean).map(endClient));
    await stack?.close();
  });

  it('estimates at close: linear across the 2-hour gap, nothing where there is no history; stored as estimated readings', async () => {
    const run = await billingRun(stack, '2026-02-05T00:00:00Z');
    expect(run.body).toMatchObject({ billsCreated: 1, failures: [] });
    januaryBill = (await stack.api('/v1/bills/ADJ.2026-01-01')).body;
    const [a, b] = januaryBill.meters;
    // Both neighbours are 100 Wh: the 8 estimates are 100 Wh. 2976 x 100 Wh = 297.6 kWh x 0.20 = 59.52;
    // + 31 x 0.50 + 10 = 85.02; tax 4.251 -> 4.25; total 89.27
    expect(a.coverage).toEqual({ expectedIntervals: 2976, actualIntervals: 2968, estimatedIntervals: 8, missingIntervals: 0 });
    expect(a.estimated).toEqual({ linear: 8, profile: 0 });
    expect(a).toMatchObject({ subtotal: '85.02', taxes: '4.25', total: '89.27', warnings: [] });
    // 2304 x 100 Wh = 230.4 kWh x 0.20 = 46.08; + 25.50 = 71.58; tax 3.579 -> 3.58; total 75.16
    expect(b.coverage).toEqual({ expectedIntervals: 2976, actualIntervals: 2304, estimatedIntervals: 0, missingIntervals: 672 });
    expect(b).toMatchObject({ subtotal: '71.58', taxes: '3.58', total: '75.16' });
    expect(b.warnings).toEqual([expect.objectContaining({ code: 'unestimated_gap', from: '2026-01-01T00:00:00Z', to: '2026-01-08T00:00:00Z' })]);
    expect(januaryBill).toMatchObject({ subtotal: '156.60', taxes: '7.83', total: '164.43', adjustments: [] });

    const estimates = await stack.pool.query(
      `SELECT interval_start, import_mwh, received_at FROM readings WHERE meter_id = 'MTR-000001' AND quality = 'estimated' ORDER BY interval_start`,
    );
    expect(estimates.rows.map((r) => [r.interval_start.toISOString(), r.import_mwh])).toEqual(
      Array.from({ length: 8 }, (_, k) => [new Date(Date.parse('2026-01-15T10:00:00Z') + k * Q).toISOString(), '100000']),
    );
    expect(estimates.rows[0].received_at.toISOString()).toBe(new Date(januaryBill.closedAt).toISOString());
  });

  it('an actual reading replaces its estimate; late readings leave the closed bill untouched', async () => {
    await publishAcked(m1, 'meters/MTR-000001/readings', JSON.stringify({ readings: slots('2026-01-15T10:00:00Z', 8, 250) }));
    await publishAcked(m2, 'meters/MTR-000002/readings', JSON.stringify({ readings: slots('2026-01-03T00:00:00Z', 96, 100) }));
    const replaced = await stack.pool.query(
      `SELECT quality, import_mwh FROM readings WHERE meter_id = 'MTR-000001' AND interval_start >= '2026-01-15T10:00:00Z' AND interval_start < '2026-01-15T12:00:00Z'`,
    );
    expect(replaced.rows).toHaveLength(8);
    expect(replaced.rows.every((r) => r.quality === 'actual' && r.import_mwh === '250000')).toBe(true);
    expect((await stack.api('/v1/bills/ADJ.2026-01-01')).body).toEqual(januaryBill);
  });

  it('the next bill carries one adjustment per meter: re-rated minus billed, naming the bill and period', async () => {
    const run = await billingRun(stack, '2026-03-05T00:00:00Z');
    expect(run.body).toMatchObject({ billsCreated: 1, failures: [] });
    const feb = (await stack.api('/v1/bills/ADJ.2026-02-01')).body;
    // February: 2688 x 100 Wh = 268.8 kWh x 0.20 = 53.76; + 28 x 0.50 + 10 = 77.76; tax 3.888 -> 3.89; total 81.65
    for (const m of feb.meters) expect(m).toMatchObject({ subtotal: '77.76', taxes: '3.89', total: '81.65' });
    // MTR-000001, January re-rated: 297.6 + 8 x 0.15 = 298.8 kWh -> 59.76; 85.26; tax 4.263 -> 4.26; 89.52 - 89.27 = 0.25
    // MTR-000002, January re-rated: 240 kWh -> 48.00; 73.50; tax 3.675 -> 3.68; 77.18 - 75.16 = 2.02
    expect(feb.adjustments).toEqual([
      {
        type: 'adjustment', meterId: 'MTR-000001', reason: 'late_data', correctsBillId: 'ADJ.2026-01-01',
        period: { from: '2026-01-01T00:00:00Z', to: '2026-02-01T00:00:00Z' },
        previouslyBilled: '89.27',
        rerated: { subtotal: '85.26', taxes: '4.26', total: '89.52', coverage: { expectedIntervals: 2976, actualIntervals: 2976, estimatedIntervals: 0, missingIntervals: 0 }, tariffVersions: [{ tariffId: 'flat-uk', version: 1, effectiveFrom: null }] },
        amount: '0.25',
      },
      {
        type: 'adjustment', meterId: 'MTR-000002', reason: 'late_data', correctsBillId: 'ADJ.2026-01-01',
        period: { from: '2026-01-01T00:00:00Z', to: '2026-02-01T00:00:00Z' },
        previouslyBilled: '75.16',
        rerated: { subtotal: '73.50', taxes: '3.68', total: '77.18', coverage: { expectedIntervals: 2976, actualIntervals: 2400, estimatedIntervals: 0, missingIntervals: 576 }, tariffVersions: [{ tariffId: 'flat-uk', version: 1, effectiveFrom: null }] },
        amount: '2.02',
      },
    ]);
    // 155.52 + 7.78 + 2.27 = 165.57
    expect(feb).toMatchObject({ subtotal: '155.52', taxes: '7.78', adjustmentsTotal: '2.27', total: '165.57' });
    const csv = await stack.api('/v1/bills/ADJ.2026-02-01/lines.csv');
    const adjustmentRows = (csv.body as string).split('\r\n').filter((r) => r.includes(',adjustment,'));
    expect(adjustmentRows).toEqual([
      'ADJ.2026-02-01,ADJ,2026-02-01T00:00:00Z,2026-03-01T00:00:00Z,MTR-000001,adjustment,late_data,,,,,,0.25,GBP,,ADJ.2026-01-01,2026-01-01T00:00:00Z,2026-02-01T00:00:00Z',
      'ADJ.2026-02-01,ADJ,2026-02-01T00:00:00Z,2026-03-01T00:00:00Z,MTR-000002,adjustment,late_data,,,,,,2.02,GBP,,ADJ.2026-01-01,2026-01-01T00:00:00Z,2026-02-01T00:00:00Z',
    ]);
    const rows = await stack.pool.query(`SELECT meter_id, previously_billed::text, rerated_total::text, amount::text FROM bill_adjustments WHERE bill_id = 'ADJ.2026-02-01' ORDER BY meter_id`);
    expect(rows.rows).toEqual([
      { meter_id: 'MTR-000001', previously_billed: '89.27', rerated_total: '89.52', amount: '0.25' },
      { meter_id: 'MTR-000002', previously_billed: '75.16', rerated_total: '77.18', amount: '2.02' },
    ]);
    expect((await stack.api('/v1/bills/ADJ.2026-01-01')).body).toEqual(januaryBill);
  });

  it('a second correction of the same period is measured against everything billed for it so far', async () => {
    await publishAcked(m2, 'meters/MTR-000002/readings', JSON.stringify({ readings: slots('2026-01-04T00:00:00Z', 96, 100) }));
    const run = await billingRun(stack, '2026-04-05T00:00:00Z');
    expect(run.body).toMatchObject({ billsCreated: 1, failures: [] });
    const march = (await stack.api('/v1/bills/ADJ.2026-03-01')).body;
    // MTR-000002, January: 249.6 kWh -> 49.92; 75.42; tax 3.771 -> 3.77; 79.19 - (75.16 + 2.02) = 2.01.
    // MTR-000001 was re-checked (its late readings came just before the February close) and has no change.
    expect(march.adjustments).toEqual([
      expect.objectContaining({ meterId: 'MTR-000002', correctsBillId: 'ADJ.2026-01-01', previouslyBilled: '77.18', amount: '2.01', rerated: expect.objectContaining({ total: '79.19' }) }),
    ]);
    expect(march.adjustmentsTotal).toBe('2.01');
    // March had no readings: estimated from February's actual readings on the same weekday (1 to 4 weeks back).
    expect(march.meters[0].estimated.profile).toBeGreaterThan(0);
    expect(lineOf(march.meters[0].lines, 'energy')).toHaveLength(1);
  });
});
