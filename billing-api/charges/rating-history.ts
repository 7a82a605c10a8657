/**
 * What the rating of a window needs from before it, loaded from the stored readings: the one loader of
 * rating history, used by the charges of any window (charges.service.ts), running charges of the open
 * cycle (../billing/running-charges.ts) and, through the same functions, a bill's close.
 *
 * Two things cross billing windows (CONTRACT.md section 4):
 * - **Billing demand** (a ratchet, `billingDemand`): the peak demand of each of the account's billing
 *   cycles looked back, measured as the tariff measures demand.
 * - **Metering state** (net metering, net billing with a money balance, an annual minimum): kWh banks, the
 *   running net, the money balance and the year's bills, derived from the readings and tariff history
 *   since the last true-up (or since the tariff applied): the account's billing cycles from the history
 *   start (`meteringHistoryStart` of the rating core) up to the window, split where the tariff document
 *   changes, are rated in sequence with `rateMeteredWindows` from an empty state, so the charges of any
 *   past window are right on their own, whatever was billed.
 *
 * A window whose tariffs do neither needs nothing: `needsHistory` says so without any read, and the
 * callers then rate the window alone (no extra query).
 */
import {
  EMPTY_METERING_STATE,
  meteringHistoryStart,
  meteringOfTariff,
  peakDemandKw,
  rateMeteredWindows,
  rateWindow,
  type Charges,
  type DemandHistoryEntry,
  type MeteredWindowInput,
  type MeterInterval,
  type MeteringState,
  type TariffDocument,
  type TariffTimelineEntry,
  type TimeSpan,
} from '../../rating/index.js';
import { cycleContaining } from '../billing/cycles.js';

/** The stored readings the history is derived from. */
export interface HistoryReads {
  /** A meter's stored intervals with intervalStart in [from, to), sorted by start. */
  intervals(meterId: string, intervalSeconds: number, from: number, to: number): Promise<MeterInterval[]>;
  /** The start of the meter's earliest stored interval (epoch ms), or null without any. */
  firstIntervalStart(meterId: string): Promise<number | null>;
}

/** A meter as its rating sees it: its interval, its account's billing cycles, its tariff timeline. */
export interface RatedMeter {
  meterId: string;
  intervalSeconds: number;
  /** the account's zone and billing day (its billing cycles) */
  timezone: string;
  billingDay: number;
  tariffTimeline: TariffTimelineEntry[];
  /**
   * The meter's explicit service start (move-in, installation, the new meter of an exchange), when known:
   * nothing before it is carried (the history starts there at the earliest).
   */
  serviceStart?: number | null;
}

/** What a window is rated with besides its own readings (see RateWindowInput). */
export interface CarriedIntoWindow {
  /** peaks of the preceding billing cycles, when a tariff of the window has a demand ratchet */
  demandHistory?: DemandHistoryEntry[];
  /** the metering state carried into the window, when a tariff of the window carries across windows */
  carriedIn?: MeteringState;
}

/** Nothing carried in: the same object every time (callers may compare by identity). */
export const NOTHING_CARRIED: CarriedIntoWindow = Object.freeze({});

/** The history of a window: what to rate before it, and what it takes from before it. */
interface History {
  demandHistory?: DemandHistoryEntry[];
  /** the windows since the metering history start, up to the window's start (empty: nothing carried in) */
  windowsBefore: MeteredWindowInput[];
  intervalsBefore: MeterInterval[];
  /** a tariff of the window carries across windows */
  carrying: boolean;
  /** the checkpoint the windows resume from (its state is carried into the first of them) */
  resumedFrom?: Checkpoint;
}

/** True when a tariff rating a part of `window` has a demand ratchet or carries across windows. No reads. */
export function needsHistory(timeline: TariffTimelineEntry[], window: TimeSpan): boolean {
  return documentsIn(timeline, window).some((d) => d.billingDemand !== undefined || carries(d));
}

/**
 * The charges of `window` with what is carried into it. `intervals`: the window's own stored intervals
 * (sorted), when the caller already holds them. A window starting inside a billing cycle is rated after the
 * part of its cycle before it, as the next window of that cycle (the cycle settles at its end). Under a
 * carrying mode, a window spanning several of the account's billing cycles is rated as its part of each
 * cycle in sequence and combined (the rating core's `billingCycles`): its charges are what the bills of its
 * cycles say, its partial last cycle left open.
 */
