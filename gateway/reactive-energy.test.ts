/**
 * Reactive energy end to end (CONTRACT section 2 extension, see gateway/README.md): readings with
 * `reactiveImportVarh` / `reactiveExportVarh` over MQTT, stored exactly (absent stays "not measured", 0
 * stays 0), invalid values quarantined as `schema`, a resend that adds reactive values, the readings API,
 * and the charges of a tariff with a reactive power charge for a meter with and without reactive data.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { storageModes } from '../test/support/database.js';
import { connectDevice, endClient, publishAcked, reading, slot } from '../test/support/mqtt.js';
import { provisionFleet, startTestStack, type TestStack } from '../test/support/stack.js';

const BASE = '2026-03-10T00:00:00Z';

/** 0.1 $/kWh energy and 0.5 $/kVAR of the window's highest reactive demand. */
const reactiveTariff = {
  id: 'reactive-flat',
  name: 'Flat with a reactive power charge',
  currency: { code: 'USD', minorUnit: 2 },
  timeZone: 'Europe/London',
  seasons: [{ id: 'all', fromMonth: 1, toMonth: 12 }],
  energy: {
    periods: [{ id: 'any', tiers: [{ rate: '0.1' }] }],
    schedule: [{ seasons: ['all'], dayTypes: ['weekday', 'weekend', 'holiday'], periods: [{ from: '00:00', period: 'any' }] }],
  },
  demand: { reactive: { rate: '0.5' } },
};

