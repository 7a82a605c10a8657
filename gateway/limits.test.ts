/**
 * Limits, over real sockets against the real stack, with small limits set through the
 * environment: connections per device and failed attempts per remote address, the publish token bucket per device
 * (over it: no PUBACK, the connection is closed, the device resends, nothing acknowledged is lost), and
 * the API's rate limit per token (429 in the contract's error shape, with Retry-After).
 */
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageModes } from '../test/support/database.js';
import { connectDevice, endClient, reading, slot } from '../test/support/mqtt.js';
import { provisionFleet, startTestStack, type TestStack } from '../test/support/stack.js';
import { ADDRESS_ATTEMPTS_FACTOR } from './embedded/embedded-gateway.js';

const CONNECTS_PER_MINUTE = 4;
const ADDRESS_CAPACITY = CONNECTS_PER_MINUTE * ADDRESS_ATTEMPTS_FACTOR;
const BURST = 5;
/** slow enough that the first burst is refused whatever the machine's speed, fast enough to refill between reconnects */
const RATE = 2;
const API_PER_MINUTE = 30;
const BASE = '2026-02-01T00:00:00Z';
const mode = storageModes()[0];

/** How a connection attempt ended: CONNACK accepted, CONNACK refusal (with its return code), or closed without CONNACK. */
function attempt(url: string, username: string, password: string): Promise<{ outcome: 'connected' } | { outcome: 'refused'; code: number } | { outcome: 'closed' }> {
  const client = mqtt.connect(url, { username, password, clientId: `${username}:attempt-${Math.random().toString(36).slice(2)}`, reconnectPeriod: 0, connectTimeout: 5000 });
  return new Promise((resolve) => {
    const done = (result: Awaited<ReturnType<typeof attempt>>) => {
      client.removeAllListeners();
      client.on('error', () => {});
      client.end(true);
      resolve(result);
    };
    client.once('connect', () => done({ outcome: 'connected' }));
    client.once('error', (err) => {
      const code = (err as Error & { code?: number }).code;
      done(typeof code === 'number' ? { outcome: 'refused', code } : { outcome: 'closed' });
    });
    client.once('close', () => done({ outcome: 'closed' }));
  });
}

