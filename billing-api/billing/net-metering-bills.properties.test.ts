/**
 * Net metering and net billing at the bill level, through the HTTP API against the real stack: re-sending,
 * reordering or delaying readings changes no closed bill, only adjustments, and the year's total equals a
 * re-rating of the final data. For each carrying mode (CONTRACT.md section 4): net metering with a kWh bank
 * and a true-up paid at a rate, net metering with a money balance, net billing with a money balance.
 *
 * Per mode, one tariff and accounts on it whose meters end with the same thirteen months of hourly readings
 * (a summer surplus, so that banks and balances build and the true-up pays). The reference account (REF)
 * receives every reading before the first billing run. Each other account (PERT) receives them as a
 * delivery schedule drawn by fast-check (fixed seed) says: quarter-cycle batches, in several messages, in
 * a random order; some batches delayed past one to three billing runs (late data: the close estimates the
 * gap, the actual readings replace the estimates later), some partly re-sent. A billing run closes each
 * month; the last one comes after every delivery, so that every late reading has been adjusted.
 */
import fc from 'fast-check';
import { DateTime } from 'luxon';
import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import { Dec } from '../../rating/money.js';
import { storageModes } from '../../test/support/database.js';
import { startTestStack, type TestStack } from '../../test/support/stack.js';
import { billingRun, createAccount, eveningPeakUrdbRate, ingestReadings, lineOf, type IngestedReading } from '../test-support.js';
import { cycleContaining, localDate, type BillingCycle } from './cycles.js';

const ZONE = 'America/Los_Angeles';
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const KWH = 1_000_000; // mWh, the readings' unit
const SEED = 20_261_130;
/** delivery schedules drawn per mode (one PERT account each) */
const SCHEDULES_PER_MODE = 3;

/** October 2025 to October 2026, billing day 1: thirteen cycles; the last billing run closes the last one. */
const CYCLES: BillingCycle[] = [];
for (let from = DateTime.fromObject({ year: 2025, month: 10, day: 1 }, { zone: ZONE }).toMillis(); CYCLES.length < 13; ) {
  const cycle = cycleContaining(from, ZONE, 1);
  CYCLES.push(cycle);
  from = cycle.to;
}
const LAST = CYCLES.length - 1;
/** The run after delivery slot s closes cycle s (cycles end by asOf minus the 3 grace days). */
const runAsOf = (s: number) => new Date(CYCLES[s].to + 4 * DAY_MS).toISOString();
const billId = (accountId: string, k: number) => `${accountId}.${localDate(CYCLES[k].from, ZONE)}`;

