/**
 * Attacks on the gateway through its public interface (MQTT over real sockets, mqtt.js and hand-written
 * packets), each shown not to work while legitimate devices keep being served:
 * - a meter whose readings the database refuses cannot stall ingestion: its readings are quarantined as
 *   `commit_rejected`, everyone else's are committed and acknowledged, readiness says when nothing commits;
 * - ids spelled NULL stay strings: a concentrator named NULL cannot store for another account's meter, a
 *   meter named null stores its readings;
 * - a client id is bound to its device: another device cannot take over or disconnect a session;
 * - NUL bytes, control characters and invalid UTF-8 in usernames and client ids are clean refusals;
 * - log lines keep a bounded prefix of anything a client sent.
 */
import { connect as netConnect } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MqttClient } from 'mqtt';
import { createDatabase, storageModes } from '../test/support/database.js';
import { TEST_ADMIN_TOKEN, provisionFleet, type TestStack } from '../test/support/stack.js';
import { connectDevice, endClient, publishAcked, reading, slot } from '../test/support/mqtt.js';
import { loadConfig } from '../common/config.js';
import { createLogger } from '../common/logger.js';
import { hashSecret } from '../common/secrets.js';
import { startStack } from '../test/support/stack.js';
import { LOGGED_TEXT_CHARS } from './client-text.js';

const BASE = '2026-02-01T00:00:00Z';

