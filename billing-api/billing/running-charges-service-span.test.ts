/**
 * Running charges of the open cycle honour service spans as the close does, through the HTTP API against
 * the real stack (the open cycle lies around now: the billing day is chosen so that it began a week ago,
 * and every meter has readings for the whole cycle, so the close of that cycle would estimate nothing):
 * - a move-in inside the open cycle: only the part in service is rated (fixed charges prorated), the
 *   previous occupant's readings of the cycle are not charged;
 * - a move-out inside the open cycle: the part before it, also when recorded after a request rated the
 *   meter whole; an account that moved out before the cycle and a meter whose service ended before it are
 *   left out;
 * - net metering: nothing stored before the service start is carried into the open cycle (equal to the
 *   charges endpoint, whose history starts there too), a move-in recorded after a request changes the next
 *   answer, and a move-out inside the open cycle settles the bank there (final window).
 * Each answer equals what the close of the cycle would bill (`rateMeterCycle` with the meters, spans and
 * carried-in state the close reads), and a store that reads the database answers the same.
 */
import Decimal from 'decimal.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isoUtc } from '../../common/time.js';
import { storageModes } from '../../test/support/database.js';
import { startTestStack, type TestStack } from '../../test/support/stack.js';
import { carriedIntoCycle, historyReadsOf } from '../charges/rating-history.js';
import { ReadingsRepository } from '../readings/readings.repository.js';
import { TariffsRepository } from '../tariffs/tariffs.repository.js';
import { createAccount, createMeter, createTariff, flatTariff, insertReadings, lineOf } from '../test-support.js';
import { BillingRepository } from './billing.repository.js';
import { cycleContaining, cycleDays } from './cycles.js';
import { rateMeterCycle } from './rate-cycle.js';
import { OpenCycleStore, RunningChargesService } from './running-charges.js';
import { serviceWindow } from './service-span.js';

const Q = 900_000;
const DAY = 86_400_000;
const KWH = 1_000_000;

