/**
 * Hostile input through the real broker: thousands of generated payloads (fast-check) from one device
 * while another keeps publishing. Nothing crashes, the other device is served throughout, and every
 * reading ends stored, counted as a duplicate, or quarantined with a reason: the counts add up exactly.
 * The payloads include instants across the whole representable range (years 0000-0099, 1900, 1970,
 * 9999 ...) and meter ids that a database or a tool could misread (NULL, null, Null, '', NUL bytes).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { MqttClient } from 'mqtt';
import { storageModes } from '../test/support/database.js';
import { provisionFleet, startTestStack, type TestStack } from '../test/support/stack.js';
import { connectDevice, endClient, publishAcked, reading, slot } from '../test/support/mqtt.js';

interface Case {
  payload: Buffer;
  /** readings (or whole-message units) this payload must account for */
  units: number;
}

const BASE = '2025-06-01T00:00:00Z';

/** Ids a database or a tool could misread; only the attacker's own id is valid on its topic. */
const EDGY_IDS = ['NULL', 'null', 'Null', '', '\u0000', 'MTR-000001\u0000', '\u0000MTR-000001', 'MTR-000001'];
const FIFTEEN_MINUTES = 900_000;
/** Instants across the representable range, on 15-minute boundaries (in UTC), as ISO 8601 with a 4-digit year. */
const edgyInstant = fc.oneof(
  fc.date({ min: new Date('0000-01-01T00:00:00Z'), max: new Date('9999-12-31T23:45:00Z'), noInvalidDate: true }),
  fc.tuple(fc.constantFrom(0, 1, 50, 99, 100, 1000, 1899, 1900, 1969, 1970, 1999, 2000, 9999), fc.nat(364), fc.nat(95)).map(([year, day, quarter]) => {
    const d = new Date(Date.UTC(2000, 0, 1 + day, 0, quarter * 15));
    d.setUTCFullYear(year); // Date.UTC maps years 0-99 to 1900-1999; setUTCFullYear does not
    return d;
  }),
).map((d) => new Date(Math.floor(d.getTime() / FIFTEEN_MINUTES) * FIFTEEN_MINUTES).toISOString().replace('.000Z', 'Z'));

function generateCases(count: number, seed: number): Case[] {
  let nextSlot = 0;
  const validReading = () => reading(slot(BASE, nextSlot++), Math.round(Math.random() * 1e6) / 1000);
  const garbageElement = fc.oneof(
    fc.jsonValue({ maxDepth: 3 }),
    fc.record({ intervalStart: fc.string(), intervalSeconds: fc.integer(), importWh: fc.double() }),
    fc.constantFrom({ __proto__: null }, { constructor: {} }),
  );
  const kind = fc.oneof(
    { weight: 3, arbitrary: fc.uint8Array({ maxLength: 600 }).map((b) => ({ type: 'bytes' as const, bytes: Buffer.from(b) })) },
    { weight: 2, arbitrary: fc.string({ maxLength: 300 }).map((s) => ({ type: 'bytes' as const, bytes: Buffer.from(s) })) },
    { weight: 6, arbitrary: fc.tuple(fc.nat(12), fc.array(garbageElement, { maxLength: 6 }), fc.nat(3)).map(([valid, garbage, dups]) => ({ type: 'batch' as const, valid, garbage, dups })) },
    { weight: 1, arbitrary: fc.constantFrom('nan', 'inf', 'huge', 'proto', 'deep', 'oversized', 'utf8').map((name) => ({ type: 'special' as const, name })) },
    {
      weight: 2,
      arbitrary: fc
        .array(fc.record({ meterId: fc.option(fc.constantFrom(...EDGY_IDS), { nil: undefined }), intervalStart: edgyInstant, importWh: fc.nat(5000) }), { minLength: 1, maxLength: 4 })
        .map((readings) => ({ type: 'edgy' as const, readings })),
    },
  );
  const cases: Case[] = [];
  for (const k of fc.sample(kind, { seed, numRuns: count })) {
    if (k.type === 'bytes') {
      // Random bytes almost never form a valid message; when they do they are a case of their own kind.
      let parsed: unknown;
      try {
        parsed = JSON.parse(k.bytes.toString());
      } catch {
        parsed = undefined;
      }
      if (parsed !== null && typeof parsed === 'object') continue;
      cases.push({ payload: k.bytes, units: 1 });
    } else if (k.type === 'batch') {
      const valid = Array.from({ length: k.valid }, validReading);
      const dups = valid.slice(0, k.dups);
      const elements = [...valid, ...k.garbage, ...dups];
      cases.push({ payload: Buffer.from(JSON.stringify({ readings: elements })), units: elements.length });
    } else if (k.type === 'edgy') {
      const elements = k.readings.map(({ meterId, intervalStart, importWh }) => ({ ...(meterId === undefined ? {} : { meterId }), ...reading(intervalStart, importWh) }));
      cases.push({ payload: Buffer.from(JSON.stringify({ readings: elements })), units: elements.length });
    } else {
      const r = validReading();
      const text = JSON.stringify(r);
      const special: Record<string, string | Buffer> = {
        nan: text.replace(/"importWh":[^,}]+/, '"importWh":NaN'),
        inf: text.replace(/"importWh":[^,}]+/, '"importWh":Infinity'),
        huge: text.replace(/"importWh":[^,}]+/, '"importWh":1e400'),
        proto: `{"readings":[${text.replace(/}$/, ',"__proto__":{"isAdmin":true}}')}]}`,
        deep: `{"readings":[${'['.repeat(50_000)}${']'.repeat(50_000)}]}`,
        oversized: Buffer.alloc(256 * 1024 + 10, 0x7b),
        utf8: Buffer.concat([Buffer.from(text.slice(0, 10)), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from(text.slice(10))]),
      };
      cases.push({ payload: Buffer.isBuffer(special[k.name]) ? (special[k.name] as Buffer) : Buffer.from(special[k.name] as string), units: 1 });
    }
  }
  return cases;
}