/** Peak photovoltaic output by local month (kW), and the household's load: winter imports, summer exports. */
const SOLAR_PEAK_KW = [1.6, 2.4, 3.4, 4.6, 5.8, 6.6, 6.8, 6.2, 5.2, 3.6, 2.2, 1.5];

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32), for the meter's load and clouds. */
function randomSource(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** One reading per hour of the thirteen cycles (the final data of every meter). */
function hourlyData(): Omit<IngestedReading, 'meterId'>[] {
  const random = randomSource(SEED);
  const out: Omit<IngestedReading, 'meterId'>[] = [];
  for (let t = CYCLES[0].from; t < CYCLES[LAST].to; t += HOUR_MS) {
    const local = DateTime.fromMillis(t, { zone: ZONE });
    const h = local.hour;
    const sun = Math.max(0, Math.sin((Math.PI * (h + 0.5 - 6)) / 14));
    const solarKw = SOLAR_PEAK_KW[local.month - 1] * sun * (0.55 + 0.45 * random());
    const heating = local.month <= 2 || local.month >= 11 ? 0.4 : 0;
    const loadKw = 0.35 + heating + (h >= 17 && h < 22 ? 0.9 : 0) + (h >= 6 && h < 9 ? 0.4 : 0) + 0.6 * random();
    const netKw = loadKw - solarKw;
    out.push({ intervalStart: t, intervalSeconds: 3600, importMwh: Math.round(Math.max(netKw, 0) * KWH), exportMwh: Math.round(Math.max(-netKw, 0) * KWH) });
  }
  return out;
}

const DATA = hourlyData();
/** Each cycle's data in four batches: [first, end) indices into DATA, and the cycle. */
const BATCHES: { cycle: number; first: number; end: number }[] = CYCLES.flatMap((cycle, k) => {
  const first = DATA.findIndex((r) => r.intervalStart >= cycle.from);
  const end = DATA.findIndex((r) => r.intervalStart >= cycle.to);
  const last = end < 0 ? DATA.length : end;
  const quarter = Math.ceil((last - first) / 4);
  return [0, 1, 2, 3].map((q) => ({ cycle: k, first: first + q * quarter, end: Math.min(last, first + (q + 1) * quarter) }));
});

/** One message of a schedule: before which billing run it is delivered, its place among that slot's messages, what it holds. */
interface Message {
  /** the cycle its readings lie in */
  cycle: number;
  slot: number;
  order: number;
  first: number;
  end: number;
  resend: boolean;
  /** delivered after the run that closed its cycle */
  late: boolean;
  /** an hour or two the close of its cycle found missing between stored neighbours */
  shortGap?: boolean;
}

interface BatchPlan {
  lateDraw: number;
  onTimeSlot: number;
  delay: number;
  messages: number;
  orders: number[];
  resendDraw: number;
  resendAfter: number;
  resendStart: number;
  resendLength: number;
  stragglerDraw: number;
  stragglerStart: number;
  stragglerLength: number;
  stragglerDelay: number;
}

const batchPlanArb = (cycle: number): fc.Arbitrary<BatchPlan> =>
  fc.record({
    lateDraw: fc.integer({ min: 0, max: 99 }),
    onTimeSlot: fc.integer({ min: 0, max: cycle }),
    delay: fc.integer({ min: 1, max: 3 }),
    messages: fc.integer({ min: 1, max: 3 }),
    orders: fc.array(fc.integer(), { minLength: 4, maxLength: 4 }),
    resendDraw: fc.integer({ min: 0, max: 99 }),
    resendAfter: fc.integer({ min: 0, max: 3 }),
    resendStart: fc.nat(),
    resendLength: fc.integer({ min: 1, max: 240 }),
    stragglerDraw: fc.integer({ min: 0, max: 99 }),
    stragglerStart: fc.nat(),
    stragglerLength: fc.integer({ min: 1, max: 2 }),
    stragglerDelay: fc.integer({ min: 0, max: 3 }),
  });

/** The parts of [first, end) outside [holeFirst, holeEnd). */
function outside(first: number, end: number, holeFirst: number, holeEnd: number): [number, number][] {
  return (
    [
      [first, Math.min(end, holeFirst)],
      [Math.max(first, holeEnd), end],
    ] as [number, number][]
  ).filter(([a, b]) => a < b);
}

/**
 * A delivery schedule: every batch delivered once (30 % of them late: after the run that closes their cycle,
 * by one to three runs, never after the last run), a quarter of them partly re-sent in the same slot or a
 * later one, a fifth of them with an hour or two sent apart and later, and the messages of each slot in a
 * random order. The batch holding the first hour arrives before the first run (the account's first cycle
 * is the one holding its first reading). One slot before the last is quiet: only a resend of readings
 * already stored arrives for the closed cycles. Every schedule delays at least two batches, leaves a short
 * gap between stored neighbours at some close, and delays a batch of a cycle before the true-up until
 * after the true-up cycle closed (late data that changes what the year settled).
 */
const scheduleArb = (trueUpCycle: number): fc.Arbitrary<Message[]> => fc
  .tuple(fc.tuple(...BATCHES.map((b) => batchPlanArb(b.cycle))), fc.record({ quietSlot: fc.integer({ min: 2, max: LAST - 1 }), pick: fc.nat(), order: fc.integer() }))
  .map(([plans, quiet]) => {
    const messages = plans.flatMap((plan, i) => {
      const batch = BATCHES[i];
      const late = i > 0 && batch.cycle < LAST && plan.lateDraw < 30;
      const slot = i === 0 ? 0 : late ? Math.min(batch.cycle + plan.delay, LAST) : plan.onTimeSlot;
      // A straggler: an hour or two of the batch in a message of its own, delivered up to three runs later
      // (a gap the close estimates linearly between its neighbours when they are there).
      const straggler = i > 0 && plan.stragglerDraw < 20;
      const strayFirst = batch.first + 1 + (plan.stragglerStart % (batch.end - batch.first - 3));
      const strayEnd = straggler ? Math.min(batch.end, strayFirst + plan.stragglerLength) : strayFirst;
      const size = Math.ceil((batch.end - batch.first) / plan.messages);
      const messages: Message[] = [];
      for (let m = 0; m < plan.messages; m++) {
        const [first, end] = [batch.first + m * size, Math.min(batch.end, batch.first + (m + 1) * size)];
        for (const [a, b] of outside(first, end, strayFirst, strayEnd)) messages.push({ cycle: batch.cycle, slot, order: plan.orders[m], first: a, end: b, resend: false, late });
      }
      const resend = plan.resendDraw < 25;
      const resendFirst = batch.first + (plan.resendStart % (batch.end - batch.first));
      const resendEnd = Math.min(batch.end, resendFirst + plan.resendLength);
      const resendSlot = Math.min(slot + plan.resendAfter, LAST);
      if (resend) messages.push({ cycle: batch.cycle, slot: resendSlot, order: plan.orders[3], first: resendFirst, end: resendEnd, resend: true, late: resendSlot > batch.cycle });
      if (straggler) {
        const straySlot = Math.min(slot + plan.stragglerDelay, LAST);
        // The gap is still there when the cycle closes unless the resend brought those hours before.
        const filled = resend && resendSlot <= batch.cycle && resendFirst < strayEnd && strayFirst < resendEnd;
        const shortGap = !late && straySlot > batch.cycle && !filled;
        messages.push({ cycle: batch.cycle, slot: straySlot, order: plan.orders[2] ^ 1, first: strayFirst, end: strayEnd, resend: false, late: straySlot > batch.cycle, shortGap });
      }
      return messages;
    });
    // A quiet slot: nothing for the closed cycles arrives before its run but a resend of readings stored
    // earlier (what arrived then waits for the next run).
    for (const m of messages) if (m.slot === quiet.quietSlot && m.cycle < quiet.quietSlot) m.slot++;
    const stored = messages.filter((m) => !m.resend && m.slot < quiet.quietSlot && m.cycle < quiet.quietSlot);
    const resent = stored[quiet.pick % stored.length];
    messages.push({ ...resent, slot: quiet.quietSlot, order: quiet.order, resend: true, late: true, shortGap: false });
    return messages;
  })
  .filter(
    (messages) =>
      messages.filter((m) => m.late && !m.resend).length >= 2 &&
      messages.some((m) => m.shortGap) &&
      messages.some((m) => !m.resend && m.cycle < trueUpCycle && m.slot > trueUpCycle),
  );

interface Mode {
  key: string;
  tariffId: string;
  dgrules: string;
  options: Record<string, unknown>;
  /** index of the cycle that settles the year (its last local day in the true-up month) */
  trueUpCycle: number;
}

const MODES: Mode[] = [
  { key: 'KWH', tariffId: 'props-nem-kwh', dgrules: 'Net Metering', options: { netMetering: { carryOver: 'kWh', trueUpMonth: 7, trueUpSellRate: '0.04' } }, trueUpCycle: 9 },
  { key: 'NMD', tariffId: 'props-nem-dollars', dgrules: 'Net Metering', options: { netMetering: { carryOver: 'dollars', trueUpMonth: 8 } }, trueUpCycle: 10 },
  { key: 'NBD', tariffId: 'props-nb-dollars', dgrules: 'Net Billing Instantaneous', options: { netBilling: { carryOver: 'dollars', trueUpMonth: 6 } }, trueUpCycle: 8 },
];

/** Two TOU periods (peak 16:00-21:00 on weekdays), a block tier off-peak, per-period sell rates, a monthly charge. */
const urdbRate = (mode: Mode) =>
  eveningPeakUrdbRate({
    label: mode.tariffId,
    name: `Properties ${mode.key}`,
    dgrules: mode.dgrules,
    monthlyCharge: 10,
    periods: [
      [
        { max: 350, rate: 0.17, sell: 0.05 },
        { rate: 0.24, sell: 0.05 },
      ],
      [{ rate: 0.34, sell: 0.09 }],
    ],
  });

const money = (value: string | number) => new Dec(value);
const cents = (value: Dec) => value.toFixed(2);

describe.each(storageModes())('net metering bills under any delivery of the readings (%s storage)', (storage) => {
  let stack: TestStack;
  const accounts = MODES.map((mode) => ({
    mode,
    ref: `${mode.key}-REF`,
    perts: fc.sample(scheduleArb(mode.trueUpCycle), { seed: SEED, numRuns: SCHEDULES_PER_MODE }).map((schedule, i) => ({ accountId: `${mode.key}-P${i}`, schedule })),
  }));
  const meterOf = (accountId: string) => `M-${accountId}`;
  /** each bill's body as GET answered it right after the run that closed it */
  const firstSeen = new Map<string, any>();
  /** per PERT account: outcomes of ingestion, and how many readings were re-sent */
  const ingested = new Map<string, { outcomes: Record<string, number>; resent: number }>();
  const finalBills = new Map<string, any>();
  const charges = new Map<string, any>();
  const chargesOf = (accountId: string, k: number) => charges.get(`${accountId} ${k}`);

  beforeAll(async () => {
    stack = await startTestStack(storage, { BILLING_CRON: 'off', BILLING_GRACE_DAYS: '3' });
    for (const { mode, ref, perts } of accounts) {
      const tariff = await stack.api('/v1/tariffs/urdb', { body: { timezone: ZONE, rate: urdbRate(mode), ...mode.options } });
      expect(tariff.status, JSON.stringify(tariff.body)).toBe(201);
      for (const accountId of [ref, ...perts.map((p) => p.accountId)]) {
        await createAccount(stack, accountId, ZONE, 1);
        const meter = await stack.api('/v1/meters', { body: { id: meterOf(accountId), accountId, timezone: ZONE, intervalSeconds: 3600, tariffId: mode.tariffId } });
        expect(meter.status, JSON.stringify(meter.body)).toBe(201);
      }
      for (let i = 0; i < DATA.length; i += 2000) {
        const outcomes = await ingestReadings(stack, DATA.slice(i, i + 2000).map((r) => ({ ...r, meterId: meterOf(ref) })));
        expect(outcomes).toEqual({ stored: Math.min(2000, DATA.length - i) });
      }
    }
  });
  afterAll(async () => stack?.close());

  it('delivers each schedule between monthly billing runs and closes one cycle of every account per run', { timeout: 240_000 }, async () => {
    const allAccounts = accounts.flatMap((a) => [a.ref, ...a.perts.map((p) => p.accountId)]);
    for (const { perts } of accounts) for (const p of perts) ingested.set(p.accountId, { outcomes: {}, resent: 0 });
    for (let slot = 0; slot <= LAST; slot++) {
      for (const { perts } of accounts) {
        for (const { accountId, schedule } of perts) {
          const messages = schedule.filter((m) => m.slot === slot).sort((a, b) => a.order - b.order || a.first - b.first);
          const tally = ingested.get(accountId)!;
          for (const message of messages) {
            const outcomes = await ingestReadings(stack, DATA.slice(message.first, message.end).map((r) => ({ ...r, meterId: meterOf(accountId) })));
            for (const [outcome, n] of Object.entries(outcomes)) tally.outcomes[outcome] = (tally.outcomes[outcome] ?? 0) + n;
            if (message.resend) tally.resent += message.end - message.first;
          }
        }
      }
      const run = await billingRun(stack, runAsOf(slot));
      expect(run.body, `run ${slot}`).toMatchObject({ state: 'finished', billsCreated: allAccounts.length, failures: [], failureCount: 0 });
      for (const accountId of allAccounts) {
        const bill = await stack.api(`/v1/bills/${billId(accountId, slot)}`);
        expect(bill.status, `${billId(accountId, slot)} ${JSON.stringify(bill.body)}`).toBe(200);
        firstSeen.set(bill.body.id, bill.body);
      }
      // A month passes before the next run: what was committed before this run is a day older by then, so
      // that the next close finds as late data exactly what is delivered after this run (it looks back
      // LATE_DATA_MARGIN_MS before this close).
      await stack.pool.query(`UPDATE meter_readings SET received_after = NULL, received_at = now() - interval '1 day' WHERE flags & 1 = 0 AND received_at > now() - interval '1 hour'`);
    }
    for (const accountId of allAccounts) {
      for (let k = 0; k <= LAST; k++) {
        const bill = await stack.api(`/v1/bills/${billId(accountId, k)}`);
        finalBills.set(billId(accountId, k), bill.body);
        const rated = await stack.api(`/v1/meters/${meterOf(accountId)}/charges?from=${new Date(CYCLES[k].from).toISOString()}&to=${new Date(CYCLES[k].to).toISOString()}`);
        expect(rated.status, JSON.stringify(rated.body)).toBe(200);
        charges.set(`${accountId} ${k}`, rated.body);
      }
    }
  });

  describe.each(MODES.map((mode) => [mode.key, mode] as const))('%s', (_key, mode) => {
    const { ref, perts } = accounts.find((a) => a.mode === mode)!;

    it('ingestion stores every hour once: a re-sent reading is counted as a duplicate, an actual one replaces the estimate of a closed gap', async () => {
      for (const { accountId } of perts) {
        const { outcomes, resent } = ingested.get(accountId)!;
        expect(Object.keys(outcomes).filter((o) => !['stored', 'replaced', 'duplicate'].includes(o)), accountId).toEqual([]);
        expect(outcomes.duplicate ?? 0, accountId).toBe(resent);
        expect((outcomes.stored ?? 0) + (outcomes.replaced ?? 0), accountId).toBe(DATA.length);
        // Late batches left gaps that the closes estimated; the actual readings replaced those estimates.
        expect(outcomes.replaced ?? 0, accountId).toBeGreaterThan(0);
        // The closes estimated long gaps by profile and short ones linearly between stored neighbours.
        const estimated = Array.from({ length: LAST + 1 }, (_, k) => finalBills.get(billId(accountId, k)).meters[0].estimated);
        expect(estimated.some((e) => e.profile > 0) && estimated.some((e) => e.linear > 0), `${accountId} ${JSON.stringify(estimated)}`).toBe(true);
        const stored = await stack.pool.query(
          `SELECT count(*)::int AS n, count(*) FILTER (WHERE quality = 'estimated')::int AS estimated, sum(import_mwh)::text AS import, sum(export_mwh)::text AS export FROM readings WHERE meter_id = $1`,
          [meterOf(accountId)],
        );
        expect(stored.rows[0], accountId).toEqual({
          n: DATA.length,
          estimated: 0,
          import: String(DATA.reduce((s, r) => s + r.importMwh, 0)),
          export: String(DATA.reduce((s, r) => s + r.exportMwh, 0)),
        });
      }
    });

    it('REF: every bill is the re-rating of its cycle, starts from what the previous bill carried out, and the true-up cycle pays', () => {
      for (let k = 0; k <= LAST; k++) {
        const bill = finalBills.get(billId(ref, k));
        const [meter] = bill.meters;
        const rated = chargesOf(ref, k);
        expect(bill.adjustments, bill.id).toEqual([]);
        expect(meter.lines, bill.id).toEqual(rated.lines);
        expect(meter.total, bill.id).toBe(rated.total);
        expect(meter.metering, bill.id).toEqual(rated.metering);
        expect(meter.metering.trueUp, bill.id).toBe(k === mode.trueUpCycle);
        if (k === 0) expect(meter.metering.carriedIn, bill.id).toMatchObject({ banks: [], runningNetKwh: '0', creditBalance: '0' });
        else expect(meter.metering.carriedIn, bill.id).toEqual(finalBills.get(billId(ref, k - 1)).meters[0].metering.carriedOut);
        // The settlement is paid in the true-up cycle only, and pays something.
        const trueUp: any[] = lineOf(meter.lines, 'export_credit').filter((l: any) => l.period === 'trueup');
        if (k === mode.trueUpCycle) {
          expect(trueUp, bill.id).toHaveLength(1);
          expect(money(trueUp[0].amount).isNegative(), bill.id).toBe(true);
        } else expect(trueUp, bill.id).toEqual([]);
      }
      // What the mode carries did build up before the true-up (the balances are not vacuous).
      const carried = finalBills.get(billId(ref, mode.trueUpCycle - 1)).meters[0].metering.carriedOut;
      if (mode.key === 'KWH') expect(money(carried.runningNetKwh).gt(0)).toBe(true);
      else expect(money(carried.creditBalance).gt(0)).toBe(true);
    });

    it('PERT: no closed bill changes, whatever the order, delay and resends of the readings', () => {
      for (const { accountId } of perts) {
        for (let k = 0; k <= LAST; k++) {
          const id = billId(accountId, k);
          const first = firstSeen.get(id);
          const final = finalBills.get(id);
          expect(JSON.stringify(final), id).toBe(JSON.stringify(first));
          expect(final.contentHash, id).toBe(first.contentHash);
        }
      }
    });

    it('PERT: each cycle billed plus its adjustments equals the re-rating of the final data, and the final data rates as REF', () => {
      let adjustments = 0;
      for (const { accountId } of perts) {
        const bills = Array.from({ length: LAST + 1 }, (_, k) => finalBills.get(billId(accountId, k)));
        for (let k = 0; k <= LAST; k++) {
          const id = billId(accountId, k);
          const corrections = bills.flatMap((b) => b.adjustments).filter((a: any) => a.correctsBillId === id && a.meterId === meterOf(accountId));
          adjustments += corrections.length;
          // Each correction states what was billed before it and the re-rating it brings the cycle to.
          let billed = money(bills[k].meters[0].total);
          for (const a of corrections) {
            expect(cents(money(a.previouslyBilled)), id).toBe(cents(billed));
            expect(cents(money(a.rerated.total).minus(a.previouslyBilled)), id).toBe(cents(money(a.amount)));
            billed = billed.plus(a.amount);
          }
          const rated = chargesOf(accountId, k);
          expect(cents(billed), id).toBe(cents(money(rated.total)));
          expect(bills[k].meters[0].metering.trueUp, id).toBe(k === mode.trueUpCycle);
          // Only later bills correct a cycle.
          for (let j = 0; j <= k; j++) expect(bills[j].adjustments.filter((a: any) => a.correctsBillId === id), id).toEqual([]);
          // The final data (every hour actual, nothing estimated) rates exactly as the reference's.
          const reference = chargesOf(ref, k);
          expect(rated.lines, id).toEqual(reference.lines);
          expect(rated.metering, id).toEqual(reference.metering);
          expect(rated.coverage, id).toMatchObject({ estimatedIntervals: 0, missingIntervals: 0 });
        }
      }
      // Late data was adjusted (the schedules delay batches whose gaps the closes estimated).
      expect(adjustments).toBeGreaterThan(0);
    });

    it('PERT: a bill adjusts only cycles from the earliest one that received readings since the previous close; re-sent readings alone adjust nothing', () => {
      const cycleOfHour = (h: number) => BATCHES.find((b) => b.first <= h && h < b.end)!.cycle;
      let resentOnly = 0;
      for (const { accountId, schedule } of perts) {
        // The slot in which each hour was first delivered (a re-sent one may come first within a slot).
        const firstSlot = new Array<number>(DATA.length).fill(Number.POSITIVE_INFINITY);
        for (const m of schedule) for (let h = m.first; h < m.end; h++) firstSlot[h] = Math.min(firstSlot[h], m.slot);
        for (let s = 1; s <= LAST; s++) {
          const bill = finalBills.get(billId(accountId, s));
          let earliest = Number.POSITIVE_INFINITY;
          firstSlot.forEach((slot, h) => {
            if (slot === s && cycleOfHour(h) < s) earliest = Math.min(earliest, cycleOfHour(h));
          });
          if (earliest === Number.POSITIVE_INFINITY && schedule.some((m) => m.resend && m.slot === s && m.cycle < s)) {
            expect(bill.adjustments, bill.id).toEqual([]);
            resentOnly++;
          }
          const corrected = bill.adjustments.map((a: any) => CYCLES.findIndex((c) => c.from === Date.parse(a.period.from)));
          expect(corrected.every((k: number) => k >= earliest && k < s), `${bill.id} corrects cycles ${corrected}, the earliest late data is in ${earliest}`).toBe(true);
        }
      }
      // Every schedule has a slot in which only re-sent readings of closed cycles arrive.
      expect(resentOnly).toBeGreaterThanOrEqual(perts.length);
    });

    it("PERT: each bill starts from what the previous cycle carried out as billed so far (the bill's, or its latest adjustment's)", () => {
      for (const { accountId } of perts) {
        const bills = Array.from({ length: LAST + 1 }, (_, k) => finalBills.get(billId(accountId, k)));
        expect(bills[0].meters[0].metering.carriedIn).toMatchObject({ banks: [], runningNetKwh: '0', creditBalance: '0' });
        for (let k = 1; k <= LAST; k++) {
          const previous = billId(accountId, k - 1);
          const restated = bills
            .slice(k - 1, k + 1)
            .flatMap((b) => b.adjustments)
            .filter((a: any) => a.correctsBillId === previous && a.carriedOut);
          const carriedOut = restated.length ? restated[restated.length - 1].carriedOut.rerated : bills[k - 1].meters[0].metering.carriedOut;
          expect(bills[k].meters[0].metering.carriedIn, bills[k].id).toEqual(carriedOut);
        }
      }
    });

    it("the year's bills and adjustments of every PERT account total REF's bills and the re-rating of the final data", () => {
      const total = (accountId: string) => Array.from({ length: LAST + 1 }, (_, k) => money(finalBills.get(billId(accountId, k)).total)).reduce((a, b) => a.plus(b));
      const rerated = (accountId: string) => Array.from({ length: LAST + 1 }, (_, k) => money(chargesOf(accountId, k).total)).reduce((a, b) => a.plus(b));
      const reference = cents(total(ref));
      expect(cents(rerated(ref))).toBe(reference);
      for (const { accountId } of perts) {
        expect(cents(total(accountId)), accountId).toBe(reference);
        expect(cents(rerated(accountId)), accountId).toBe(reference);
        // The true-up cycle's re-rating pays the settlement, as the reference's bill does.
        expect(lineOf(chargesOf(accountId, mode.trueUpCycle).lines, 'export_credit').filter((l: any) => l.period === 'trueup')).toHaveLength(1);
      }
    });
  });
});
