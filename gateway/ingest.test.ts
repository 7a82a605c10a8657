/**
 * Contract section 2 end to end: real broker over real sockets, real database, in both storage modes.
 * Every rule and every quarantine reason, duplicates, estimates, concentrators, device auth and topics.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { storageModes } from '../test/support/database.js';
import { provisionFleet, startTestStack, type TestStack } from '../test/support/stack.js';
import { connectDevice, connectRefused, endClient, publishAcked, reading, slot } from '../test/support/mqtt.js';

const BASE = '2026-03-08T00:00:00Z';

describe.each(storageModes())('ingestion over MQTT (%s storage)', (mode) => {
  let stack: TestStack;
  let secrets: Record<string, string>;
  let meter: MqttClient;
  let dcu: MqttClient;

  beforeAll(async () => {
    // 10,000 readings do not fit in the default 256 KiB: this suite allows 2 MiB per payload.
    stack = await startTestStack(mode, { MAX_PAYLOAD_BYTES: String(2 * 1024 * 1024) });
    ({ secrets } = await provisionFleet(stack, { meters: 3, maxPowerKw: 10, concentratorId: 'DCU-1' }));
    // MTR-000003 is not assigned to DCU-1.
    const put = await stack.api('/v1/concentrators/DCU-1/meters', { method: 'PUT', body: { meterIds: ['MTR-000001', 'MTR-000002'] } });
    expect(put.status).toBe(200);
    meter = await connectDevice(stack.mqttUrl, 'MTR-000001', secrets['MTR-000001']);
    dcu = await connectDevice(stack.mqttUrl, 'DCU-1', secrets['DCU-1']);
  });

  afterAll(async () => {
    await Promise.all([meter, dcu].filter(Boolean).map(endClient));
    await stack?.close();
  });

  const rows = async (meterId: string) =>
    (await stack.pool.query('SELECT interval_start, import_mwh, export_mwh, quality FROM readings WHERE meter_id = $1 ORDER BY interval_start', [meterId])).rows;
  const quarantine = async (reason: string) =>
    (await stack.pool.query('SELECT * FROM quarantine WHERE reason = $1 ORDER BY id', [reason])).rows;

  it('stores a single reading from a meter exactly (decimal Wh as integer mWh) before the PUBACK', async () => {
    await publishAcked(meter, 'meters/MTR-000001/readings', JSON.stringify(reading(slot(BASE, 0), 250.5, { exportWh: 0.125 })));
    const r = await rows('MTR-000001');
    expect(r).toHaveLength(1);
    expect(r[0].import_mwh).toBe('250500');
    expect(r[0].export_mwh).toBe('125');
    expect(r[0].quality).toBe('actual');
    expect(r[0].interval_start.toISOString()).toBe('2026-03-08T00:00:00.000Z');
  });

  it('accepts a {"readings": [...]} batch and instants with offsets', async () => {
    const payload = { readings: [reading('2026-03-08T01:15:00+01:00', 1), reading(slot(BASE, 2), 2.001), { ...reading(slot(BASE, 3), 3), meterId: 'MTR-000001' }] };
    await publishAcked(meter, 'meters/MTR-000001/readings', JSON.stringify(payload));
    const r = await rows('MTR-000001');
    expect(r.map((x) => x.import_mwh)).toEqual(['250500', '1000', '2001', '3000']);
  });

  it('drops an identical duplicate and quarantines a conflicting one, keeping the stored value', async () => {
    const before = Number((await stack.metrics.readingsDuplicate.get()).values[0]?.value ?? 0);
    await publishAcked(meter, 'meters/MTR-000001/readings', JSON.stringify(reading(slot(BASE, 0), 250.5, { exportWh: 0.125 })));
    await publishAcked(meter, 'meters/MTR-000001/readings', JSON.stringify(reading(slot(BASE, 0), 999)));
    const after = Number((await stack.metrics.readingsDuplicate.get()).values[0]?.value ?? 0);
    expect(after - before).toBe(1);
    expect((await rows('MTR-000001'))[0].import_mwh).toBe('250500');
    const q = await quarantine('conflicting_duplicate');
    expect(q).toHaveLength(1);
    expect(q[0].device_id).toBe('MTR-000001');
    expect(JSON.parse(q[0].raw.toString()).importWh).toBe(999);
  });

  it('lets an actual reading replace a stored estimate, never the reverse', async () => {
    await publishAcked(meter, 'meters/MTR-000001/readings', JSON.stringify(reading(slot(BASE, 10), 5, { quality: 'estimated' })));
    await publishAcked(meter, 'meters/MTR-000001/readings', JSON.stringify(reading(slot(BASE, 10), 7)));
    await publishAcked(meter, 'meters/MTR-000001/readings', JSON.stringify(reading(slot(BASE, 10), 9, { quality: 'estimated' })));
    const r = (await rows('MTR-000001')).find((x) => x.interval_start.toISOString() === new Date(slot(BASE, 10)).toISOString());
    expect(r).toMatchObject({ import_mwh: '7000', quality: 'actual' });
    expect((await quarantine('conflicting_duplicate')).some((q) => JSON.parse(q.raw.toString()).importWh === 9)).toBe(true);
  });

  it('stores the valid readings of a message and quarantines each invalid one with its reason', async () => {
    const future = new Date(Date.now() + 2 * 3600_000);
    future.setUTCMinutes(0, 0, 0);
    const payload = {
      readings: [
        reading(slot(BASE, 20), 1), // valid
        reading('2026-03-08T05:07:00Z', 1), // misaligned
        { ...reading(slot(BASE, 21), 1), intervalSeconds: 1800 }, // interval_mismatch (meter is 900)
        reading(slot(BASE, 22), 10_000), // implausible: 10 kWh in 15 min = 40 kW > 10 kW
        reading(future.toISOString(), 1), // future
        reading('2026-03-08T06:00:00', 1), // schema: no offset
        reading(slot(BASE, 23), -1), // schema: negative
        reading(slot(BASE, 24), 1.2345), // schema: 4 decimals
        { ...reading(slot(BASE, 25), 1), meterId: 'MTR-000002' }, // schema: another meter on this topic
        { ...reading(slot(BASE, 26), 1), extra: true }, // schema: unknown field
        reading(slot(BASE, 27), 2), // valid
      ],
    };
    await publishAcked(meter, 'meters/MTR-000001/readings', JSON.stringify(payload));
    const stored = (await rows('MTR-000001')).map((x) => x.interval_start.toISOString());
    expect(stored).toContain(new Date(slot(BASE, 20)).toISOString());
    expect(stored).toContain(new Date(slot(BASE, 27)).toISOString());
    for (const reason of ['misaligned', 'interval_mismatch', 'implausible', 'future']) {
      expect((await quarantine(reason)).length, reason).toBeGreaterThanOrEqual(1);
    }
    const schema = await quarantine('schema');
    expect(schema.length).toBeGreaterThanOrEqual(5);
    expect(schema.map((q) => q.detail).join('\n')).toMatch(/offset/);
    expect(schema.map((q) => q.detail).join('\n')).toMatch(/3 decimal/);
    expect(schema.map((q) => q.detail).join('\n')).toMatch(/differs from the topic/);
  });

  it('takes concentrator batches for assigned meters and quarantines unknown and unassigned ones', async () => {
    const payload = {
      readings: [
        { ...reading(slot(BASE, 40), 11), meterId: 'MTR-000002' },
        { ...reading(slot(BASE, 41), 12), meterId: 'MTR-000002' },
        { ...reading(slot(BASE, 40), 13), meterId: 'MTR-000003' }, // not assigned to DCU-1
        { ...reading(slot(BASE, 40), 14), meterId: 'MTR-999999' }, // unknown
        reading(slot(BASE, 42), 15), // no meterId on a concentrator topic
      ],
    };
    await publishAcked(dcu, 'concentrators/DCU-1/readings', JSON.stringify(payload));
    expect((await rows('MTR-000002')).map((r) => r.import_mwh)).toEqual(['11000', '12000']);
    expect(await rows('MTR-000003')).toHaveLength(0);
    expect((await quarantine('not_assigned')).map((q) => q.meter_id)).toContain('MTR-000003');
    expect((await quarantine('unknown_meter')).map((q) => q.meter_id)).toContain('MTR-999999');
    expect((await quarantine('schema')).some((q) => q.device_id === 'DCU-1' && /meterId/.test(q.detail))).toBe(true);
  });

  it('quarantines whole messages that are not JSON, not an object, or too large, with evidence', async () => {
    await publishAcked(meter, 'meters/MTR-000001/readings', '{"intervalStart": ');
    await publishAcked(meter, 'meters/MTR-000001/readings', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]));
    await publishAcked(meter, 'meters/MTR-000001/readings', '[1,2,3]');
    const big = Buffer.alloc(2 * 1024 * 1024 + 1, 0x20);
    await publishAcked(meter, 'meters/MTR-000001/readings', big);
    const invalid = await quarantine('invalid_json');
    expect(invalid.map((q) => q.raw.toString('latin1'))).toContain('{"intervalStart": ');
    expect(invalid.some((q) => /UTF-8/.test(q.detail))).toBe(true);
    expect((await quarantine('schema')).some((q) => q.raw.toString() === '[1,2,3]')).toBe(true);
    const large = await quarantine('payload_too_large');
    expect(large).toHaveLength(1);
    expect(large[0]).toMatchObject({ raw_size: big.length, raw_truncated: true });
    expect(large[0].raw.length).toBeLessThan(big.length);
  });

  it('stores a 10,000-reading concentrator message in one PUBACK', async () => {
    const readings = Array.from({ length: 10_000 }, (_, k) => ({ ...reading(slot('2025-01-01T00:00:00Z', k), (k % 500) / 4), meterId: 'MTR-000002' }));
    await publishAcked(dcu, 'concentrators/DCU-1/readings', JSON.stringify({ readings }));
    const res = await stack.pool.query(`SELECT count(*)::int AS n, sum(import_mwh)::text AS s FROM readings WHERE meter_id = 'MTR-000002' AND interval_start >= '2025-01-01' AND interval_start < '2025-12-01'`);
    const expected = readings.reduce((s, r) => s + Math.round(r.importWh * 1000), 0);
    expect(res.rows[0]).toEqual({ n: 10_000, s: String(expected) });
    const tooMany = { readings: [...readings, readings[0]] };
    await publishAcked(dcu, 'concentrators/DCU-1/readings', JSON.stringify(tooMany));
    expect((await quarantine('schema')).some((q) => /10000/.test(q.detail))).toBe(true);
  });

  it('refuses unknown devices and wrong secrets at CONNECT', async () => {
    const unknown = await connectRefused(stack.mqttUrl, 'NOPE-1', 'whatever-secret');
    expect(unknown.code).toBe(4);
    const wrong = await connectRefused(stack.mqttUrl, 'MTR-000002', 'not-the-secret');
    expect(wrong.code).toBe(4);
    const noPassword = await connectRefused(stack.mqttUrl, 'MTR-000002', '');
    expect(noPassword.code).toBe(4);
  });

  it("disconnects a device that publishes on another device's topic, and stores nothing", async () => {
    const intruder = await connectDevice(stack.mqttUrl, 'MTR-000003', secrets['MTR-000003']);
    const closed = new Promise<void>((r) => intruder.once('close', () => r()));
    intruder.publish('meters/MTR-000001/readings', JSON.stringify(reading(slot(BASE, 60), 1)), { qos: 1 });
    await closed;
    intruder.end(true);
    expect((await rows('MTR-000001')).some((r) => r.interval_start.toISOString() === new Date(slot(BASE, 60)).toISOString())).toBe(false);
  });

  it('refuses subscriptions outside the device tree (SUBACK 0x80) and grants its own', async () => {
    const granted = await meter.subscribeAsync('meters/MTR-000001/#', { qos: 1 });
    expect(granted[0].qos).toBe(1);
    // mqtt.js turns a SUBACK return code 0x80 into an error that carries the packet.
    const refusedCode = async (filter: string) =>
      meter.subscribeAsync(filter, { qos: 1 }).then(
        () => 'granted',
        (err: { packet?: { granted?: number[] } }) => err.packet?.granted?.[0],
      );
    expect(await refusedCode('meters/+/readings')).toBe(128);
    expect(await refusedCode('concentrators/DCU-1/#')).toBe(128);
    expect(meter.connected).toBe(true);
  });

  it('a rotated secret takes effect at once', async () => {
    const res = await stack.api('/v1/devices/MTR-000002/secret', { method: 'PUT', body: {} });
    expect(res.status).toBe(200);
    // The notification reaches the gateway asynchronously; allow it a moment.
    await new Promise((r) => setTimeout(r, 300));
    expect((await connectRefused(stack.mqttUrl, 'MTR-000002', secrets['MTR-000002'])).code).toBe(4);
    const c = await connectDevice(stack.mqttUrl, 'MTR-000002', res.body.mqttPassword);
    await endClient(c);
  });
});