describe.each(storageModes())('hostile payloads through the broker (%s storage)', (mode) => {
  let stack: TestStack;
  let attacker: MqttClient;
  let neighbour: MqttClient;

  beforeAll(async () => {
    stack = await startTestStack(mode);
    const { secrets } = await provisionFleet(stack, { meters: 2 });
    attacker = await connectDevice(stack.mqttUrl, 'MTR-000001', secrets['MTR-000001']);
    neighbour = await connectDevice(stack.mqttUrl, 'MTR-000002', secrets['MTR-000002']);
  });
  afterAll(async () => {
    await Promise.all([attacker, neighbour].filter(Boolean).map(endClient));
    await stack?.close();
  });

  it('accounts for every reading of 1,500 generated payloads and keeps serving another device', async () => {
    const cases = generateCases(1500, 20261126);
    const expectedUnits = cases.reduce((s, c) => s + c.units, 0);
    const dupBefore = Number((await stack.metrics.readingsDuplicate.get()).values[0]?.value ?? 0);

    let neighbourAcks = 0;
    let stop = false;
    const neighbourLoop = (async () => {
      for (let k = 0; !stop; k++) {
        await publishAcked(neighbour, 'meters/MTR-000002/readings', JSON.stringify(reading(slot(BASE, k), 1)));
        neighbourAcks++;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();

    const WINDOW = 50;
    for (let i = 0; i < cases.length; i += WINDOW) {
      await Promise.all(cases.slice(i, i + WINDOW).map((c) => publishAcked(attacker, 'meters/MTR-000001/readings', c.payload)));
    }
    stop = true;
    await neighbourLoop;

    const stored = Number((await stack.pool.query(`SELECT count(*) FROM readings WHERE meter_id = 'MTR-000001'`)).rows[0].count);
    const quarantined = Number((await stack.pool.query(`SELECT count(*) FROM quarantine WHERE device_id = 'MTR-000001'`)).rows[0].count);
    const duplicates = Number((await stack.metrics.readingsDuplicate.get()).values[0]?.value ?? 0) - dupBefore;
    expect(stored + duplicates + quarantined).toBe(expectedUnits);
    // Every quarantine record carries a reason, and the edgy ids and instants were among what was sent.
    expect(Number((await stack.pool.query(`SELECT count(*) FROM quarantine WHERE device_id = 'MTR-000001' AND coalesce(reason, '') = ''`)).rows[0].count)).toBe(0);
    const sent = cases.map((c) => c.payload.toString('latin1')).join('\n');
    for (const text of ['"meterId":"NULL"', '"meterId":"null"', '"meterId":""', '\\u0000', '"intervalStart":"00', '"intervalStart":"1970-', '"intervalStart":"9999-']) expect(sent).toContain(text);
    expect(stored).toBeGreaterThan(100);
    expect(duplicates).toBeGreaterThan(10);
    expect(quarantined).toBeGreaterThan(100);
    expect(neighbourAcks).toBeGreaterThan(5);
    expect(attacker.connected).toBe(true);
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });

  it('closes the connection of a packet far above the payload limit before buffering it, and serves the others', async () => {
    const refusedBefore = (await stack.metrics.mqttRefused.get()).values.find((v) => v.labels.reason === 'packet_too_large')?.value ?? 0;
    const closed = new Promise<void>((r) => attacker.once('close', () => r()));
    attacker.publish('meters/MTR-000001/readings', Buffer.alloc(256 * 1024 * 4 + 128 * 1024, 0x20), { qos: 1 });
    await closed;
    const refusedAfter = (await stack.metrics.mqttRefused.get()).values.find((v) => v.labels.reason === 'packet_too_large')?.value ?? 0;
    expect(refusedAfter - refusedBefore).toBe(1);
    await publishAcked(neighbour, 'meters/MTR-000002/readings', JSON.stringify(reading(slot(BASE, 5000), 1)));
  });
});