describe.each(storageModes())('reactive energy (%s storage)', (mode) => {
  let stack: TestStack;
  let secrets: Record<string, string>;
  let meter1: MqttClient;
  let meter2: MqttClient;

  beforeAll(async () => {
    stack = await startTestStack(mode);
    ({ secrets } = await provisionFleet(stack, { meters: 2 }));
    meter1 = await connectDevice(stack.mqttUrl, 'MTR-000001', secrets['MTR-000001']);
    meter2 = await connectDevice(stack.mqttUrl, 'MTR-000002', secrets['MTR-000002']);
  });
  afterAll(async () => {
    await Promise.all([meter1, meter2].filter(Boolean).map(endClient));
    await stack?.close();
  });

  const rows = async (meterId: string) =>
    (
      await stack.pool.query(
        `SELECT import_mwh::text AS imp, reactive_import_mvarh::text AS ri, reactive_export_mvarh::text AS re
         FROM readings WHERE meter_id = $1 ORDER BY interval_start`,
        [meterId],
      )
    ).rows;
  const quarantined = async (reason: string) => (await stack.pool.query('SELECT detail, raw FROM quarantine WHERE reason = $1 ORDER BY id', [reason])).rows;

  it('stores reactive energy exactly; absent is not measured (NULL), 0 is 0', async () => {
    const payload = {
      readings: [
        reading(slot(BASE, 0), 1000, { reactiveImportVarh: 2500, reactiveExportVarh: 0.125 }),
        reading(slot(BASE, 1), 1000, { reactiveImportVarh: 3000 }),
        reading(slot(BASE, 2), 1000, { reactiveImportVarh: 0, reactiveExportVarh: 0 }),
        reading(slot(BASE, 3), 1000),
      ],
    };
    await publishAcked(meter1, 'meters/MTR-000001/readings', JSON.stringify(payload));
    expect(await rows('MTR-000001')).toEqual([
      { imp: '1000000', ri: '2500000', re: '125' },
      { imp: '1000000', ri: '3000000', re: null },
      { imp: '1000000', ri: '0', re: '0' },
      { imp: '1000000', ri: null, re: null },
    ]);
  });

  it('quarantines invalid reactive values as schema, naming the field, and stores the valid readings beside them', async () => {
    const payload = {
      readings: [
        reading(slot(BASE, 10), 1, { reactiveImportVarh: -1 }),
        reading(slot(BASE, 11), 1, { reactiveExportVarh: 1.0001 }),
        reading(slot(BASE, 12), 1, { reactiveImportVarh: '5' }),
        reading(slot(BASE, 13), 1, { reactiveImportVarh: 7.5 }),
      ],
    };
    await publishAcked(meter2, 'meters/MTR-000002/readings', JSON.stringify(payload));
    const schema = await quarantined('schema');
    expect(schema.map((q) => q.detail.split(':')[0])).toEqual(['reactiveImportVarh', 'reactiveExportVarh', 'reactiveImportVarh']);
    expect(schema[0].detail).toMatch(/>= 0/);
    expect(schema[1].detail).toMatch(/3 decimal/);
    expect(await rows('MTR-000002')).toEqual([{ imp: '1000', ri: '7500', re: null }]);
    await stack.pool.query(`DELETE FROM readings WHERE meter_id = 'MTR-000002'`);
  });

  it('a resend with the same energy that adds reactive values fills them in; differing reactive values are a conflicting duplicate', async () => {
    await publishAcked(meter1, 'meters/MTR-000001/readings', JSON.stringify(reading(slot(BASE, 3), 1000, { reactiveImportVarh: 1000.5 })));
    expect((await rows('MTR-000001'))[3]).toEqual({ imp: '1000000', ri: '1000500', re: null });
    // Without reactive values: a duplicate (nothing stored is lost); with other values: conflicting.
    await publishAcked(meter1, 'meters/MTR-000001/readings', JSON.stringify(reading(slot(BASE, 3), 1000)));
    await publishAcked(meter1, 'meters/MTR-000001/readings', JSON.stringify(reading(slot(BASE, 1), 1000, { reactiveImportVarh: 3001 })));
    expect((await rows('MTR-000001')).map((r) => r.ri)).toEqual(['2500000', '3000000', '0', '1000500']);
    const conflicting = await quarantined('conflicting_duplicate');
    expect(conflicting).toHaveLength(1);
    expect(JSON.parse(conflicting[0].raw).reactiveImportVarh).toBe(3001);
  });

  it('lists reactive energy on the readings API only where measured', async () => {
    const res = await stack.api('/v1/meters/MTR-000001/readings?from=2026-03-10T00:00:00Z&to=2026-03-10T01:00:00Z');
    expect(res.status).toBe(200);
    expect(res.body.items.map((i: Record<string, unknown>) => [i.reactiveImportVarh, i.reactiveExportVarh])).toEqual([
      ['2500', '0.125'],
      ['3000', undefined],
      ['0', '0'],
      ['1000.5', undefined],
    ]);
  });

  it('bills the reactive power charge for the meter that measures it and says so for the one that does not', async () => {
    expect((await stack.api('/v1/tariffs', { body: reactiveTariff })).status).toBe(201);
    for (const id of ['MTR-000001', 'MTR-000002'])
      expect((await stack.api(`/v1/meters/${id}/tariff`, { method: 'PUT', body: { tariffId: 'reactive-flat', effectiveFrom: '2026-01-01T00:00:00Z' } })).status).toBe(200);
    await publishAcked(meter2, 'meters/MTR-000002/readings', JSON.stringify({ readings: [0, 1, 2, 3].map((k) => reading(slot(BASE, k), 1000)) }));

    // 3000 varh in 15 minutes = 12 kVAR, the highest of 10, 12, 0 and 4.002; x 0.5 = 6.00. Energy 4 kWh x 0.1 = 0.40.
    const measured = await stack.api('/v1/meters/MTR-000001/charges?from=2026-03-10T00:00:00Z&to=2026-03-10T01:00:00Z');
    expect(measured.status).toBe(200);
    expect(measured.body.lines).toEqual([
      { type: 'energy', period: 'any', tier: 1, quantity: '4', unit: 'kWh', rate: '0.1', amount: '0.40', tariffId: 'reactive-flat' },
      { type: 'demand', period: 'reactive', tier: 1, quantity: '12', unit: 'kVAR', rate: '0.5', amount: '6.00', tariffId: 'reactive-flat' },
    ]);
    expect(measured.body.total).toBe('6.40');
    expect(measured.body.notes).toBeUndefined();

    const unmeasured = await stack.api('/v1/meters/MTR-000002/charges?from=2026-03-10T00:00:00Z&to=2026-03-10T01:00:00Z');
    expect(unmeasured.status).toBe(200);
    expect(unmeasured.body.lines.map((l: { type: string; period?: string }) => `${l.type}/${l.period}`)).toEqual(['energy/any']);
    expect(unmeasured.body.total).toBe('0.40');
    expect(unmeasured.body.notes).toEqual(['reactive_data_missing: 4 of 4 intervals without reactive energy; reactive-flat: reactive power charge not billed']);
  });

  it("carries reactive energy into the open cycle's running charges, including a resend that completes a reading", async () => {
    const running = async () => {
      const res = await stack.api('/v1/accounts/ACC-1/charges');
      expect(res.status).toBe(200);
      return res.body.meters.find((m: { meterId: string }) => m.meterId === 'MTR-000001');
    };
    await running(); // the meter's open cycle is loaded; what follows arrives through the gateway's hook
    const now = Date.now();
    const [a, b] = [2, 1].map((k) => new Date((Math.floor(now / 900_000) - k) * 900_000).toISOString());
    await publishAcked(meter1, 'meters/MTR-000001/readings', JSON.stringify({ readings: [reading(a, 500, { reactiveImportVarh: 2000 }), reading(b, 500)] }));
    const partly = await running();
    // 2000 varh in 15 minutes = 8 kVAR x 0.5 = 4.00.
    expect(partly.lines.filter((l: { period?: string }) => l.period === 'reactive')).toMatchObject([{ quantity: '8', unit: 'kVAR', amount: '4.00' }]);
    expect(partly.notes).toContain('reactive_data_missing: 1 of 2 intervals without reactive energy; reactive-flat: reactive power charge measured on the other 1');
    await publishAcked(meter1, 'meters/MTR-000001/readings', JSON.stringify(reading(b, 500, { reactiveImportVarh: 3000 })));
    const complete = await running();
    expect(complete.lines.filter((l: { period?: string }) => l.period === 'reactive')).toMatchObject([{ quantity: '12', amount: '6.00' }]);
    expect(complete.notes ?? []).not.toContainEqual(expect.stringMatching(/^reactive_data_missing/));
  });
});
