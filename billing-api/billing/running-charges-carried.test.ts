/**
 * What running charges carry into the open cycle under net metering, kept between requests, against the
 * database: a late reading before the open cycle written by anything (ingest_readings as the gateway
 * commits, a row inserted by hand, estimates stored by a close) is in the next answer, equal to the charges
 * endpoint's derivation of the same cycle, in the API-only configuration (no gateway feeding the store:
 * RUNNING_CHARGES_SOURCE=database) and with the store fed by the gateway alike; and a request that finds
 * nothing committed reads no history. At the edge of the late-readings index: a reading before the cycle
 * committed within the hour of its interval, and one whose transaction began before the last request.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { isoUtc } from '../../common/time.js';
import { storageModes } from '../../test/support/database.js';
import { startTestStack, type TestStack } from '../../test/support/stack.js';
import { ReadingsRepository } from '../readings/readings.repository.js';
import { TariffsRepository } from '../tariffs/tariffs.repository.js';
import { billingRun, createAccount, ingestReadings, insertReadings } from '../test-support.js';
import { BillingRepository } from './billing.repository.js';
import { cycleContaining } from './cycles.js';
import { OpenCycleStore, RunningChargesService } from './running-charges.js';

const Q = 900_000;
const DAY = 86_400_000;
const KWH = 1_000_000;

/** A flat net metering rate whose settlement year (true-up in `trueUpMonth`) is imported through the URDB route. */
async function netMeteringTariff(stack: TestStack, label: string, trueUpMonth: number) {
  const rate = {
    label,
    dgrules: 'Net Metering',
    energyratestructure: [[{ rate: 0.2, sell: 0.2 }]],
    energyweekdayschedule: Array.from({ length: 12 }, () => Array(24).fill(0)),
    energyweekendschedule: Array.from({ length: 12 }, () => Array(24).fill(0)),
  };
  const res = await stack.api('/v1/tariffs/urdb', { body: { timezone: 'UTC', rate, netMetering: { carryOver: 'kWh', trueUpMonth } } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
}

/** Counts the history reads (windows ending at or before the open cycle's start) of a readings repository. */
function historyReadsOf(readings: ReadingsRepository, cycleFrom: number) {
  const spy = vi.spyOn(readings, 'windows');
  return {
    froms: () => spy.mock.calls.flatMap(([windows]) => windows.filter((w) => w.to <= cycleFrom).map((w) => w.from)),
    reset: () => spy.mockClear(),
  };
}

const monthOf = (t: number) => new Date(t).getUTCMonth() + 1;

describe.each(storageModes().flatMap((mode) => (['database', 'auto'] as const).map((source) => [mode, source] as const)))(
  'running charges carry net metering into the open cycle between requests (%s storage, RUNNING_CHARGES_SOURCE=%s)',
  (mode, source) => {
    let stack: TestStack;
    const open = cycleContaining(Date.now(), 'UTC', 1);
    const previous = cycleContaining(open.from - 1, 'UTC', 1);
    const twoBack = cycleContaining(previous.from - 1, 'UTC', 1);
    const meterCharges = async (id: string) => {
      const res = await stack.api(`/v1/meters/${id}/charges?from=${isoUtc(open.from)}&to=${isoUtc(open.to)}`);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return { lines: res.body.lines, metering: res.body.metering };
    };
    const running = async (account: string) => {
      const res = await stack.api(`/v1/accounts/${account}/charges`);
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const { lines, metering } = res.body.meters[0];
      return { lines, metering };
    };

    beforeAll(async () => {
      stack = await startTestStack(mode, { BILLING_CRON: 'off', RUNNING_CHARGES_SOURCE: source, BILLING_GRACE_DAYS: '0' });
      // The true-up in the open cycle's month: the previous cycle carries into it.
      await netMeteringTariff(stack, 'kept-nem', monthOf(open.to - 1));
      await createAccount(stack, 'KEPT', 'UTC', 1);
      expect((await stack.api('/v1/meters', { body: { id: 'KEPT-1', accountId: 'KEPT', timezone: 'UTC', intervalSeconds: 900, tariffId: 'kept-nem' } })).status).toBe(201);
      // The previous cycle exports 0.5 kWh a quarter hour and imports 0.1, with a gap of an hour on its second
      // day (estimated at close); the open cycle imports 0.1 a quarter hour for a day.
      const n = (previous.to - previous.from) / Q;
      await insertReadings(stack, 'KEPT-1', isoUtc(previous.from), 100, 100_000, { exportMwh: 500_000 });
      await insertReadings(stack, 'KEPT-1', isoUtc(previous.from + 104 * Q), n - 104, 100_000, { exportMwh: 500_000 });
      await insertReadings(stack, 'KEPT-1', isoUtc(open.from), 96, 100_000);
      // committed a day ago, as the gateway would have on time
      await stack.pool.query(`UPDATE meter_readings SET received_after = NULL, received_at = now() - interval '1 day'`);
    });
    afterAll(async () => stack?.close());

    it('keeps the carried-in state while nothing before the cycle is committed, and follows a late reading and a close\'s estimates', async () => {
      const reads = historyReadsOf(stack.services!.store.readings, open.from);
      const first = await running('KEPT');
      expect(first.metering.carriedIn.banks.length).toBe(1);
      expect(first).toEqual(await meterCharges('KEPT-1'));
      expect(reads.froms().length).toBeGreaterThan(0);

      // Nothing committed before the cycle since: the kept state, no history read.
      reads.reset();
      expect(await running('KEPT')).toEqual(first);
      expect(reads.froms()).toEqual([]);

      // A late export two cycles back, committed as the gateway commits: in the next answer, derived again
      // from that cycle on (the window holding it), not from the settlement year's start.
      expect(await ingestReadings(stack, [{ meterId: 'KEPT-1', intervalStart: twoBack.from + 2 * DAY, intervalSeconds: 900, importMwh: 0, exportMwh: 3 * KWH }])).toEqual({ stored: 1 });
      reads.reset();
      const second = await running('KEPT');
      expect(reads.froms()).toEqual([twoBack.from]);
      expect(second).toEqual(await meterCharges('KEPT-1'));
      expect(Number(second.metering.carriedIn.banks[0].kWh)).toBeGreaterThan(Number(first.metering.carriedIn.banks[0].kWh));
      // Seen once, not a change again.
      reads.reset();
      expect(await running('KEPT')).toEqual(second);
      expect(reads.froms()).toEqual([]);

      // A close of the previous cycle estimates its missing hour (readings before the open cycle, received
      // at the close): in the next answer.
      const run = await billingRun(stack, new Date().toISOString());
      expect(run.body, JSON.stringify(run.body)).toMatchObject({ state: 'finished', failures: [] });
      const estimated = await stack.pool.query(
        `SELECT count(*)::int AS n FROM readings WHERE meter_id = 'KEPT-1' AND quality = 'estimated' AND interval_start >= $1 AND interval_start < $2`,
        [new Date(previous.from + 100 * Q), new Date(previous.from + 104 * Q)],
      );
      expect(estimated.rows[0].n).toBe(4);
      const third = await running('KEPT');
      expect(third).toEqual(await meterCharges('KEPT-1'));
      expect(third.metering.carriedIn).not.toEqual(second.metering.carriedIn);
    });

    it('follows a reading whose transaction began before the last request and committed after it', async () => {
      const before = await running('KEPT');
      // received_at is the transaction's start: the reading is received before the request below reads
      // anything, and committed after it answered.
      const client = await stack.pool.connect();
      try {
        await client.query('BEGIN');
        await client.query(
          `INSERT INTO readings (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality) VALUES ('KEPT-1', $1, 900, 0, $2, 'actual')`,
          [new Date(twoBack.from + 3 * DAY), 2 * KWH],
        );
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        expect(await running('KEPT')).toEqual(before);
        await client.query('COMMIT');
      } finally {
        client.release();
      }
      const after = await running('KEPT');
      expect(after).toEqual(await meterCharges('KEPT-1'));
      expect(after.metering.carriedIn).not.toEqual(before.metering.carriedIn);
    });
  },
);

describe.each(storageModes())('running charges at the edge of the late-readings index (%s storage)', (mode) => {
  let stack: TestStack;
  // The service's clock 40 days ahead: the open cycle starts after the database's now(), so a reading of the
  // last hour, committed on time, lies before the cycle and outside the late-readings index.
  const clock = () => Date.now() + 40 * DAY;
  const open = cycleContaining(clock(), 'UTC', 1);
  const service = (capacity: number) => {
    const store = new OpenCycleStore(new ReadingsRepository(stack.pool), { capacity, live: false });
    return { store, charges: new RunningChargesService(new BillingRepository(stack.pool), new TariffsRepository(stack.pool), store, clock) };
  };
  const carriedIn = async (s: { charges: RunningChargesService }) => {
    const charges = await s.charges.forAccount('EDGE');
    return JSON.parse(JSON.stringify(charges!.meters[0].metering!.carriedIn));
  };

  beforeAll(async () => {
    stack = await startTestStack(mode, { BILLING_CRON: 'off', RUNNING_CHARGES_SOURCE: 'database' });
    await netMeteringTariff(stack, 'edge-nem', monthOf(open.to - 1));
    await createAccount(stack, 'EDGE', 'UTC', 1);
    expect((await stack.api('/v1/meters', { body: { id: 'EDGE-1', accountId: 'EDGE', timezone: 'UTC', intervalSeconds: 900, tariffId: 'edge-nem' } })).status).toBe(201);
    const from = Math.floor((Date.now() - 2 * DAY) / Q) * Q;
    await insertReadings(stack, 'EDGE-1', isoUtc(from), 150, 100_000, { exportMwh: 400_000 });
    await stack.pool.query(`UPDATE meter_readings SET received_after = NULL, received_at = now() - interval '1 day'`);
  });
  afterAll(async () => stack?.close());

  it('follows a reading before the cycle committed within the hour of its interval', async () => {
    const kept = service(10);
    const reads = historyReadsOf(kept.store.readings, open.from);
    const first = await carriedIn(kept);
    expect(first).toEqual(await carriedIn(service(0)));
    reads.reset();
    expect(await carriedIn(kept)).toEqual(first);
    expect(reads.froms()).toEqual([]);

    // The last completed quarter hour, committed now through ingest_readings: on time, not in the late index.
    const start = Math.floor(Date.now() / Q) * Q - Q;
    expect(await ingestReadings(stack, [{ meterId: 'EDGE-1', intervalStart: start, intervalSeconds: 900, importMwh: 0, exportMwh: 5 * KWH }])).toEqual({ stored: 1 });
    const stored = await stack.pool.query(`SELECT received_at - interval_start <= interval '1 hour' AS on_time FROM readings WHERE meter_id = 'EDGE-1' AND interval_start = $1`, [new Date(start)]);
    expect(stored.rows).toEqual([{ on_time: true }]);

    const after = await carriedIn(kept);
    expect(after).not.toEqual(first);
    expect(after).toEqual(await carriedIn(service(0)));
  });
});