export async function rateWindowWithHistory(
  reads: HistoryReads,
  meter: RatedMeter,
  target: { window: TimeSpan; billingCycle?: TimeSpan; intervals: MeterInterval[] },
): Promise<Charges> {
  const base = {
    tariffTimeline: meter.tariffTimeline,
    meterIntervalSeconds: meter.intervalSeconds,
  };
  if (!needsHistory(meter.tariffTimeline, target.window))
    return rateWindow({ ...base, intervals: target.intervals, billingWindow: target.window, billingCycle: target.billingCycle });
  const history = await historyOf(reads, meter, target.window);
  const demand = history.demandHistory ? { demandHistory: history.demandHistory } : {};
  // A window spanning several of the account's billing cycles is rated as the bills of its cycles would be.
  const cycles = history.carrying ? cyclesSpanning(meter, target.window) : [];
  if (history.carrying && (history.windowsBefore.length || cycles.length > 1)) {
    const own = cycles.length > 1 ? { billingCycles: cycles } : { billingCycle: target.billingCycle };
    const rated = rateMeteredWindows({
      ...base,
      intervals: history.intervalsBefore.concat(target.intervals),
      windows: [...history.windowsBefore, { window: target.window, ...own, ...demand }],
    });
    return rated[rated.length - 1];
  }
  return rateWindow({
    ...base,
    intervals: target.intervals,
    billingWindow: target.window,
    billingCycle: target.billingCycle,
    ...demand,
    ...(history.carrying ? { carriedIn: EMPTY_METERING_STATE } : {}),
  });
}

/** The state carried into a window of a derivation (its start, epoch ms): where a later one may resume. */
export interface Checkpoint {
  from: number;
  state: MeteringState;
}

/** What is carried into a cycle, and the checkpoints of the windows it was derived from. */
export interface CarriedIntoCycle extends CarriedIntoWindow {
  checkpoints?: Checkpoint[];
}

/**
 * What is carried into a window that starts a billing cycle (the open cycle of running charges, a cycle
 * at close): the peaks looked back and the metering state at its start. NOTHING_CARRIED when nothing is
 * carried (no read). Pass the result to rateWindow beside the window's own intervals.
 *
 * `resume`: the checkpoints of an earlier derivation for the same cycle and tariff timeline, and the
 * earliest interval start among the readings committed before the cycle since then: the windows before the
 * one holding it are not read nor rated again (not with a ratchet, whose peaks are read in full).
 */
export async function carriedIntoCycle(
  reads: HistoryReads,
  meter: RatedMeter,
  cycle: TimeSpan,
  resume?: { checkpoints: Checkpoint[]; changedFrom: number },
): Promise<CarriedIntoCycle> {
  if (!needsHistory(meter.tariffTimeline, cycle)) return NOTHING_CARRIED;
  const history = await historyOf(reads, meter, cycle, resume);
  const result: CarriedIntoCycle = history.demandHistory ? { demandHistory: history.demandHistory } : {};
  if (!history.carrying) return result;
  if (!history.windowsBefore.length) return { ...result, carriedIn: EMPTY_METERING_STATE, checkpoints: [] };
  const rated = rateMeteredWindows({
    tariffTimeline: meter.tariffTimeline,
    meterIntervalSeconds: meter.intervalSeconds,
    intervals: history.intervalsBefore,
    windows: history.windowsBefore,
    ...(history.resumedFrom ? { carriedIn: history.resumedFrom.state } : {}),
  });
  const resumedAt = history.windowsBefore[0].window.from;
  const checkpoints = [
    ...(history.resumedFrom ? resume!.checkpoints.filter((c) => c.from < resumedAt) : []),
    ...rated.map((charges, k) => ({ from: history.windowsBefore[k].window.from, state: charges.metering.carriedIn })),
  ];
  return { ...result, carriedIn: rated[rated.length - 1].metering.carriedOut, checkpoints };
}

