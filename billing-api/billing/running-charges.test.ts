/**
 * Running charges (GET /v1/accounts/{id}/charges) against a full re-rating: thousands of random readings,
 * out of order, with resends, estimates and the actual readings replacing them, and readings of the
 * previous cycle, published over real MQTT to the real stack. After every quarter of the traffic, the
 * running charges (served from the in-memory store the gateway feeds) must equal exactly the rating core
 * applied to the readings the database holds, and equal what a store without a gateway (reading the
 * database) answers. The reference re-rating reads the database directly; it shares nothing with the
 * store but the pure rating core.
 */
import Decimal from 'decimal.js';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exampleTariff, rateWindow, resolveTariffTimeline, type MeterInterval, type TariffDocument } from '../../rating/index.js';
import { storageModes } from '../../test/support/database.js';
import { connectDevice, endClient, publishAcked } from '../../test/support/mqtt.js';
import { startTestStack, type TestStack } from '../../test/support/stack.js';
import { isoUtc } from '../../common/time.js';
import { cycleContaining } from './cycles.js';
import { OpenCycleStore, RunningChargesService } from './running-charges.js';
import { ReadingsRepository } from '../readings/readings.repository.js';
import { BillingRepository } from './billing.repository.js';
import { TariffsRepository } from '../tariffs/tariffs.repository.js';
import { createAccount, createMeter, createTariff, flatTariff } from '../test-support.js';

const ZONE = 'America/Los_Angeles';
const SEED = 20261126;

/** mulberry32: a small seeded PRNG, so a failure can be replayed. */
function prng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Wire {
  meterId: string;
  intervalStart: string;
  intervalSeconds: number;
  importWh: number;
  exportWh: number;
  quality: 'actual' | 'estimated';
}

