/**
 * The delivery guarantee (contract section 2): a QoS 1 PUBACK only after commit; a database outage
 * delays acknowledgements but loses and duplicates nothing, and ingestion resumes without a human.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import type { MqttClient } from 'mqtt';
import { createDatabase, databaseUrl, adminUrl, storageModes } from '../test/support/database.js';
import { provisionFleet, startTestStack, type TestStack } from '../test/support/stack.js';
import { connectDevice, endClient, publishAcked, reading, slot } from '../test/support/mqtt.js';
import { startTcpProxy, type TcpProxy } from '../test/support/tcp-proxy.js';
import { migrate } from '../common/migrate.js';
import { createLogger } from '../common/logger.js';
import { COMMIT_OUTAGE_UNHEALTHY_MS } from './ingestion/batcher.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(storageModes())('acknowledge after commit (%s storage)', (mode) => {
  let stack: TestStack;
  let meter: MqttClient;

  beforeAll(async () => {
    stack = await startTestStack(mode);
    const { secrets } = await provisionFleet(stack, { meters: 1 });
    meter = await connectDevice(stack.mqttUrl, 'MTR-000001', secrets['MTR-000001']);
  });
  afterAll(async () => {
    if (meter) await endClient(meter);
    await stack?.close();
  });

  it('sends no PUBACK while the readings table is locked, and sends it once the row is committed', async () => {
    const locker = new pg.Client({ connectionString: stack.databaseUrl });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE readings IN ACCESS EXCLUSIVE MODE');
    let acked = false;
    const publish = publishAcked(meter, 'meters/MTR-000001/readings', JSON.stringify(reading('2026-02-01T10:00:00Z', 42))).then(() => {
      acked = true;
    });
    await sleep(1500);
    expect(acked).toBe(false);
    await locker.query('COMMIT');
    await locker.end();
    await publish;
    expect(acked).toBe(true);
    const rows = await stack.pool.query(`SELECT import_mwh FROM readings WHERE meter_id = 'MTR-000001' AND interval_start = '2026-02-01T10:00:00Z'`);
    expect(rows.rows).toEqual([{ import_mwh: '42000' }]);
  });
});

describe.each(storageModes())('database outage in the middle of a stream (%s storage)', (mode) => {
  let proxy: TcpProxy;
  let stack: TestStack;
  let drop: () => Promise<void>;
  const METERS = 8;
  const MESSAGES = 40;
  const PER_MESSAGE = 10;

  beforeAll(async () => {
    const db = await createDatabase(`outage_${mode}`);
    drop = db.drop;
    await migrate({ databaseUrl: db.url, storage: mode, log: createLogger('silent') });
    const target = new URL(adminUrl());
    proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
    const viaProxy = new URL(databaseUrl(db.name));
    viaProxy.port = String(proxy.port);
    viaProxy.hostname = '127.0.0.1';
    stack = await startTestStack(mode, {}, viaProxy.toString());
  });
  afterAll(async () => {
    await stack?.close();
    await proxy?.close();
    await drop?.();
  });

  it('acknowledges nothing uncommitted, does not crash, and recovers by itself with every reading stored once', async () => {
    const { secrets, meterIds } = await provisionFleet(stack, { meters: METERS });
    const clients = await Promise.all(meterIds.map((id) => connectDevice(stack.mqttUrl, id, secrets[id], { reconnectPeriod: 200 })));
    const ackTimes: number[] = [];
    let cutAt = 0;
    let restoredAt = 0;
    const streams = clients.map(async (client, m) => {
      for (let k = 0; k < MESSAGES; k++) {
        const readings = Array.from({ length: PER_MESSAGE }, (_, j) => reading(slot('2026-01-01T00:00:00Z', k * PER_MESSAGE + j), m + k + j / 8));
        await publishAcked(client, `meters/${meterIds[m]}/readings`, JSON.stringify({ readings }));
        ackTimes.push(Date.now());
        await sleep(10);
      }
    });
    // Cut once the stream is flowing (some messages acknowledged), however loaded the machine.
    for (const deadline = Date.now() + 10_000; ackTimes.length < METERS && Date.now() < deadline; ) await sleep(10);
    cutAt = Date.now();
    proxy.cut();
    await sleep(2500);
    // The batcher knows commits are failing for an outage (readiness turns it down after COMMIT_OUTAGE_UNHEALTHY_MS).
    const during = stack.gateway!.commitHealth();
    expect(during.outageSince).not.toBeNull();
    expect(stack.gateway!.commitHealth(during.outageSince! + COMMIT_OUTAGE_UNHEALTHY_MS).healthy).toBe(false);
    restoredAt = Date.now();
    proxy.restore();
    await Promise.all(streams);
    await Promise.all(clients.map(endClient));

    // A commit that finished just before the cut may be acknowledged a moment after it.
    const duringOutage = ackTimes.filter((t) => t > cutAt + 250 && t < restoredAt);
    expect(duringOutage).toEqual([]);
    // The stream really spanned the outage.
    // (<=: the acknowledgements that ended the wait may carry the same millisecond as the cut.)
    expect(ackTimes.filter((t) => t <= cutAt).length).toBeGreaterThan(0);
    expect(ackTimes.filter((t) => t >= restoredAt).length).toBeGreaterThan(0);
    expect(ackTimes.length).toBe(METERS * MESSAGES);
    const res = await stack.pool.query('SELECT meter_id, count(*)::int AS n, sum(import_mwh)::text AS s FROM readings GROUP BY meter_id ORDER BY meter_id');
    const expected = meterIds.map((id, m) => {
      let sum = 0;
      for (let k = 0; k < MESSAGES; k++) for (let j = 0; j < PER_MESSAGE; j++) sum += Math.round((m + k + j / 8) * 1000);
      return { meter_id: id, n: MESSAGES * PER_MESSAGE, s: String(sum) };
    });
    expect(res.rows).toEqual(expected);
    const conflicts = await stack.pool.query(`SELECT count(*)::int AS n FROM quarantine`);
    expect(conflicts.rows[0].n).toBe(0);
    expect(stack.gateway!.listening).toBe(true);
    expect(stack.gateway!.commitHealth()).toMatchObject({ healthy: true, outageSince: null });
  });
});