/** A flat net metering rate (one period, sell = buy), imported through the URDB route, true-up in `trueUpMonth`. */
async function netMeteringTariff(stack: TestStack, id: string, trueUpMonth: number) {
  const rate = {
    label: id,
    dgrules: 'Net Metering',
    fixedchargefirstmeter: 6,
    fixedchargeunits: '$/month',
    energyratestructure: [[{ rate: 0.2, sell: 0.2 }]],
    energyweekdayschedule: Array.from({ length: 12 }, () => Array(24).fill(0)),
    energyweekendschedule: Array.from({ length: 12 }, () => Array(24).fill(0)),
  };
  const res = await stack.api('/v1/tariffs/urdb', { body: { id, timezone: 'UTC', rate, netMetering: { carryOver: 'kWh', trueUpMonth, trueUpSellRate: '0.04' } } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
}

describe.each(storageModes())('running charges honour service spans (%s storage)', (mode) => {
  let stack: TestStack;
  // A billing day six days back at least, so that the open cycle began before the lifecycle dates below.
  const billingDay = Math.min(28, new Date(Date.now() - 6 * DAY).getUTCDate());
  const open = cycleContaining(Date.now(), 'UTC', billingDay);
  const previous = cycleContaining(open.from - 1, 'UTC', billingDay);
  const twoBack = cycleContaining(previous.from - 1, 'UTC', billingDay);
  const intervals = (from: number, to: number) => (to - from) / Q;
  // Lifecycle dates: midnights inside the open cycle, before now.
  const MOVE_IN = open.from + 2 * DAY;
  const MOVE_OUT = open.from + 3 * DAY;
  // The net-metered occupant moves in ten days into the previous cycle.
  const NEM_MOVE_IN = previous.from + 10 * DAY;

  beforeAll(async () => {
    expect(open.from).toBeLessThanOrEqual(Date.now() - 5 * DAY);
    stack = await startTestStack(mode, { BILLING_CRON: 'off' });
    await createTariff(stack, flatTariff('span-flat', { timeZone: 'UTC', rate: '0.20', perDay: '0.50', perMonth: '10', tax: '0.05' }));
    // The true-up half a year away: the settlement year holds the previous cycles.
    await netMeteringTariff(stack, 'span-nem', ((new Date(open.from).getUTCMonth() + 6) % 12) + 1);

    // Move-in inside the open cycle: the previous occupant used 0.2 kWh a quarter hour, the new one 0.05.
    await createAccount(stack, 'RS-IN', 'UTC', billingDay);
    await createMeter(stack, 'M-RS-IN', 'RS-IN', 'UTC', 'span-flat');
    await insertReadings(stack, 'M-RS-IN', isoUtc(open.from), intervals(open.from, MOVE_IN), 200_000);
    await insertReadings(stack, 'M-RS-IN', isoUtc(MOVE_IN), intervals(MOVE_IN, open.to), 50_000);
    // Move-out inside the open cycle; readings go on after it (the next occupant's, not this account's).
    await createAccount(stack, 'RS-OUT', 'UTC', billingDay);
    await createMeter(stack, 'M-RS-OUT', 'RS-OUT', 'UTC', 'span-flat');
    await insertReadings(stack, 'M-RS-OUT', isoUtc(previous.from), intervals(previous.from, open.to), 50_000);
    // Moved out inside the open cycle after a request rated it whole.
    await createAccount(stack, 'RS-OUT-LATE', 'UTC', billingDay);
    await createMeter(stack, 'M-RS-OUT-LATE', 'RS-OUT-LATE', 'UTC', 'span-flat');
    await insertReadings(stack, 'M-RS-OUT-LATE', isoUtc(open.from), intervals(open.from, open.to), 50_000);
    // Moved out before the open cycle.
    await createAccount(stack, 'RS-GONE', 'UTC', billingDay);
    await createMeter(stack, 'M-RS-GONE', 'RS-GONE', 'UTC', 'span-flat');
    await insertReadings(stack, 'M-RS-GONE', isoUtc(previous.from), intervals(previous.from, open.to), 50_000);
    // Two meters, one removed before the open cycle.
    await createAccount(stack, 'RS-TWO', 'UTC', billingDay);
    await createMeter(stack, 'M-RS-TWO-A', 'RS-TWO', 'UTC', 'span-flat');
    await createMeter(stack, 'M-RS-TWO-B', 'RS-TWO', 'UTC', 'span-flat');
    await insertReadings(stack, 'M-RS-TWO-A', isoUtc(previous.from), intervals(previous.from, open.to), 50_000);
    await insertReadings(stack, 'M-RS-TWO-B', isoUtc(open.from), intervals(open.from, open.to), 50_000);

    // Net metering, move-in in the previous cycle: the previous occupant exported 0.5 kWh a quarter hour
    // (stored, never carried); the new one nets 0.2 kWh of export a quarter hour until the open cycle, then
    // imports 0.1.
    for (const account of ['RS-NEM', 'RS-NEM-LATE']) {
      const meter = `M-${account}`;
      await createAccount(stack, account, 'UTC', billingDay);
      await createMeter(stack, meter, account, 'UTC', 'span-nem');
      await insertReadings(stack, meter, isoUtc(twoBack.from), intervals(twoBack.from, NEM_MOVE_IN), 100_000, { exportMwh: 500_000 });
      await insertReadings(stack, meter, isoUtc(NEM_MOVE_IN), intervals(NEM_MOVE_IN, open.from), 100_000, { exportMwh: 300_000 });
      await insertReadings(stack, meter, isoUtc(open.from), intervals(open.from, open.to), 100_000);
    }
    // Net metering, move-out inside the open cycle: a bank from the previous cycle, settled at the move-out.
    await createAccount(stack, 'RS-NEM-OUT', 'UTC', billingDay);
    await createMeter(stack, 'M-RS-NEM-OUT', 'RS-NEM-OUT', 'UTC', 'span-nem');
    await insertReadings(stack, 'M-RS-NEM-OUT', isoUtc(previous.from), intervals(previous.from, open.to), 100_000, { exportMwh: 300_000 });
    // committed a day ago, as the gateway would have on time
    await stack.pool.query(`UPDATE meter_readings SET received_after = NULL, received_at = now() - interval '1 day'`);

    const lifecycle = async (path: string, at: number) => {
      const res = await stack.api(path, { body: { at: isoUtc(at) } });
      expect(res.status, `${path} ${JSON.stringify(res.body)}`).toBe(200);
    };
    await lifecycle('/v1/accounts/RS-IN/move-in', MOVE_IN);
    await lifecycle('/v1/accounts/RS-OUT/move-out', MOVE_OUT);
    await lifecycle('/v1/accounts/RS-GONE/move-out', open.from - DAY);
    await lifecycle('/v1/meters/M-RS-TWO-A/service-end', open.from - DAY);
    await lifecycle('/v1/accounts/RS-NEM/move-in', NEM_MOVE_IN);
    await lifecycle('/v1/accounts/RS-NEM-OUT/move-out', MOVE_OUT);
  });
  afterAll(async () => stack?.close());

  /**
   * What the close of the open cycle would bill for each meter of the account: the meters and spans the
   * close reads, what it carries in (with the service start), and the pure rating of the cycle.
   */
  async function closeSections(accountId: string) {
    const billing = new BillingRepository(stack.pool);
    const tariffsRepo = new TariffsRepository(stack.pool);
    const readingsRepo = new ReadingsRepository(stack.pool);
    const meters = (await billing.meters(stack.pool, [accountId])).filter((m) => serviceWindow(open, m.service) !== null);
    const tariffs = await tariffsRepo.forMeters(meters.map((m) => m.id));
    const sections = [];
    for (const m of meters) {
      const t = tariffs.get(m.id)!;
      const carried = await carriedIntoCycle(
        historyReadsOf(readingsRepo),
        { meterId: m.id, intervalSeconds: m.intervalSeconds, timezone: 'UTC', billingDay, tariffTimeline: t.timeline, serviceStart: m.service.start },
        open,
      );
      const [readings] = await readingsRepo.windows([{ meterId: m.id, from: open.from, to: open.to, intervalSeconds: m.intervalSeconds }]);
      const rated = rateMeterCycle({ cycle: open, meter: m, readings, tariffs: t, versionOf: (d) => tariffsRepo.versionOf(d), service: m.service, carried });
      expect(rated.estimates, m.id).toEqual([]);
      sections.push(rated.section);
    }
    return sections;
  }

  /** The account's running charges, checked against the close of the cycle and against a store reading the database. */
  async function running(accountId: string) {
    const res = await stack.api(`/v1/accounts/${accountId}/charges`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const sections = await closeSections(accountId);
    expect(res.body.meters.map((m: any) => m.meterId)).toEqual(sections.map((s) => s.meterId));
    res.body.meters.forEach((m: any, i: number) => {
      const s = sections[i];
      expect(m, m.meterId).toMatchObject({
        lines: s.lines,
        subtotal: s.subtotal,
        taxes: s.taxes,
        total: s.total,
        coverage: s.coverage,
        pieces: s.pieces,
        tariffIds: s.tariffIds,
        from: isoUtc(open.from),
        to: isoUtc(open.to),
      });
      expect(m.inService, m.meterId).toEqual(s.inService);
      expect(m.metering, m.meterId).toEqual(s.metering);
    });
    const sum = (k: 'subtotal' | 'taxes' | 'total') => sections.reduce((t, s) => t.plus(s[k]), new Decimal(0)).toFixed(2);
    expect({ subtotal: res.body.subtotal, taxes: res.body.taxes, total: res.body.total }).toEqual({ subtotal: sum('subtotal'), taxes: sum('taxes'), total: sum('total') });
    const fromDatabase = await new RunningChargesService(
      new BillingRepository(stack.pool),
      new TariffsRepository(stack.pool),
      new OpenCycleStore(new ReadingsRepository(stack.pool), { capacity: 10, live: false }),
    ).forAccount(accountId);
    expect(JSON.parse(JSON.stringify(fromDatabase))).toEqual(res.body);
    return res.body;
  }

  const fixed = (meter: any) => lineOf(meter.lines, 'fixed').map((l: any) => [l.quantity, l.unit]);
  const monthShare = (from: number, to: number) => new Decimal((to - from) / DAY).div(cycleDays(open, 'UTC').days).toDecimalPlaces(6).toString();

  it('after a move-in inside the open cycle, rates only the days in service and none of the previous occupant\'s readings', async () => {
    const body = await running('RS-IN');
    const [m] = body.meters;
    expect(m.inService).toEqual({ from: isoUtc(MOVE_IN), to: isoUtc(open.to) });
    const inService = intervals(MOVE_IN, open.to);
    // 0.05 kWh a quarter hour in service; the 0.2 kWh of the previous occupant's quarter hours are not in it.
    expect(lineOf(m.lines, 'energy').map((l: any) => l.quantity)).toEqual([new Decimal(inService).times('0.05').toString()]);
    expect(fixed(m)).toEqual([
      [String((open.to - MOVE_IN) / DAY), 'day'],
      [monthShare(MOVE_IN, open.to), 'month'],
    ]);
    expect(m.coverage).toEqual({ expectedIntervals: inService, actualIntervals: inService, estimatedIntervals: 0, missingIntervals: 0 });
  });

  it('after a move-out inside the open cycle, rates the days before it; leaves out an account moved out and a meter removed before the cycle', async () => {
    const [m] = (await running('RS-OUT')).meters;
    expect(m.inService).toEqual({ from: isoUtc(open.from), to: isoUtc(MOVE_OUT) });
    expect(lineOf(m.lines, 'energy').map((l: any) => l.quantity)).toEqual([new Decimal(intervals(open.from, MOVE_OUT)).times('0.05').toString()]);
    expect(fixed(m)).toEqual([
      ['3', 'day'],
      [monthShare(open.from, MOVE_OUT), 'month'],
    ]);

    const gone = await running('RS-GONE');
    expect(gone).toMatchObject({ accountId: 'RS-GONE', meters: [], currency: null, subtotal: '0.00', taxes: '0.00', total: '0.00', asOf: null });
    expect(gone.coverage).toEqual({ expectedIntervals: 0, actualIntervals: 0, estimatedIntervals: 0, missingIntervals: 0 });

    const two = await running('RS-TWO');
    expect(two.meters.map((x: any) => [x.meterId, x.inService])).toEqual([['M-RS-TWO-B', undefined]]);
  });

  it('follows a move-out recorded after a request rated the meter', async () => {
    const [before] = (await running('RS-OUT-LATE')).meters;
    expect(before.inService).toBeUndefined();
    const res = await stack.api('/v1/accounts/RS-OUT-LATE/move-out', { body: { at: isoUtc(MOVE_OUT) } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const [after] = (await running('RS-OUT-LATE')).meters;
    expect(after.inService).toEqual({ from: isoUtc(open.from), to: isoUtc(MOVE_OUT) });
    expect(fixed(after)).toEqual([
      ['3', 'day'],
      [monthShare(open.from, MOVE_OUT), 'month'],
    ]);
  });

  it('carries nothing stored before a net-metered meter\'s service start into the open cycle', async () => {
    const [m] = (await running('RS-NEM')).meters;
    // The bank holds the new occupant's surplus only: 0.2 kWh a quarter hour from the move-in to the open cycle.
    const banked = m.metering.carriedIn.banks.reduce((t: Decimal, b: any) => t.plus(b.kWh), new Decimal(0));
    expect(banked.toString()).toBe(new Decimal(intervals(NEM_MOVE_IN, open.from)).times('0.2').toString());
    // The charges endpoint derives the same (its history starts at the service start too).
    const charges = await stack.api(`/v1/meters/M-RS-NEM/charges?from=${isoUtc(open.from)}&to=${isoUtc(open.to)}`);
    expect(charges.status, JSON.stringify(charges.body)).toBe(200);
    expect(charges.body.metering).toEqual(m.metering);
    // Its energy lines too (its monthly charge is prorated by calendar month: it is given no billing cycle).
    expect(charges.body.lines.filter((l: any) => l.type !== 'fixed')).toEqual(m.lines.filter((l: any) => l.type !== 'fixed'));
  });

  it('follows a move-in recorded after a request: the state it kept carried in is derived again', async () => {
    const before = (await running('RS-NEM-LATE')).meters[0];
    const all = before.metering.carriedIn.banks.reduce((t: Decimal, b: any) => t.plus(b.kWh), new Decimal(0));
    const res = await stack.api('/v1/accounts/RS-NEM-LATE/move-in', { body: { at: isoUtc(NEM_MOVE_IN) } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const after = (await running('RS-NEM-LATE')).meters[0];
    const banked = after.metering.carriedIn.banks.reduce((t: Decimal, b: any) => t.plus(b.kWh), new Decimal(0));
    expect(banked.toString()).toBe(new Decimal(intervals(NEM_MOVE_IN, open.from)).times('0.2').toString());
    expect(all.greaterThan(banked)).toBe(true);
  });

  it('settles a net-metered meter\'s bank in the open cycle when its service ends there', async () => {
    const [m] = (await running('RS-NEM-OUT')).meters;
    expect(m.inService).toEqual({ from: isoUtc(open.from), to: isoUtc(MOVE_OUT) });
    expect(m.metering.carriedIn.banks.length).toBeGreaterThan(0);
    expect(m.metering).toMatchObject({ trueUp: true, settledBy: 'service_end' });
    // The running net paid out at the true-up sell rate: the surplus of the previous cycle and of the days in service.
    const net = new Decimal(intervals(previous.from, MOVE_OUT)).times('0.2');
    expect(m.lines.filter((l: any) => l.period === 'trueup').map((l: any) => [l.type, l.quantity, l.rate])).toEqual([['export_credit', net.toString(), '0.04']]);
  });
});