/** The real stack with its log lines captured (debug level), so a test can read what reached the log. */
async function startCapturedStack(mode: 'plain' | 'timescaledb'): Promise<TestStack & { lines: string[] }> {
  const db = await createDatabase(`hostile_${mode}`);
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  const config = loadConfig({
    DATABASE_URL: db.url, READINGS_STORAGE: mode, MQTT_PORT: '0', MQTT_WS_PORT: '0', API_PORT: '0', MQTT_HOST: '127.0.0.1',
    API_HOST: '127.0.0.1', BILLING_ADMIN_TOKEN: TEST_ADMIN_TOKEN, LOG_LEVEL: 'debug', BILLING_CRON: 'off',
  });
  const stack = await startStack({ config, log: createLogger('debug', 'test', sink), components: { gateway: true, api: true } });
  const apiUrl = `http://127.0.0.1:${stack.ports.api}`;
  return {
    ...stack,
    lines,
    mqttUrl: `mqtt://127.0.0.1:${stack.ports.mqtt}`,
    apiUrl,
    async api(path, init = {}) {
      const res = await fetch(apiUrl + path, {
        method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
        headers: { authorization: `Bearer ${init.token ?? TEST_ADMIN_TOKEN}`, ...(init.body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
      });
      const text = await res.text();
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        /* not JSON */
      }
      return { status: res.status, body };
    },
    async close() {
      await stack.stop();
      await db.drop();
    },
  };
}

/**
 * Provisions a device through the API. Provisioning may refuse ids that a tool could misread (NULL ...):
 * the gateway must still be safe with such rows (devices provisioned before that rule), so a refused id
 * is inserted as such a row, with a secret of ours.
 */
async function provisionDevice(stack: TestStack, kind: 'meter' | 'concentrator', id: string, extra: Record<string, unknown>): Promise<string> {
  const res = await stack.api(kind === 'meter' ? '/v1/meters' : '/v1/concentrators', { body: { id, ...extra } });
  if (res.status === 201) return res.body.mqttPassword;
  expect(res.status).toBe(400);
  const secret = `row-from-before-${id}-0123456789`;
  await stack.pool.query(`INSERT INTO devices (id, kind, secret_hash) VALUES ($1, $2, $3)`, [id, kind, await hashSecret(secret, 1024)]);
  if (kind === 'meter') {
    await stack.pool.query(`INSERT INTO meters (id, account_id, timezone, interval_seconds) VALUES ($1, $2, 'Europe/London', 900)`, [id, extra.accountId]);
  } else {
    await stack.pool.query(`INSERT INTO concentrators (id) VALUES ($1)`, [id]);
  }
  return secret;
}

const count = async (stack: TestStack, sql: string, params: unknown[] = []) => Number((await stack.pool.query(sql, params)).rows[0].count);

/** Sum of a counter over all its label sets, and the value of one label set. */
async function counter(stack: TestStack, name: 'ingestCommitFailures' | 'mqttRefused', labels?: Record<string, string>): Promise<number> {
  const values = (await stack.metrics[name].get()).values;
  return values
    .filter((v) => !labels || Object.entries(labels).every(([k, l]) => (v.labels as Record<string, unknown>)[k] === l))
    .reduce((s, v) => s + v.value, 0);
}

describe.each(storageModes())('storage attacks (%s storage)', (mode) => {
  let stack: TestStack & { lines: string[] };
  let secrets: Record<string, string>;

  beforeAll(async () => {
    stack = await startCapturedStack(mode);
    ({ secrets } = await provisionFleet(stack, { meters: 3, concentratorId: 'DCU-1' }));
    // A refusal in the data, made for this test in its own database: every reading of MTR-000003 raises
    // (and every reading at all while test_refuse_all has a row).
    await stack.pool.query(`CREATE TABLE test_refuse_all (on_ boolean)`);
    // The table readings are written to: `readings` itself, or the table behind a `readings` view.
    const isView = (await stack.pool.query(`SELECT relkind FROM pg_class WHERE oid = 'readings'::regclass`)).rows[0].relkind === 'v';
    const table = isView ? 'meter_readings' : 'readings';
    await stack.pool.query(`CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
      DECLARE
        v_meter text := coalesce(to_jsonb(NEW) ->> 'meter_id', (SELECT id FROM meters WHERE key = (to_jsonb(NEW) ->> 'meter_key')::int));
      BEGIN
        IF v_meter = 'MTR-000003' OR EXISTS (SELECT 1 FROM test_refuse_all) THEN
          RAISE EXCEPTION 'refusing meter %', v_meter;
        END IF;
        RETURN NEW;
      END $$`);
    await stack.pool.query(`CREATE TRIGGER test_refuse BEFORE INSERT ON ${table} FOR EACH ROW EXECUTE FUNCTION test_refuse()`);
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('one meter whose readings the database refuses stalls no one: its readings are quarantined, the others acknowledged and stored', async () => {
    const failuresBefore = await counter(stack, 'ingestCommitFailures');
    const bad = await connectDevice(stack.mqttUrl, 'MTR-000003', secrets['MTR-000003']);
    const good = await connectDevice(stack.mqttUrl, 'MTR-000001', secrets['MTR-000001']);
    const dcu = await connectDevice(stack.mqttUrl, 'DCU-1', secrets['DCU-1']);
    try {
      const MESSAGES = 20;
      // Many messages of the refused meter at once (enough to fill every commit slot), with the others'.
      await Promise.all([
        ...Array.from({ length: MESSAGES }, (_, k) => publishAcked(bad, 'meters/MTR-000003/readings', JSON.stringify(reading(slot(BASE, k), 1)))),
        ...Array.from({ length: MESSAGES }, (_, k) => publishAcked(good, 'meters/MTR-000001/readings', JSON.stringify(reading(slot(BASE, k), 2)))),
        // One concentrator message mixing both: the good readings in it are stored.
        publishAcked(dcu, 'concentrators/DCU-1/readings', JSON.stringify({
          readings: ['MTR-000001', 'MTR-000002', 'MTR-000003'].map((meterId) => ({ meterId, ...reading(slot(BASE, 1000), 3) })),
        })),
      ]);
      expect(await count(stack, `SELECT count(*) FROM readings WHERE meter_id = 'MTR-000001'`)).toBe(MESSAGES + 1);
      expect(await count(stack, `SELECT count(*) FROM readings WHERE meter_id = 'MTR-000002'`)).toBe(1);
      expect(await count(stack, `SELECT count(*) FROM readings WHERE meter_id = 'MTR-000003'`)).toBe(0);
      const rejected = (await stack.pool.query(`SELECT device_id, meter_id, detail, convert_from(raw, 'UTF8') AS raw FROM quarantine WHERE reason = 'commit_rejected' ORDER BY id`)).rows;
      expect(rejected).toHaveLength(MESSAGES + 1);
      expect(rejected.every((q) => q.meter_id === 'MTR-000003')).toBe(true);
      expect(rejected[0].detail).toContain('refusing meter MTR-000003');
      expect(rejected[0].detail).toContain('P0001');
      expect(JSON.parse(rejected[0].raw).intervalSeconds).toBe(900); // the reading itself is the evidence
      expect(new Set(rejected.map((q) => q.device_id))).toEqual(new Set(['MTR-000003', 'DCU-1']));
      // Counted by kind: these were refusals of the data, not outages.
      expect(await counter(stack, 'ingestCommitFailures')).toBeGreaterThan(failuresBefore);
      const labelled = (await stack.metrics.ingestCommitFailures.get()).values.some((v) => 'kind' in v.labels);
      if (labelled) expect(await counter(stack, 'ingestCommitFailures', { kind: 'outage' })).toBe(0);
      // Still serving, and ready: commits go through.
      await publishAcked(good, 'meters/MTR-000001/readings', JSON.stringify(reading(slot(BASE, 2000), 2)));
      expect(stack.gateway!.commitHealth().healthy).toBe(true);
    } finally {
      await Promise.all([bad, good, dcu].map(endClient));
    }
  }, 90_000);

  it('reports not healthy when every batch is refused, and healthy again once commits go through', async () => {
    await stack.pool.query(`INSERT INTO test_refuse_all VALUES (true)`);
    const good = await connectDevice(stack.mqttUrl, 'MTR-000001', secrets['MTR-000001']);
    try {
      for (let k = 0; k < 4; k++) {
        await publishAcked(good, 'meters/MTR-000001/readings', JSON.stringify(reading(slot(BASE, 3000 + k), 2)));
      }
      const health = stack.gateway!.commitHealth();
      expect(health.healthy).toBe(false);
      expect(health.rejectedBatchesInARow).toBeGreaterThanOrEqual(3);
      expect(health.lastError).toContain('refusing meter MTR-000001');
      const notReady = await stack.api('/readyz');
      expect(notReady.status).toBe(503);
      expect(notReady.body.checks.ingestion).toBe(false);
      expect(await count(stack, `SELECT count(*) FROM quarantine WHERE reason = 'commit_rejected' AND meter_id = 'MTR-000001'`)).toBe(4);

      await stack.pool.query(`DELETE FROM test_refuse_all`);
      await publishAcked(good, 'meters/MTR-000001/readings', JSON.stringify(reading(slot(BASE, 3010), 2)));
      expect(stack.gateway!.commitHealth().healthy).toBe(true);
      expect((await stack.api('/readyz')).status).toBe(200);
      expect(await count(stack, `SELECT count(*) FROM readings WHERE meter_id = 'MTR-000001' AND interval_start = $1`, [slot(BASE, 3010)])).toBe(1);
    } finally {
      await stack.pool.query(`DELETE FROM test_refuse_all`);
      await endClient(good);
    }
  }, 30_000);

  it('keeps ids spelled NULL as strings: a concentrator named NULL cannot store for another account, a meter named null stores', async () => {
    const acc = await stack.api('/v1/accounts', { body: { id: 'ACC-B', name: 'Other account', timezone: 'Europe/London', billingDay: 1 } });
    expect(acc.status).toBe(201);
    await provisionDevice(stack, 'meter', 'MTR-B1', { accountId: 'ACC-B', timezone: 'Europe/London', intervalSeconds: 900 });
    const nullDcuSecret = await provisionDevice(stack, 'concentrator', 'NULL', { meterIds: [] });
    const meterSecrets: Record<string, string> = {};
    for (const id of ['null', 'Null']) meterSecrets[id] = await provisionDevice(stack, 'meter', id, { accountId: 'ACC-1', timezone: 'Europe/London', intervalSeconds: 900 });

    const dcu = await connectDevice(stack.mqttUrl, 'NULL', nullDcuSecret);
    const meters = await Promise.all(['null', 'Null'].map((id) => connectDevice(stack.mqttUrl, id, meterSecrets[id])));
    try {
      await publishAcked(dcu, 'concentrators/NULL/readings', JSON.stringify({ readings: [{ meterId: 'MTR-B1', ...reading(slot(BASE, 0), 5) }] }));
      expect(await count(stack, `SELECT count(*) FROM readings WHERE meter_id = 'MTR-B1'`)).toBe(0);
      const q = (await stack.pool.query(`SELECT reason, device_id FROM quarantine WHERE meter_id = 'MTR-B1'`)).rows;
      expect(q).toEqual([{ reason: 'not_assigned', device_id: 'NULL' }]);

      for (const [i, id] of ['null', 'Null'].entries()) {
        await publishAcked(meters[i], `meters/${id}/readings`, JSON.stringify(reading(slot(BASE, 0), 7)));
        await publishAcked(meters[i], `meters/${id}/readings`, JSON.stringify({ readings: [{ meterId: id, ...reading(slot(BASE, 1), 8) }] }));
        expect(await count(stack, `SELECT count(*) FROM readings WHERE meter_id = $1`, [id])).toBe(2);
      }
      expect(await count(stack, `SELECT count(*) FROM quarantine WHERE meter_id IN ('null', 'Null')`)).toBe(0);
    } finally {
      await Promise.all([dcu, ...meters].map(endClient));
    }
  });
});

/** A raw MQTT 3.1.1 CONNECT with the given fields as bytes; resolves with the CONNACK return code, or 'closed'. */
function rawConnect(port: number, fields: { clientId: Buffer; username: Buffer; password: Buffer }): Promise<number | 'closed'> {
  const str = (b: Buffer) => Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
  const variable = Buffer.concat([str(Buffer.from('MQTT')), Buffer.from([4, 0xc2, 0, 30])]);
  const body = Buffer.concat([variable, str(fields.clientId), str(fields.username), str(fields.password)]);
  const length: number[] = [];
  let n = body.length;
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    length.push(byte);
  } while (n > 0);
  return new Promise((resolve) => {
    const socket = netConnect(port, '127.0.0.1', () => socket.write(Buffer.concat([Buffer.from([0x10, ...length]), body])));
    let got = Buffer.alloc(0);
    socket.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 4 && got[0] === 0x20) {
        resolve(got[3]);
        socket.destroy();
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve('closed'));
  });
}

describe('identity attacks (client ids, usernames, log lines)', () => {
  let stack: TestStack & { lines: string[] };
  let secrets: Record<string, string>;
  let port: number;

  beforeAll(async () => {
    stack = await startCapturedStack(storageModes()[0]);
    ({ secrets } = await provisionFleet(stack, { meters: 3 }));
    port = stack.ports.mqtt!;
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('refuses a client id of another device with CONNACK 5: the victim stays connected, keeps being acknowledged, and its queued messages stay its own', async () => {
    const victimId = 'MTR-000002';
    const session = `${victimId}:persistent`;
    // The victim: a persistent session subscribed to its own tree.
    let victim: MqttClient = await connectDevice(stack.mqttUrl, victimId, secrets[victimId], { clientId: session, clean: false });
    await new Promise<void>((resolve, reject) => victim.subscribe(`meters/${victimId}/#`, { qos: 1 }, (err) => (err ? reject(err) : resolve())));
    let victimClosed = false;
    victim.on('close', () => (victimClosed = true));

    // The intruder authenticates as itself and names the victim's session, or the victim's id.
    for (const clientId of [session, victimId, `${victimId}-x`, `${victimId}:`, 'MTR-000001x', '']) {
      const code = await rawConnect(port, { clientId: Buffer.from(clientId), username: Buffer.from('MTR-000001'), password: Buffer.from(secrets['MTR-000001']) });
      // An empty client id gets a fresh one from the broker (a session no one else can name): accepted.
      expect([clientId, code]).toEqual([clientId, clientId === '' ? 0 : 5]);
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(victimClosed).toBe(false);
    expect(victim.connected).toBe(true);
    await publishAcked(victim, `meters/${victimId}/readings`, JSON.stringify(reading(slot(BASE, 0), 1)));

    // Messages queued for the victim's offline session are delivered to the victim only.
    await endClient(victim);
    const other = await connectDevice(stack.mqttUrl, victimId, secrets[victimId], { clientId: `${victimId}:other` });
    await publishAcked(other, `meters/${victimId}/readings`, JSON.stringify(reading(slot(BASE, 1), 1)));
    await endClient(other);
    const intruderCode = await rawConnect(port, { clientId: Buffer.from(session), username: Buffer.from('MTR-000001'), password: Buffer.from(secrets['MTR-000001']) });
    expect(intruderCode).toBe(5);
    const received: string[] = [];
    victim = await connectDevice(stack.mqttUrl, victimId, secrets[victimId], { clientId: session, clean: false });
    victim.on('message', (topic) => received.push(topic));
    const deadline = Date.now() + 3000;
    while (received.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(received).toContain(`meters/${victimId}/readings`);
    await endClient(victim);
    expect(await counter(stack, 'mqttRefused', { reason: 'client_id' })).toBeGreaterThanOrEqual(6);
  });

  it('refuses NUL bytes, control characters and invalid UTF-8 in usernames and client ids cleanly, never as an outage', async () => {
    const unavailableBefore = await counter(stack, 'mqttRefused', { reason: 'unavailable' });
    const id = 'MTR-000001';
    const secret = Buffer.from(secrets[id]);
    const ok = await connectDevice(stack.mqttUrl, 'MTR-000003', secrets['MTR-000003']);
    try {
      const badUsernames = [Buffer.from(`${id}\u0000`), Buffer.from(`\u0000${id}`), Buffer.from(`${id}\u0007`), Buffer.concat([Buffer.from(id), Buffer.from([0xc3, 0x28])]), Buffer.alloc(65_000, 0x41)];
      for (const username of badUsernames) {
        const code = await rawConnect(port, { clientId: Buffer.from(`${id}:x`), username, password: secret });
        expect(code).toBe(4); // bad username or password
      }
      const badClientIds = [Buffer.from(`${id}\u0000`), Buffer.from(`${id}:\u0000`), Buffer.from(`${id}:a\nb`), Buffer.concat([Buffer.from(`${id}:`), Buffer.from([0xff, 0xfe])])];
      for (const clientId of badClientIds) {
        const code = await rawConnect(port, { clientId, username: Buffer.from(id), password: secret });
        expect(code).toBe(5); // not authorized
      }
      // The legitimate form is accepted, and the other device was served throughout.
      expect(await rawConnect(port, { clientId: Buffer.from(`${id}:x`), username: Buffer.from(id), password: secret })).toBe(0);
      await publishAcked(ok, 'meters/MTR-000003/readings', JSON.stringify(reading(slot(BASE, 0), 1)));
      expect(await counter(stack, 'mqttRefused', { reason: 'unavailable' })).toBe(unavailableBefore);
    } finally {
      await endClient(ok);
    }
  });

  it('logs at most a bounded prefix of client ids, usernames and topics a client sent', async () => {
    const huge = 'Z'.repeat(60_000);
    const id = 'MTR-000001';
    stack.lines.length = 0;
    expect(await rawConnect(port, { clientId: Buffer.from(`${id}:${huge}`), username: Buffer.from(id), password: Buffer.from(secrets[id]) })).toBe(5);
    expect(await rawConnect(port, { clientId: Buffer.from(`${id}:x`), username: Buffer.from(`${huge}`), password: Buffer.from('wrong') })).toBe(4);
    const client = await connectDevice(stack.mqttUrl, id, secrets[id]);
    const closed = new Promise<void>((r) => client.once('close', () => r()));
    client.publish(`meters/${huge}/readings`, '{}', { qos: 1 });
    await closed;
    await endClient(client);
    await new Promise((r) => setTimeout(r, 100));
    const relevant = stack.lines.filter((l) => l.includes('ZZZZ'));
    expect(relevant.length).toBeGreaterThanOrEqual(3); // the two refusals and the refused publish were logged
    for (const line of relevant) {
      expect(line.length).toBeLessThan(2_000);
      expect(line).toContain('more chars]');
      expect(line).not.toContain('Z'.repeat(LOGGED_TEXT_CHARS + 1));
    }
  });
});