describe.each(storageModes())('running charges equal a full re-rating (%s storage)', (mode) => {
  let stack: TestStack;
  const clients: Record<string, MqttClient> = {};
  let cycle: { from: number; to: number };
  const meters = [
    { id: 'RUN-1', seconds: 900, tariff: exampleTariff.id },
    { id: 'RUN-2', seconds: 300, tariff: exampleTariff.id }, // 5-minute data, 15-minute demand window: block demand
    { id: 'RUN-3', seconds: 3600, tariff: 'flat-usd' },
  ];

  beforeAll(async () => {
    stack = await startTestStack(mode, { BILLING_CRON: 'off', MAX_PAYLOAD_BYTES: String(2 * 1024 * 1024) });
    await createTariff(stack, exampleTariff);
    await createTariff(stack, flatTariff('flat-usd', { currency: 'USD', timeZone: ZONE, rate: '0.1234', perDay: '0.3333', perMonth: '7.77', tax: '0.0825', sell: '0.031' }));
    // A billing day at least eight days back, so the open cycle already has a week to fill.
    const eightDaysAgo = new Date(Date.now() - 8 * 86_400_000).toLocaleString('en-US', { timeZone: ZONE, day: 'numeric' });
    const billingDay = Math.min(28, Number(eightDaysAgo));
    await createAccount(stack, 'RUN', ZONE, billingDay);
    await createAccount(stack, 'OTHER', ZONE, 1);
    cycle = cycleContaining(Date.now(), ZONE, billingDay);
    for (const m of meters) {
      const secret = await createMeter(stack, m.id, 'RUN', ZONE, m.tariff, m.seconds);
      clients[m.id] = await connectDevice(stack.mqttUrl, m.id, secret);
    }
  });
  afterAll(async () => {
    await Promise.all(Object.values(clients).map(endClient));
    await stack?.close();
  });

  /** The reference: every meter's stored readings of the cycle, rated by the core, summed exactly. */
  async function fullRerating() {
    const docs = (await stack.pool.query<{ document: TariffDocument }>('SELECT document FROM tariffs ORDER BY id, version')).rows.map((r) => r.document);
    const perMeter: ReturnType<typeof rateWindow>[] = [];
    for (const m of meters) {
      const rows = await stack.pool.query(
        `SELECT (extract(epoch FROM interval_start) * 1000)::float8 AS s, import_mwh, export_mwh, quality FROM readings
         WHERE meter_id = $1 AND interval_start >= $2 AND interval_start < $3`,
        [m.id, new Date(cycle.from), new Date(cycle.to)],
      );
      const intervals: MeterInterval[] = rows.rows.map((r) => ({ intervalStart: Number(r.s), intervalSeconds: m.seconds, importMwh: r.import_mwh, exportMwh: r.export_mwh, quality: r.quality }));
      const timeline = resolveTariffTimeline([{ tariffId: m.tariff, effectiveFrom: Number.NEGATIVE_INFINITY }], docs);
      perMeter.push(rateWindow({ tariffTimeline: timeline, intervals, billingWindow: cycle, billingCycle: cycle, meterIntervalSeconds: m.seconds }));
    }
    const sum = (k: 'subtotal' | 'taxes' | 'total') => perMeter.reduce((t, c) => t.plus(c[k]), new Decimal(0)).toFixed(2);
    return { perMeter, subtotal: sum('subtotal'), taxes: sum('taxes'), total: sum('total') };
  }

  async function expectEqualToFullRerating() {
    const res = await stack.api('/v1/accounts/RUN/charges');
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const expected = await fullRerating();
    expect(res.body.meters.map((m: any) => m.meterId)).toEqual(meters.map((m) => m.id));
    res.body.meters.forEach((m: any, i: number) => {
      const { tariffIds, ...reference } = expected.perMeter[i];
      expect(m, m.meterId).toMatchObject({ ...reference, tariffIds });
    });
    expect({ subtotal: res.body.subtotal, taxes: res.body.taxes, total: res.body.total }).toEqual({ subtotal: expected.subtotal, taxes: expected.taxes, total: expected.total });
    // A store that no gateway feeds reads the database on every request: the same answer.
    const fromDatabase = await new RunningChargesService(new BillingRepository(stack.pool), new TariffsRepository(stack.pool), new OpenCycleStore(new ReadingsRepository(stack.pool), { capacity: 10, live: false })).forAccount('RUN');
    expect(JSON.parse(JSON.stringify(fromDatabase))).toEqual(res.body);
    return res.body;
  }

  it('after thousands of random out-of-order readings, resends and replaced estimates', async () => {
    const random = prng(SEED);
    const now = Date.now();
    const start = Math.max(cycle.from, now - 7 * 86_400_000);
    const traffic: Wire[] = [];
    for (const m of meters) {
      const len = m.seconds * 1000;
      for (let t = Math.ceil(start / len) * len; t < now - 3_600_000; t += len) {
        if (random() < 0.2) continue; // never sent: missing
        const wire = (importWh: number, quality: Wire['quality']): Wire => ({
          meterId: m.id, intervalStart: new Date(t).toISOString(), intervalSeconds: m.seconds, importWh, exportWh: random() < 0.3 ? Math.round(random() * 500_000) / 1000 : 0, quality,
        });
        const value = Math.round(random() * (m.seconds / 900) * 1_500_000) / 1000; // up to 6 kW average
        const roll = random();
        if (roll < 0.1) {
          traffic.push(wire(Math.round(random() * 900_000) / 1000, 'estimated'));
          traffic.push(wire(value, 'actual')); // replaces the estimate when it comes second, else conflicts
        } else if (roll < 0.15) {
          traffic.push(wire(Math.round(random() * 900_000) / 1000, 'estimated')); // an estimate that stays
        } else {
          const w = wire(value, 'actual');
          traffic.push(w);
          if (roll > 0.9) traffic.push({ ...w }); // a resend: duplicate
        }
      }
      // Readings of the previous cycle: stored, never part of the open cycle.
      for (let k = 1; k <= 20; k++) traffic.push({ meterId: m.id, intervalStart: new Date(cycle.from - k * len).toISOString(), intervalSeconds: m.seconds, importWh: 5000, exportWh: 0, quality: 'actual' });
    }
    // Shuffle (Fisher-Yates): out of order within and across meters.
    for (let i = traffic.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [traffic[i], traffic[j]] = [traffic[j], traffic[i]];
    }
    expect(traffic.length).toBeGreaterThan(2500);

    const initial = await expectEqualToFullRerating(); // loads the store before any reading: everything after goes through the hook
    expect(initial.coverage.actualIntervals).toBe(0);
    const quarter = Math.ceil(traffic.length / 4);
    for (let q = 0; q < 4; q++) {
      const part = traffic.slice(q * quarter, (q + 1) * quarter);
      for (let i = 0; i < part.length; ) {
        const size = 1 + Math.floor(random() * 40);
        const byMeter = new Map<string, Wire[]>();
        for (const w of part.slice(i, i + size)) byMeter.set(w.meterId, [...(byMeter.get(w.meterId) ?? []), w]);
        await Promise.all(
          [...byMeter].map(([meterId, ws]) =>
            publishAcked(clients[meterId], `meters/${meterId}/readings`, JSON.stringify({ readings: ws.map(({ meterId: _, ...r }) => r) })),
          ),
        );
        i += size;
      }
      const body = await expectEqualToFullRerating();
      expect(body.coverage.actualIntervals).toBeGreaterThan(0);
    }
    const replaced = await stack.pool.query(`SELECT count(*)::int AS n FROM quarantine WHERE reason = 'conflicting_duplicate'`);
    expect(replaced.rows[0].n).toBeGreaterThan(0); // the run exercised conflicts too
  });

  it('shows a reading as soon as its PUBACK has arrived', async () => {
    const before = (await stack.api('/v1/accounts/RUN/charges')).body;
    // Within the last hour: the random traffic above never used this slot.
    const slot = Math.floor((Date.now() - 20 * 60_000) / 900_000) * 900_000;
    await publishAcked(clients['RUN-1'], 'meters/RUN-1/readings', JSON.stringify({ intervalStart: new Date(slot).toISOString(), intervalSeconds: 900, importWh: 3000 }));
    const after = (await stack.api('/v1/accounts/RUN/charges')).body;
    expect(after.meters[0].coverage.actualIntervals).toBe(before.meters[0].coverage.actualIntervals + 1);
    expect(after.meters[0].asOf).toBe(new Date(slot + 900_000).toISOString().replace('.000Z', 'Z'));
    await expectEqualToFullRerating();
  });

  it('ratchets the open cycle to a preceding cycle\'s peak, and follows a late reading of that cycle', async () => {
    const rate = {
      label: 'run-ratchet',
      energyratestructure: [[{ rate: 0.1 }]],
      energyweekdayschedule: Array.from({ length: 12 }, () => Array(24).fill(0)),
      energyweekendschedule: Array.from({ length: 12 }, () => Array(24).fill(0)),
      flatdemandstructure: [[{ rate: 10 }]],
      flatdemandmonths: Array(12).fill(0),
      lookbackpercent: 0.8,
      lookbackmonths: Array(12).fill(true),
      lookbackrange: 3,
    };
    expect((await stack.api('/v1/tariffs/urdb', { body: { timezone: ZONE, rate } })).status).toBe(201);
    await createAccount(stack, 'RAT', ZONE, 1);
    const client = await connectDevice(stack.mqttUrl, 'RAT-1', await createMeter(stack, 'RAT-1', 'RAT', ZONE, 'run-ratchet', 900));
    const open = cycleContaining(Date.now(), ZONE, 1);
    const previous = cycleContaining(open.from - 1, ZONE, 1);
    const send = (start: number, importWh: number) =>
      publishAcked(client, 'meters/RAT-1/readings', JSON.stringify({ intervalStart: new Date(start).toISOString(), intervalSeconds: 900, importWh }));
    // The previous cycle: 25 kWh in a quarter hour (100 kW); the open cycle: 1 kWh in a quarter hour (4 kW).
    await send(previous.from + 86_400_000, 25_000);
    await send(Math.max(open.from, Math.floor((Date.now() - 7_200_000) / 900_000) * 900_000), 1000);
    const demandOf = async () => {
      const res = await stack.api('/v1/accounts/RAT/charges');
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return res.body.meters[0].lines.filter((l: { type: string }) => l.type === 'demand');
    };
    const setBy = (peakKw: string) => ({ from: isoUtc(previous.from), to: isoUtc(previous.to), peakKw, lookbackPercent: '0.8' });
    // 80 % of 100 kW = 80 kW > 4 kW: 80 x 10 = 800.00.
    expect(await demandOf()).toEqual([expect.objectContaining({ period: 'flat', quantity: '80', measuredKw: '4', amount: '800.00', billingDemandSetBy: setBy('100') })]);
    // The meter's charges for the open cycle read the same history.
    const meter = await stack.api(`/v1/meters/RAT-1/charges?from=${isoUtc(open.from)}&to=${isoUtc(open.to)}`);
    expect(meter.body.lines.filter((l: { type: string }) => l.type === 'demand')).toEqual(await demandOf());
    // A late reading of the previous cycle (50 kWh in a quarter hour: 200 kW) is seen at once: 160 kW.
    await send(previous.from + 2 * 86_400_000, 50_000);
    expect(await demandOf()).toEqual([expect.objectContaining({ quantity: '160', amount: '1600.00', billingDemandSetBy: setBy('200') })]);
    await endClient(client);
  });

  it('carries net metering kWh banks into the open cycle, and follows a late export of an earlier cycle', async () => {
    const rate = {
      label: 'run-nem',
      dgrules: 'Net Metering',
      energyratestructure: [[{ rate: 0.2, sell: 0.2 }]],
      energyweekdayschedule: Array.from({ length: 12 }, () => Array(24).fill(0)),
      energyweekendschedule: Array.from({ length: 12 }, () => Array(24).fill(0)),
    };
    // The true-up in the open cycle's month: the previous cycle is in the same settlement year and carries into it.
    const open = cycleContaining(Date.now(), ZONE, 1);
    const previous = cycleContaining(open.from - 1, ZONE, 1);
    const month = (t: number) => Number(new Date(t).toLocaleString('en-US', { timeZone: ZONE, month: 'numeric' }));
    const trueUpMonth = month(open.to - 1);
    expect((await stack.api('/v1/tariffs/urdb', { body: { timezone: ZONE, rate, netMetering: { carryOver: 'kWh', trueUpMonth } } })).status).toBe(201);
    await createAccount(stack, 'NEM', ZONE, 1);
    const client = await connectDevice(stack.mqttUrl, 'NEM-1', await createMeter(stack, 'NEM-1', 'NEM', ZONE, 'run-nem', 900));
    const send = (start: number, importWh: number, exportWh: number) =>
      publishAcked(client, 'meters/NEM-1/readings', JSON.stringify({ intervalStart: new Date(start).toISOString(), intervalSeconds: 900, importWh, exportWh }));
    // The previous cycle exports 10 kWh; the open cycle imports 14 kWh: 10 are offset by the bank, 4 billed at 0.20.
    await send(previous.from + 86_400_000, 0, 10_000);
    await send(Math.max(open.from, Math.floor((Date.now() - 7_200_000) / 900_000) * 900_000), 14_000, 0);
    const running = async () => {
      const res = await stack.api('/v1/accounts/NEM/charges');
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return res.body.meters[0];
    };
    const first = await running();
    expect(first.metering.carriedIn.banks).toEqual([{ period: 'p0', kWh: '10', slot: 0 }]);
    expect(first.lines).toEqual([expect.objectContaining({ type: 'energy', period: 'p0', quantity: '4', amount: '0.80' })]);
    expect(first.metering).toMatchObject({ trueUp: true, carriedOut: { banks: [], runningNetKwh: '0' } });
    // The meter's charges for the open cycle say the same.
    const meter = await stack.api(`/v1/meters/NEM-1/charges?from=${isoUtc(open.from)}&to=${isoUtc(open.to)}`);
    expect({ lines: meter.body.lines, metering: meter.body.metering }).toEqual({ lines: first.lines, metering: first.metering });
    // A late export of 3 kWh in the previous cycle: 13 kWh banked, 1 kWh billed.
    await send(previous.from + 2 * 86_400_000, 0, 3_000);
    const second = await running();
    expect(second.metering.carriedIn.banks).toEqual([{ period: 'p0', kWh: '13', slot: 0 }]);
    expect(second.total).toBe('0.20');
    // A late import of 5 kWh two cycles back: that cycle is billed it, nothing of it is carried; then a late
    // export of 1 kWh there too: 1 kWh reaches the previous cycle, 14 kWh are banked, nothing is billed.
    const twoBack = cycleContaining(previous.from - 1, ZONE, 1);
    await send(twoBack.from + 86_400_000, 5_000, 0);
    expect((await running()).metering.carriedIn.banks).toEqual([{ period: 'p0', kWh: '13', slot: 0 }]);
    await send(twoBack.from + 3 * 86_400_000, 0, 6_000);
    const third = await running();
    expect(third.metering.carriedIn.banks).toEqual([{ period: 'p0', kWh: '14', slot: 0 }]);
    expect(third.total).toBe('0.00');
    // Resumed after late data or derived in full from the settlement year's start: the same.
    const derived = await stack.api(`/v1/meters/NEM-1/charges?from=${isoUtc(open.from)}&to=${isoUtc(open.to)}`);
    expect({ lines: derived.body.lines, metering: derived.body.metering }).toEqual({ lines: third.lines, metering: third.metering });
    await endClient(client);
  });

  it('answers for the account\'s own customer and reader, 404 to another account\'s customer', async () => {
    const own = (await stack.api('/v1/tokens', { body: { role: 'customer', accountId: 'RUN' } })).body.token;
    const other = (await stack.api('/v1/tokens', { body: { role: 'customer', accountId: 'OTHER' } })).body.token;
    const reader = (await stack.api('/v1/tokens', { body: { role: 'reader' } })).body.token;
    expect((await stack.api('/v1/accounts/RUN/charges', { token: own })).status).toBe(200);
    expect((await stack.api('/v1/accounts/RUN/charges', { token: reader })).status).toBe(200);
    expect((await stack.api('/v1/accounts/RUN/charges', { token: other })).status).toBe(404);
    expect((await stack.api('/v1/accounts/NOPE/charges', { token: other })).status).toBe(404);
    expect((await stack.api('/v1/accounts/NOPE/charges')).status).toBe(404);
    const empty = await stack.api('/v1/accounts/OTHER/charges', { token: other });
    expect(empty.status).toBe(200);
    expect(empty.body).toMatchObject({ accountId: 'OTHER', meters: [], subtotal: '0.00', total: '0.00', currency: null });
  });
});