describe(`MQTT and API limits (${mode} storage)`, () => {
  let stack: TestStack;
  let secrets: Record<string, string>;
  let meterIds: string[];

  const refused = async (reason: string) => (await stack.metrics.mqttRefused.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;

  beforeAll(async () => {
    stack = await startTestStack(mode, {
      MQTT_CONNECT_RATE_PER_MINUTE: String(CONNECTS_PER_MINUTE),
      MQTT_PUBLISH_RATE_PER_SECOND: String(RATE),
      MQTT_PUBLISH_BURST: String(BURST),
      API_RATE_LIMIT_PER_MINUTE: String(API_PER_MINUTE),
    });
    ({ secrets, meterIds } = await provisionFleet(stack, { meters: 13 }));
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('does not lock out many devices behind one address: successful attempts do not count against it', async () => {
    // 11 devices x 4 attempts = 44 successful connections from 127.0.0.1, more than the address allows for failures.
    expect(11 * CONNECTS_PER_MINUTE).toBeGreaterThan(ADDRESS_CAPACITY);
    for (const id of meterIds.slice(0, 11)) {
      for (let i = 0; i < CONNECTS_PER_MINUTE; i++) expect(await attempt(stack.mqttUrl, id, secrets[id])).toEqual({ outcome: 'connected' });
    }
  });

  it('refuses the N+1th connection of a device within a minute with CONNACK 3, and counts it', async () => {
    const before = await refused('connect_rate');
    const id = meterIds[10]; // used its 4 connections just now
    const err = await attempt(stack.mqttUrl, id, secrets[id]);
    expect(err).toEqual({ outcome: 'refused', code: 3 }); // server unavailable: try again later
    // A wrong password for that id is a failed attempt of its own: bad username or password.
    expect(await attempt(stack.mqttUrl, id, 'wrong')).toEqual({ outcome: 'refused', code: 4 });
    expect(await refused('connect_rate')).toBe(before + 1);
    // Another device from the same address is not affected.
    const other = await connectDevice(stack.mqttUrl, meterIds[11], secrets[meterIds[11]], { clientId: `${meterIds[11]}:other` });
    await endClient(other);
  });

  it('refuses publishes over the burst without a PUBACK, closes the connection, and the device resends: nothing acknowledged is lost', async () => {
    const id = meterIds[12]; // a device with its whole connection budget: it will reconnect
    const before = await refused('publish_rate');
    // A device that reconnects by itself and resends its unacknowledged QoS 1 messages (mqtt.js does).
    const client: MqttClient = mqtt.connect(stack.mqttUrl, { username: id, password: secrets[id], clientId: `${id}:burst`, reconnectPeriod: 2000, connectTimeout: 5000 });
    client.on('error', () => {});
    await new Promise<void>((r) => client.once('connect', () => r()));
    const closes: number[] = [];
    client.on('close', () => closes.push(Date.now()));
    const COUNT = 8;
    const acked = new Set<number>();
    const firstClose = new Promise<void>((r) => client.once('close', () => r()));
    const all = Promise.all(
      Array.from(
        { length: COUNT },
        (_, k) =>
          new Promise<void>((resolve, reject) =>
            client.publish(`meters/${id}/readings`, JSON.stringify(reading(slot(BASE, k), k + 1)), { qos: 1 }, (err) => {
              if (err) return reject(err);
              acked.add(k);
              resolve();
            }),
          ),
      ),
    );
    await firstClose;
    const ackedBeforeClose = new Set(acked);
    // What was accepted before the refusal is committed (the refusal does not undo it); the rest is not.
    await new Promise((r) => setTimeout(r, 300));
    const storedAtFirstClose = Number((await stack.pool.query(`SELECT count(*) FROM readings WHERE meter_id = $1`, [id])).rows[0].count);
    expect(storedAtFirstClose).toBeGreaterThanOrEqual(BURST);
    expect(storedAtFirstClose).toBeLessThan(COUNT);
    // The messages accepted before the refusal were acknowledged before the connection closed (so a device
    // resending a backlog larger than the burst makes progress), and nothing else was.
    expect(ackedBeforeClose.size).toBe(storedAtFirstClose);
    expect(await refused('publish_rate')).toBeGreaterThan(before);

    // The device resends after reconnecting (2 s: 4 more tokens), so everything is acknowledged.
    await all;
    client.end(true);
    const rows = (await stack.pool.query(`SELECT interval_start, import_mwh::int AS mwh FROM readings WHERE meter_id = $1 ORDER BY interval_start`, [id])).rows;
    expect(rows.map((r) => r.mwh)).toEqual(Array.from({ length: COUNT }, (_, k) => (k + 1) * 1000)); // each once
    expect(closes.length).toBeGreaterThanOrEqual(1);
  }, 20_000);

  it('charges failed attempts to the address, never to the device they name: the device still connects, then the address is cut', async () => {
    const before = await refused('connect_rate');
    const victim = meterIds[11];
    const outcomes: string[] = [];
    const record = (result: Awaited<ReturnType<typeof attempt>>) => {
      outcomes.push(result.outcome === 'refused' ? `refused ${result.code}` : result.outcome);
      return result;
    };
    // 30 wrong secrets naming the victim (its id is printed on the meter): each one only bad username or password.
    for (let i = 0; i < 30; i++) record(await attempt(stack.mqttUrl, victim, `wrong-secret-${i}`));
    expect(outcomes).toEqual(Array(30).fill('refused 4'));
    // The victim with its own secret is accepted: nobody's failures count against it.
    expect(await attempt(stack.mqttUrl, victim, secrets[victim])).toEqual({ outcome: 'connected' });
    // The failures stayed charged to the address: more of them, in the victim's name or others', cut it.
    for (let i = 0; i < ADDRESS_CAPACITY; i++) {
      const result = record(await attempt(stack.mqttUrl, i % 2 ? `NOPE-${i}` : victim, 'wrong-secret'));
      if (result.outcome === 'closed') break;
    }
    expect(outcomes.at(-1)).toBe('closed');
    // That address is now cut for everyone until its bucket refills (one attempt every 60/40 s here).
    expect((await attempt(stack.mqttUrl, victim, secrets[victim])).outcome).toBe('closed');
    const badPassword = outcomes.filter((o) => o === 'refused 4').length;
    // Two failures of the test before are charged too; the bucket refills while the loops run (ADDRESS_CAPACITY
    // per minute): a few more may pass.
    expect(badPassword).toBeGreaterThanOrEqual(ADDRESS_CAPACITY - 3);
    expect(badPassword).toBeLessThanOrEqual(ADDRESS_CAPACITY + 10);
    expect(outcomes.slice(0, badPassword).every((o) => o === 'refused 4')).toBe(true);
    expect(await refused('connect_rate')).toBe(before + 2);
  });

  it('answers 429 with Retry-After in the error shape per token, counts it, and exempts probes', async () => {
    const reader = (await stack.api('/v1/tokens', { body: { role: 'reader' } })).body.token as string;
    let status = 0;
    let n = 0;
    for (; n < API_PER_MINUTE + 1; n++) {
      ({ status } = await stack.api('/v1/accounts/ACC-1', { token: reader }));
      if (status !== 200) break;
    }
    expect(n).toBe(API_PER_MINUTE);
    expect(status).toBe(429);
    const res = await fetch(`${stack.apiUrl}/v1/accounts/ACC-1`, { headers: { authorization: `Bearer ${reader}` } });
    expect(res.status).toBe(429);
    const retryAfter = Number(res.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(await res.json()).toEqual({ error: { code: 'rate_limited', message: expect.stringContaining(`more than ${API_PER_MINUTE} requests per minute`), details: [] } });
    // Probes are never limited; /metrics is limited like every route; another token has its own budget.
    for (const path of ['/healthz', '/readyz']) expect((await stack.api(path, { token: reader })).status).toBe(200);
    expect((await stack.api('/metrics', { token: reader })).status).toBe(429);
    expect((await stack.api('/v1/accounts/ACC-1')).status).toBe(200);
    const metrics = (await stack.api('/metrics')).body as string;
    expect(metrics).toMatch(/http_rate_limited_total 3\b/);
    expect(metrics).not.toContain(reader);
  });

  it('limits requests without a token by address, before authentication', async () => {
    const statuses: number[] = [];
    for (let n = 0; n < API_PER_MINUTE + 1; n++) statuses.push((await stack.api('/v1/accounts', { token: null })).status);
    expect(statuses.slice(0, API_PER_MINUTE).every((s) => s === 401)).toBe(true);
    expect(statuses.at(-1)).toBe(429);
  });
});