async function historyOf(reads: HistoryReads, meter: RatedMeter, window: TimeSpan, resume?: { checkpoints: Checkpoint[]; changedFrom: number }): Promise<History> {
  const cycleOf = (instant: number) => cycleContaining(instant, meter.timezone, meter.billingDay);
  const documents = documentsIn(meter.tariffTimeline, window);
  const ratchet = documents.find((d) => d.billingDemand !== undefined);
  const carryingDocuments = documents.filter(carries);
  const carrying = carryingDocuments[0];
  const timelineStart = Math.min(...meter.tariffTimeline.map((e) => e.from));

  // Where the metering history begins: the earliest settlement year start of the window's documents (or,
  // when the state crosses true-ups, the tariff's start or the meter's first reading), never before the
  // tariff applied nor before the service started. A start inside an earlier document's settlement year is
  // right too: the rating core settles what is carried where the settlement rules change, so the state at
  // the window does not depend on what was carried before such a change.
  let start = window.from;
  if (carrying) {
    const starts = carryingDocuments.map((d) => meteringHistoryStart(d, cycleOf(window.from)));
    let from = starts.every((s) => s !== null)
      ? Math.min(...(starts as number[]))
      : Number.isFinite(timelineStart)
        ? timelineStart
        : ((await reads.firstIntervalStart(meter.meterId)) ?? window.from);
    from = Math.max(from, timelineStart, meter.serviceStart ?? Number.NEGATIVE_INFINITY);
    start = Math.min(from, window.from);
  }

  // The ratchet looks back its horizon of cycles before the first window rated.
  let earliest = start;
  if (ratchet) {
    const horizon = Math.max(...documents.map((d) => d.billingDemand?.lookbackHorizonMonths ?? 0));
    let cycle = cycleOf(start);
    for (let k = 0; k < horizon; k++) cycle = cycleOf(cycle.from - 1);
    earliest = Math.min(earliest, cycle.from);
  }
  // The billing cycles from the history start to the window, split where the tariff document changes.
  let windowsBefore: MeteredWindowInput[] = [];
  if (carrying && start < window.from) {
    const changes = meter.tariffTimeline.map((e) => e.from).filter((t) => t > start && t < window.from);
    for (let from = start; from < window.from; ) {
      const cycle = cycleOf(from);
      const to = Math.min(cycle.to, window.from, ...changes.filter((t) => t > from));
      windowsBefore.push({ window: { from, to }, billingCycle: cycle });
      from = to;
    }
  }

  // Resumed after late data: from the window holding the earliest change, with the state carried into it.
  let resumedFrom: Checkpoint | undefined;
  if (resume && !ratchet) {
    const at = new Map(resume.checkpoints.map((c) => [c.from, c]));
    let k = windowsBefore.length - 1;
    while (k >= 0 && windowsBefore[k].window.from > resume.changedFrom) k--;
    if (k < 0) k = windowsBefore.length - 1; // the change lies before the history: the state is unchanged, re-rate the last window only
    const checkpoint = k > 0 ? at.get(windowsBefore[k].window.from) : undefined;
    if (checkpoint) {
      resumedFrom = checkpoint;
      windowsBefore = windowsBefore.slice(k);
      earliest = Math.max(earliest, checkpoint.from);
    }
  }

  const intervalsBefore = earliest < window.from && (windowsBefore.length || ratchet) ? await reads.intervals(meter.meterId, meter.intervalSeconds, earliest, window.from) : [];

  let demandHistory: DemandHistoryEntry[] | undefined;
  if (ratchet) {
    demandHistory = [];
    let next = 0;
    for (let cycle = cycleOf(earliest); cycle.to <= window.from; cycle = cycleOf(cycle.to)) {
      const first = next;
      while (next < intervalsBefore.length && intervalsBefore[next].intervalStart < cycle.to) next++;
      const inCycle = intervalsBefore.slice(first, next).filter((i) => i.intervalStart >= cycle.from);
      demandHistory.push({ from: cycle.from, to: cycle.to, peakKw: peakDemandKw({ tariff: ratchet, intervals: inCycle, span: cycle, meterIntervalSeconds: meter.intervalSeconds }) });
    }
    for (const w of windowsBefore) w.demandHistory = demandHistory;
  }

  const from = windowsBefore[0]?.window.from ?? window.from;
  return { demandHistory, windowsBefore, intervalsBefore: carrying ? intervalsBefore.filter((i) => i.intervalStart >= from) : [], carrying: carrying !== undefined, resumedFrom };
}

/** The account's billing cycles holding a part of `window`, in order. */
function cyclesSpanning(meter: RatedMeter, window: TimeSpan): TimeSpan[] {
  const cycles: TimeSpan[] = [];
  for (let cycle = cycleContaining(window.from, meter.timezone, meter.billingDay); cycle.from < window.to; cycle = cycleContaining(cycle.to, meter.timezone, meter.billingDay)) cycles.push(cycle);
  return cycles;
}

/** A tariff whose windows carry state to the next (net metering, a net billing balance, an annual minimum). */
function carries(document: TariffDocument): boolean {
  const metering = meteringOfTariff(document);
  return metering.mode === 'net_metering' || metering.netBilling !== undefined || metering.annualMinimum !== undefined;
}

/** The documents rating a part of [from, to), in time order. */
function documentsIn(timeline: TariffTimelineEntry[], window: TimeSpan): TariffDocument[] {
  const sorted = timeline.length > 1 ? [...timeline].sort((a, b) => a.from - b.from) : timeline;
  return sorted.filter((e, i) => e.from < window.to && (e.to ?? sorted[i + 1]?.from ?? Number.POSITIVE_INFINITY) > window.from).map((e) => e.tariff);
}

/** The history reads of a readings repository (running charges and bill close hold one). */
export function historyReadsOf(readings: {
  windows(windows: { meterId: string; from: number; to: number; intervalSeconds: number }[]): Promise<MeterInterval[][]>;
  list(meterId: string, from: number | null, to: number | null, after: number | null, limit: number): Promise<{ intervalStart: string }[]>;
}): HistoryReads {
  return {
    intervals: async (meterId, intervalSeconds, from, to) => (await readings.windows([{ meterId, from, to, intervalSeconds }]))[0],
    firstIntervalStart: async (meterId) => {
      const [first] = await readings.list(meterId, null, null, null, 1);
      return first ? Date.parse(first.intervalStart) : null;
    },
  };
}
