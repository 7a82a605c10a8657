/**
 * Billing windows in sequence under a metering mode (CONTRACT.md section 4, "Net metering and net
 * billing"): what each window bills and what it carries into the next one.
 *
 * A pure function over a sequence of consecutive billing windows: given the tariff timeline, the meter's
 * intervals, the windows in order and the state carried into the first of them, it rates each window and
 * gives its charges and the state it carries out. The state carried into a window is derived from the
 * readings of the windows since the last true-up (or since the tariff applied), so the charges of any past
 * window are computed on their own by passing every window from the start of its settlement year
 * (`settlementYearStart`) up to it, with an empty carried-in state.
 *
 * Everything the existing core computes per window (energy tiers, demand, ratchets, fixed charges,
 * classification, coverage) comes from `rateWindow`; this module changes what the mode changes: netting,
 * carried banks and balances, minimums and the true-up. SAM's own rules are in `sam-rules.ts`.
 */
import type { CompiledTariff } from '../compiled-tariff.js';
import { compileTariff } from '../compiled-tariff.js';
import { RatingError } from '../errors.js';
import { monthsOf } from '../fixed.js';
import { dayNumberOf } from '../local-time.js';
import { resolveTiers } from '../energy-tiers.js';
import { coverageOf, intervalsInWindow, type MeterInterval, type TimeSpan } from '../intervals.js';
import type { ChargeLine, EnergyLine, ExportCreditLine, MinimumLine, SettlementLine, TaxLine } from '../lines.js';
import { Dec, formatDecimal, formatMoney, fromMilli, roundMoney, ZERO } from '../money.js';
import { type Charges, type DemandHistoryEntry, peakDemandKw, ratePlainWindow } from '../rate.js';
import type { TariffDocument } from '../tariff.schema.js';
import { piecesOfWindow, type TariffTimelineEntry } from '../timeline.js';
import { carriesAcrossWindows, type Metering, meteringOfTariff, settlementMonth, settlementRules } from './options.js';
import { ANNUAL_MINIMUM_MONTH, bankSlots, nextRunningNet, proRataTiers, slotOfPeriod } from './sam-rules.js';

/** What a window carries into the next one. Decimal strings; an empty state at the tariff's start and after a true-up. */
export interface MeteringState {
  /** Net metering with a kWh bank: each period's surplus and the time-of-day slot it travels in (see sam-rules.ts). */
  banks: { period: string; kWh: string; slot: number }[];
  /** Net metering with a kWh bank: the running all-period net surplus paid at the true-up, kWh. */
  runningNetKwh: string;
  /** Money credit carried (net metering with dollars, net billing with a balance, a rolled-over true-up). */
  creditBalance: string;
  /**
   * Annual minimum: the sum of this calendar year's bills so far (January to the window, by the local month
   * of each billing cycle's last day), each floored at 0, before minimums and settlement.
   */
  yearBills: string;
}

export const EMPTY_METERING_STATE: MeteringState = Object.freeze({
  banks: [],
  runningNetKwh: '0',
  creditBalance: '0',
  yearBills: '0',
}) as MeteringState;


/** A period's energy under net metering, as the bill explains it. kWh, decimal strings. */
export interface PeriodNetting {
  period: string;
  importKwh: string;
  exportKwh: string;
  /** export - import */
  netKwh: string;
  /** banked kWh carried in (kWh bank) */
  bankInKwh: string;
  /** billed at the buy rate */
  billedKwh: string;
  /** carried out (kWh bank) or credited at the sell rate (dollars) */
  surplusKwh: string;
  /** surplus lost because the period occupies none of SAM's time-of-day slots */
  droppedKwh: string;
}

/** What the window did with carried quantities: before, earned, applied, settled and after. */
export interface WindowMetering {
  mode: Metering['mode'];
  carryOver: 'kWh' | 'dollars' | null;
  /**
   * This window settles what is carried: its cycle's local month is the true-up month, or `settledBy`
   * says why it settles earlier.
   */
  trueUp: boolean;
  /**
   * A settlement before the true-up month: `metering_rules_change` (the next tariff document settles under
   * other rules: another carry-over, true-up month or roll-over), `service_end` (the meter's last window).
   * Everything carried is then paid: kWh at the true-up sell rate, any money balance in full.
   */
  settledBy?: 'metering_rules_change' | 'service_end';
  carriedIn: MeteringState;
  carriedOut: MeteringState;
  periods?: PeriodNetting[];
  credit?: {
    balanceIn: string;
    earned: string;
    applied: string;
    /** value of the true-up added to the balance (roll-over) */
    rolledOver: string;
    paidAtTrueUp: string;
    expired: string;
    balanceOut: string;
  };
  trueUpKwh?: string;
  /**
   * A window spanning a change of tariff document, or several billing cycles, is rated in parts, one per
   * cycle and document, in sequence (the last part of a cycle closes it): each part's own metering, with its
   * span and tariff. The fields above then sum the parts (carriedIn of the first, carriedOut of the last,
   * periods of every part in order).
   */
  parts?: (WindowMetering & { from: string; to: string; tariffId: string })[];
}

export interface MeteredCharges extends Charges {
  metering: WindowMetering;
}

export interface MeteredWindowInput {
  /** [from, to) on intervalStart, epoch ms UTC. */
  window: TimeSpan;
  /** The billing cycle it belongs to (a window of the open cycle is part of it); default: the window. */
  billingCycle?: TimeSpan;
  demandHistory?: DemandHistoryEntry[];
  /**
   * The last window of the meter's service (a move-out, a meter removal or exchange): everything carried is
   * settled at its end (`settledBy: "service_end"`), since no later window of this meter carries it on.
   */
  finalWindow?: boolean;
  /**
   * The account's billing cycles the window spans, consecutive and in order (the first holds its start, the
   * last its end; they may reach beyond it). When there are several and a tariff document of the window
   * carries across windows, the window is rated as its part of each cycle, in sequence, and the parts
   * combined as at a tariff change: the charges of a window are what the bills of its cycles say. A partial
   * first part is the next window of its cycle; a partial last part does not close its cycle. Without it, or
   * with one cycle, the window is one window of `billingCycle`.
   */
  billingCycles?: TimeSpan[];
}

export interface RateMeteredWindowsInput {
  tariffTimeline: TariffTimelineEntry[];
  /** The meter's intervals of all the windows (others are ignored). */
  intervals: MeterInterval[];
  meterIntervalSeconds: number;
  /** Consecutive windows, in time order: from the start of a settlement year (or the tariff's start) up to the one wanted. */
  windows: MeteredWindowInput[];
  /** State carried into the first window; default empty (a settlement year's or the tariff's start). */
  carriedIn?: MeteringState;
  /** The metering rules; default: those the window's tariff document states. */
  metering?: Metering;
}

/**
 * Rates consecutive billing windows under their metering mode: one MeteredCharges per window, each with
 * the state carried in and out. A window spanning a change of tariff document under a netting or carrying
 * mode is rated in parts at the changes, in sequence, and the parts combined into the window's charges; so
 * is a window spanning several billing cycles (`billingCycles`) under a carrying mode, in parts at the cycles.
 * Throws RatingError as rateWindow does, and 'invalid_window' when the windows are not consecutive.
 */
export function rateMeteredWindows(input: RateMeteredWindowsInput): MeteredCharges[] {
  const problems = input.windows.slice(1).flatMap((w, i) =>
    w.window.from === input.windows[i].window.to ? [] : [`window ${i + 1} does not start where window ${i} ends`],
  );
  if (problems.length) throw new RatingError('invalid_window', 'metered windows must be consecutive', problems);
  let state = input.carriedIn ?? EMPTY_METERING_STATE;
  const sorted = isSorted(input.intervals) ? input.intervals : [...input.intervals].sort((a, b) => a.intervalStart - b.intervalStart);
  return input.windows.map((w, i) => {
    const parts = partsOf(input, w, input.windows[i + 1], sorted);
    const rated = parts.map((part, k) => {
      const last = k === parts.length - 1;
      const settledBy = settlementAtEnd(input, part.input.window) ?? (last && w.finalWindow ? 'service_end' : undefined);
      const charges = rateMeteredWindow(input, part.input, part.cycle, state, sorted, part.closesCycle, settledBy);
      state = charges.metering.carriedOut;
      return charges;
    });
    if (rated.length === 1) return rated[0];
    const minorUnit = compileTariff(documentAt(input.tariffTimeline, w.window.from)!).minorUnit;
    return combineParts(rated, parts.map((p) => p.bill), w.window, sorted, input.meterIntervalSeconds, minorUnit);
  });
}

/** A part of a window rated on its own: its span, its billing cycle, whether it closes that cycle, and the bill (cycle) it belongs to. */
interface WindowPart {
  input: MeteredWindowInput;
  cycle: TimeSpan;
  closesCycle: boolean;
  /** index of the billing cycle among the window's parts (taxes are computed per bill) */
  bill: number;
}

/**
 * The parts of a window rated one after the other. A window spanning several billing cycles under a
 * carrying mode: its part of each cycle (see MeteredWindowInput.billingCycles). Within a cycle, one part
 * per tariff document when a document nets or carries (each nets and carries under its own rules). Only
 * the last part of a cycle closes it; the window's own cycle closes unless the next window goes on in it.
 */
function partsOf(input: RateMeteredWindowsInput, w: MeteredWindowInput, next: MeteredWindowInput | undefined, sorted: MeterInterval[]): WindowPart[] {
  const cycles = (w.billingCycles ?? []).filter((c) => c.from < w.window.to && c.to > w.window.from).sort((a, b) => a.from - b.from);
  if (cycles.length < 2 || !piecesOfWindow(input.tariffTimeline, w.window).some((piece) => carriesAcrossWindows(input.metering ?? meteringOfTariff(piece.tariff)))) {
    const cycle = w.billingCycle ?? w.window;
    const closesCycle = !next || cycleAtStart(next).from >= cycle.to;
    const pieces = documentParts(input, w);
    return pieces.map((part, k) => ({ input: part, cycle, closesCycle: closesCycle && k === pieces.length - 1, bill: 0 }));
  }
  const demandHistory = withPeaksOfCycles(input, w, cycles, sorted);
  return cycles.flatMap((cycle, bill) => {
    const window = { from: Math.max(cycle.from, w.window.from), to: Math.min(cycle.to, w.window.to) };
    const pieces = documentParts(input, { window, billingCycle: cycle, demandHistory });
    return pieces.map((part, k) => ({ input: part, cycle, closesCycle: k === pieces.length - 1 && window.to >= cycle.to, bill }));
  });
}

/** The billing cycle holding a window's start. */
function cycleAtStart(w: MeteredWindowInput): TimeSpan {
  return w.billingCycles?.find((c) => c.from <= w.window.from && w.window.from < c.to) ?? w.billingCycle ?? w.window;
}

/** One part per tariff document when a document of the window nets or carries, else the window itself. */
function documentParts(input: RateMeteredWindowsInput, w: MeteredWindowInput): MeteredWindowInput[] {
  const pieces = piecesOfWindow(input.tariffTimeline, w.window);
  if (pieces.length < 2 || pieces.every((piece) => isPlain(input.metering ?? meteringOfTariff(piece.tariff)))) return [{ window: w.window, billingCycle: w.billingCycle, demandHistory: w.demandHistory }];
  return pieces.map((piece) => ({ window: { from: piece.from, to: piece.to }, billingCycle: w.billingCycle, demandHistory: w.demandHistory }));
}

/**
 * The peaks looked back by a ratchet for the cycles of a window rated per cycle: those supplied, and the
 * peak of each of the window's cycles before its last, measured from the intervals given as the ratchet's
 * document measures demand (each part looks back only at cycles ending before its own starts). Without
 * supplied peaks, none are added (the charges say the preceding months were not supplied).
 */
function withPeaksOfCycles(input: RateMeteredWindowsInput, w: MeteredWindowInput, cycles: TimeSpan[], sorted: MeterInterval[]): DemandHistoryEntry[] | undefined {
  if (!w.demandHistory) return undefined;
  const ratchet = piecesOfWindow(input.tariffTimeline, w.window).find((piece) => piece.tariff.billingDemand !== undefined)?.tariff;
  if (!ratchet) return w.demandHistory;
  const known = new Set(w.demandHistory.map((e) => e.from));
  const peaks = cycles.slice(0, -1).filter((c) => !known.has(c.from)).map((c) => ({
    from: c.from,
    to: c.to,
    peakKw: peakDemandKw({ tariff: ratchet, intervals: sorted.slice(firstAtOrAfter(sorted, c.from), firstAtOrAfter(sorted, c.to)), span: c, meterIntervalSeconds: input.meterIntervalSeconds }),
  }));
  return [...w.demandHistory, ...peaks];
}

function isPlain(metering: Metering): boolean {
  return !carriesAcrossWindows(metering) && metering.mode !== 'net_billing_hourly';
}

/**
 * 'metering_rules_change' when the tariff document in effect right after `window` settles under other
 * rules than the one rating its end (`settlementRules`): what is carried is settled at the change. Known
 * from the timeline alone, so a window settles the same way whatever windows are rated after it.
 */
function settlementAtEnd(input: RateMeteredWindowsInput, window: TimeSpan): 'metering_rules_change' | undefined {
  if (input.metering) return undefined;
  const before = documentAt(input.tariffTimeline, window.to - 1);
  const after = documentAt(input.tariffTimeline, window.to);
  if (!before || !after || before === after) return undefined;
  return settlementRules(meteringOfTariff(before)) === settlementRules(meteringOfTariff(after)) ? undefined : 'metering_rules_change';
}

function documentAt(timeline: TariffTimelineEntry[], instant: number): TariffDocument | undefined {
  const entries = timeline.length > 1 ? [...timeline].sort((a, b) => a.from - b.from) : timeline;
  return entries.find((e, i) => e.from <= instant && instant < (e.to ?? entries[i + 1]?.from ?? Infinity))?.tariff;
}

/**
 * The charges of a window from those of its parts (in time order): every part's lines (each names its
 * tariff), subtotals summed exactly, the pieces and notes of every part, coverage over the window, and the
 * metering of the parts (see WindowMetering.parts). Taxes are those of the bills: within a bill (`bills[k]`,
 * the billing cycle of part k) one tax per name and rate on the summed base of its parts; across bills the
 * bases and the rounded amounts summed, so a window of several cycles totals exactly what their bills do.
 */
function combineParts(parts: MeteredCharges[], bills: number[], window: TimeSpan, sorted: MeterInterval[], meterIntervalSeconds: number, minorUnit: number): MeteredCharges {
  const currencies = [...new Set(parts.map((p) => p.currency))];
  if (currencies.length > 1) throw new RatingError('currency_mismatch', 'the window spans tariffs in different currencies', currencies);
  const perBill = new Map<string, { name: string; rate: string; bases: Map<number, Dec> }>();
  parts.forEach((part, k) => {
    for (const l of part.lines)
      if (l.type === 'tax') {
        const key = `${l.name}\u0000${l.rate}`;
        const entry = perBill.get(key) ?? { name: l.name, rate: l.rate, bases: new Map<number, Dec>() };
        entry.bases.set(bills[k], (entry.bases.get(bills[k]) ?? ZERO).plus(l.base));
        perBill.set(key, entry);
      }
  });
  const taxLines: TaxLine[] = [...perBill.values()].map(({ name, rate, bases }) => {
    const base = [...bases.values()].reduce((s, b) => s.plus(b), ZERO);
    const amount = [...bases.values()].reduce((s, b) => s.plus(roundMoney(b.mul(rate), minorUnit)), ZERO);
    return { type: 'tax', name, rate, base: formatMoney(base, minorUnit), amount: formatMoney(amount, minorUnit) };
  });
  const subtotal = parts.reduce((s, p) => s.plus(p.subtotal), ZERO);
  const taxTotal = sumAmounts(taxLines);
  const asOf = parts.map((p) => p.asOf).filter((a): a is string => a !== null).pop() ?? null;
  const notes = [...new Set(parts.flatMap((p) => p.notes ?? []))];
  const intervals = sorted.slice(firstAtOrAfter(sorted, window.from), firstAtOrAfter(sorted, window.to));
  return {
    currency: currencies[0],
    tariffIds: [...new Set(parts.flatMap((p) => p.tariffIds))],
    lines: [...parts.flatMap((p) => p.lines.filter((l) => l.type !== 'tax')), ...taxLines],
    subtotal: formatMoney(subtotal, minorUnit),
    taxes: formatMoney(taxTotal, minorUnit),
    total: formatMoney(subtotal.plus(taxTotal), minorUnit),
    asOf,
    coverage: coverageOf(intervalsInWindow(intervals, window, meterIntervalSeconds), window, meterIntervalSeconds),
    pieces: parts.flatMap((p) => p.pieces),
    ...(notes.length ? { notes } : {}),
    metering: combineMetering(parts, minorUnit),
  };
}

/** The metering of a window rated in parts: the parts' own, and their sums (see WindowMetering.parts). */
function combineMetering(parts: MeteredCharges[], minorUnit: number): WindowMetering {
  const all = parts.map((p) => p.metering);
  const last = all[all.length - 1];
  const settled = all.filter((m) => m.trueUp);
  const periods = all.flatMap((m) => m.periods ?? []);
  const credits = all.flatMap((m) => (m.credit ? [m.credit] : []));
  const total = (field: keyof NonNullable<WindowMetering['credit']>) => formatMoney(credits.reduce((s, c) => s.plus(c[field]), ZERO), minorUnit);
  const trueUpKwh = all.flatMap((m) => (m.trueUpKwh !== undefined ? [m.trueUpKwh] : []));
  const carrying = [...all].reverse().find((m) => m.carryOver !== null);
  return {
    mode: (carrying ?? last).mode,
    carryOver: (carrying ?? last).carryOver,
    trueUp: settled.length > 0,
    ...(settled.length && settled.every((m) => m.settledBy) ? { settledBy: settled[settled.length - 1].settledBy } : {}),
    carriedIn: all[0].carriedIn,
    carriedOut: last.carriedOut,
    ...(periods.length ? { periods } : {}),
    ...(credits.length
      ? {
          credit: {
            balanceIn: formatMoney(new Dec(all[0].carriedIn.creditBalance), minorUnit),
            earned: total('earned'),
            applied: total('applied'),
            rolledOver: total('rolledOver'),
            paidAtTrueUp: total('paidAtTrueUp'),
            expired: total('expired'),
            balanceOut: formatMoney(new Dec(last.carriedOut.creditBalance), minorUnit),
          },
        }
      : {}),
    ...(trueUpKwh.length ? { trueUpKwh: formatDecimal(trueUpKwh.reduce((s, q) => s.plus(q), ZERO)) } : {}),
    parts: parts.map((p) => ({ ...p.metering, from: p.pieces[0].from, to: p.pieces[p.pieces.length - 1].to, tariffId: p.pieces[0].tariffId })),
  };
}

/**
 * The start of the settlement year that holds `instant`: the first instant of the local month after the
 * last true-up month (December without a true-up) at or before it.
 */
export function settlementYearStart(tariff: TariffDocument, instant: number, metering: Metering = meteringOfTariff(tariff)): number {
  const clock = compileTariff(tariff).classifier.clock;
  const local = clock.localTime(instant);
  const startMonth = (settlementMonth(metering) % 12) + 1;
  const monthsBack = (local.month - startMonth + 12) % 12;
  let day = local.dayNumber - (local.day - 1);
  for (let i = 0; i < monthsBack; i++) day -= clock.localTime(clock.startOfDay(day) - 1).day;
  return clock.startOfDay(day);
}

/**
 * Where the windows passed to `rateMeteredWindows` must begin (with an empty carried-in state) for the
 * window whose billing cycle ends at `cycleEnd` to be rated right on its own: the start of its settlement
 * year; with an annual minimum, the start of the settlement year that holds January 1 of its calendar year
 * (the minimum needs every bill since January, each with its own carried state); the window itself when
 * nothing is carried. Null when the state crosses true-ups (a true-up value rolled over as credit): then
 * from the tariff's start, or from the carried-out state stored on the last closed bill. The tariff's own
 * start, when later, is where the service begins instead.
 */
export function meteringHistoryStart(tariff: TariffDocument, cycle: TimeSpan, metering: Metering = meteringOfTariff(tariff)): number | null {
  if (!carriesAcrossWindows(metering)) return cycle.from;
  if (metering.netMetering?.trueUpCreditRollover) return null;
  const last = cycle.to - 1;
  if (metering.annualMinimum === undefined) return settlementYearStart(tariff, last, metering);
  const clock = compileTariff(tariff).classifier.clock;
  const january = clock.startOfDay(dayNumberOf(clock.localTime(last).year, 1, 1));
  return settlementYearStart(tariff, january, metering);
}

/**
 * One window rated by one tariff document under a netting or carrying mode (or, when every document of the
 * window is plain, by its documents as the core rates them). `cycle`: the billing cycle it belongs to, which
 * sets the true-up month, the bank slots and the proration of the document's share; `closesCycle`: the
 * cycle settles at its end; `settledBy`: everything carried is settled at its end (see WindowMetering).
 */
function rateMeteredWindow(
  input: RateMeteredWindowsInput,
  w: MeteredWindowInput,
  cycle: TimeSpan,
  carriedIn: MeteringState,
  sorted: MeterInterval[],
  closesCycle: boolean,
  settledBy: WindowMetering['settledBy'],
): MeteredCharges {
  const documents = documentsOf(input.tariffTimeline, w.window);
  const document = documents[0];
  const metering = input.metering ?? meteringOfTariff(document);
  const plain = isPlain(metering);
  const reference = { prorationReference: cycle };
  if (!carriesAcrossWindows(metering)) settledBy = undefined;
  const timeline = input.tariffTimeline.map((entry) => ({ ...entry, tariff: withoutMetering(entry.tariff) }));
  const windowIntervals = sorted.slice(firstAtOrAfter(sorted, w.window.from), firstAtOrAfter(sorted, w.window.to));
  const rate = (intervals: MeterInterval[]) =>
    ratePlainWindow({
      tariffTimeline: timeline,
      intervals,
      billingWindow: w.window,
      billingCycle: w.billingCycle,
      meterIntervalSeconds: input.meterIntervalSeconds,
      demandHistory: w.demandHistory,
    }, reference);

  if (plain) {
    const charges = ratePlainWindow({
      tariffTimeline: input.tariffTimeline.map((entry) => ({ ...entry, tariff: withoutMeteringOptions(entry.tariff) })),
      intervals: windowIntervals,
      billingWindow: w.window,
      billingCycle: w.billingCycle,
      meterIntervalSeconds: input.meterIntervalSeconds,
      demandHistory: w.demandHistory,
    }, reference);
    return { ...charges, metering: { mode: metering.mode, carryOver: null, trueUp: false, carriedIn, carriedOut: carriedIn } };
  }

  const tariff = compileTariff(document);
  const minorUnit = tariff.minorUnit;
  const clock = tariff.classifier.clock;
  const base = rate(windowIntervals);
  const energySource = metering.mode === 'net_billing_hourly' ? rate(netPerLocalHour(windowIntervals, tariff)) : base;
  const isEnergy = (l: ChargeLine) => l.type === 'energy' || l.type === 'export_credit';
  const other = base.lines.filter((l) => !isEnergy(l) && l.type !== 'minimum' && l.type !== 'tax');
  let energy: ChargeLine[] = energySource.lines.filter((l) => l.type === 'energy');
  let exports: ChargeLine[] = energySource.lines.filter((l) => l.type === 'export_credit');

  const billMonth = clock.localTime(cycle.to - 1).month;
  const trueUp = (closesCycle && billMonth === settlementMonth(metering)) || settledBy !== undefined;
  const out: MeteringState = { ...carriedIn, banks: [] };
  let balance = new Dec(carriedIn.creditBalance);
  const meteringSummary: WindowMetering = { mode: metering.mode, carryOver: null, trueUp, ...(settledBy ? { settledBy } : {}), carriedIn, carriedOut: out };
  let earned = ZERO;
  let rolledOver = ZERO;
  let applyOwnCredit = false;
  const settlement: SettlementLine[] = [];

  if (metering.mode === 'net_metering') {
    const nm = metering.netMetering!;
    meteringSummary.carryOver = nm.carryOver;
    refuseUnnettable(tariff, document.id);
    const sums = periodSums(windowIntervals, tariff);
    const periods = tariff.energyPeriods;
    // tier limits prorated by the document's share of the cycle, as the core prorates them
    const context = { share: new Dec(base.pieces[0]?.prorationFactor ?? 1), days: clock.daysStartingIn(w.window.from, w.window.to), billingDemandKw: new Dec(base.pieces[0]?.billingDemand?.kw ?? 0) };
    const tiers = periods.map((period) => resolveTiers(period, context));
    const slots = bankSlots(tariff.classifier, cycle.to - 1);
    const carry = new Map<number, Dec>();
    if (nm.carryOver === 'kWh')
      for (const bank of carriedIn.banks) {
        const target = slots[bank.slot];
        if (target >= 0) carry.set(target, (carry.get(target) ?? ZERO).plus(bank.kWh));
      }
    const billed = new Map<number, Dec>();
    const surplus = new Map<number, Dec>();
    const netting: PeriodNetting[] = [];
    let windowNet = ZERO;
    periods.forEach((period, p) => {
      const { importKwh, exportKwh } = sums[p];
      const net = exportKwh.minus(importKwh);
      windowNet = windowNet.plus(net);
      const bankIn = carry.get(p) ?? ZERO;
      const position = net.plus(bankIn);
      let dropped = ZERO;
      if (position.isNegative()) billed.set(p, position.neg());
      else if (position.gt(0)) {
        surplus.set(p, position);
        if (nm.carryOver === 'kWh') {
          const slot = slotOfPeriod(slots, p);
          if (slot === null) dropped = position;
          else out.banks.push({ period: period.id, kWh: formatDecimal(position), slot });
        }
      }
      if (importKwh.isZero() && exportKwh.isZero() && bankIn.isZero()) return;
      netting.push({
        period: period.id,
        importKwh: formatDecimal(importKwh),
        exportKwh: formatDecimal(exportKwh),
        netKwh: formatDecimal(net),
        bankInKwh: formatDecimal(bankIn),
        billedKwh: formatDecimal(billed.get(p) ?? ZERO),
        surplusKwh: formatDecimal(surplus.get(p) ?? ZERO),
        droppedKwh: formatDecimal(dropped),
      });
    });
    meteringSummary.periods = netting;
    energy = netEnergyLines(tariff, document.id, proRataTiers(billed, tiers, tariff.tierScope));
    exports = [];
    if (nm.carryOver === 'kWh') {
      const x = nextRunningNet(new Dec(carriedIn.runningNetKwh), windowNet);
      out.runningNetKwh = formatDecimal(x);
      if (trueUp) {
        meteringSummary.trueUpKwh = formatDecimal(x);
        const value = roundMoney(x.mul(nm.trueUpSellRate), minorUnit);
        if (nm.trueUpCreditRollover && !settledBy) rolledOver = value;
        else if (value.gt(0))
          settlement.push({
            type: 'export_credit',
            period: 'trueup',
            quantity: formatDecimal(x),
            unit: 'kWh',
            rate: formatDecimal(new Dec(nm.trueUpSellRate)),
            amount: formatMoney(value.neg(), minorUnit),
            tariffId: document.id,
          });
        out.banks = [];
        out.runningNetKwh = '0';
      }
    } else {
      for (const [p, split] of proRataTiers(surplus, tiers, tariff.tierScope))
        for (const [t, q] of split) {
          const sell = periods[p].tiers[t].sell ?? periods[p].sell;
          if (sell && q.gt(0)) earned = earned.plus(roundMoney(q.mul(sell), minorUnit));
        }
      applyOwnCredit = true;
    }
  } else if (metering.netBilling) {
    meteringSummary.carryOver = 'dollars';
    earned = exports.reduce((s, l) => s.minus((l as ExportCreditLine).amount), ZERO);
    exports = [];
    applyOwnCredit = metering.netBilling.applyCreditInMonthEarned;
  }

  // credits from the carried balance (and, where the mode says, the window's own) offset energy charges only
  const energyCharges = energy.reduce((s, l) => s.plus((l as EnergyLine).amount), ZERO);
  balance = balance.plus(rolledOver);
  let room = Dec.max(energyCharges, 0);
  const fromBalance = Dec.min(balance, room);
  room = room.minus(fromBalance);
  const fromOwn = applyOwnCredit ? Dec.min(earned, room) : ZERO;
  const applied = fromBalance.plus(fromOwn);
  balance = balance.minus(fromBalance).plus(earned);
  balance = balance.minus(fromOwn);
  const carryoverLines: SettlementLine[] = applied.gt(0) ? [moneyLine('carryover', applied, base.currency, minorUnit, document.id)] : [];

  const lines: ChargeLine[] = [...energy, ...other, ...exports, ...carryoverLines];
  const before = sumAmounts(lines);
  const minimum = monthlyMinimum(tariff, clock, w.window, w.billingCycle);
  if (minimum && before.lt(minimum))
    lines.push({ type: 'minimum', minimum: formatMoney(minimum, minorUnit), amount: formatMoney(minimum.minus(before), minorUnit), tariffId: document.id } satisfies MinimumLine);
  // the calendar year's bills are only tracked for an annual minimum (the state stays the same otherwise)
  const yearBills = metering.annualMinimum === undefined ? ZERO : new Dec(carriedIn.yearBills).plus(Dec.max(before, 0));
  out.yearBills = formatDecimal(yearBills);
  if (closesCycle && billMonth === ANNUAL_MINIMUM_MONTH) {
    if (metering.annualMinimum !== undefined && yearBills.lt(metering.annualMinimum)) {
      const annual = new Dec(metering.annualMinimum);
      lines.push({
        type: 'minimum',
        scope: 'annual',
        minimum: formatMoney(annual, minorUnit),
        billed: formatMoney(yearBills, minorUnit),
        amount: formatMoney(annual.minus(yearBills), minorUnit),
        tariffId: document.id,
      });
    }
    out.yearBills = '0';
  }

  let paid = ZERO;
  let expired = ZERO;
  if (trueUp) {
    // a settlement before the true-up month pays every balance (nothing later would roll it over or expire it)
    const payOut = settledBy !== undefined || (metering.mode === 'net_metering' ? metering.netMetering!.carryOver === 'dollars' : metering.netBilling !== undefined);
    if (payOut && balance.gt(0)) {
      if (metering.netBilling?.creditExpiresAtTrueUp && !settledBy) expired = balance;
      else {
        paid = balance;
        settlement.push(moneyLine('trueup', paid, base.currency, minorUnit, document.id));
      }
      balance = ZERO;
    }
  }
  out.creditBalance = formatDecimal(balance);
  lines.push(...settlement);
  if (meteringSummary.carryOver === 'dollars' || !new Dec(carriedIn.creditBalance).isZero() || rolledOver.gt(0))
    meteringSummary.credit = {
      balanceIn: formatMoney(new Dec(carriedIn.creditBalance), minorUnit),
      earned: formatMoney(earned, minorUnit),
      applied: formatMoney(applied, minorUnit),
      rolledOver: formatMoney(rolledOver, minorUnit),
      paidAtTrueUp: formatMoney(paid, minorUnit),
      expired: formatMoney(expired, minorUnit),
      balanceOut: formatMoney(balance, minorUnit),
    };

  // taxes on the subtotal of the window's charges; the true-up payment is a settlement, not taxed
  const taxable = sumAmounts(lines.filter((l) => !(l.type === 'export_credit' && l.period === 'trueup')));
  const taxLines: TaxLine[] = tariff.taxes.map((tax) => ({
    type: 'tax',
    name: tax.name,
    rate: formatDecimal(tax.rate),
    base: formatMoney(taxable, minorUnit),
    amount: formatMoney(roundMoney(taxable.mul(tax.rate), minorUnit), minorUnit),
  }));
  const subtotal = sumAmounts(lines);
  const taxes = sumAmounts(taxLines);
  return {
    ...base,
    lines: [...lines, ...taxLines],
    subtotal: formatMoney(subtotal, minorUnit),
    taxes: formatMoney(taxes, minorUnit),
    total: formatMoney(subtotal.plus(taxes), minorUnit),
    metering: meteringSummary,
  };
}

/** The documents rating a window, in time order (one per piece). */
function documentsOf(timeline: TariffTimelineEntry[], window: TimeSpan): TariffDocument[] {
  const entries = [...timeline].sort((a, b) => a.from - b.from);
  const found = entries.filter((e, i) => e.from < window.to && (e.to ?? entries[i + 1]?.from ?? Infinity) > window.from).map((e) => e.tariff);
  if (found.length === 0) throw new RatingError('no_tariff_in_effect', 'no tariff in effect for the window', [`${iso(window.from)} to ${iso(window.to)}`]);
  return found;
}

const strippedDocuments = new WeakMap<TariffDocument, TariffDocument>();
const optionFreeDocuments = new WeakMap<TariffDocument, TariffDocument>();
const METERING_FIELDS = ['netMetering', 'netBilling', 'dgRules', 'annualMinimumCharge'];

/** The document without its metering options (the core rates the window; this module applies the mode). Cached per document. */
function withoutMeteringOptions(document: TariffDocument): TariffDocument {
  if (!METERING_FIELDS.some((f) => f in document)) return document;
  let stripped = optionFreeDocuments.get(document);
  if (!stripped) {
    stripped = Object.fromEntries(Object.entries(document).filter(([k]) => !METERING_FIELDS.includes(k))) as TariffDocument;
    optionFreeDocuments.set(document, stripped);
  }
  return stripped;
}

/** Also without minimum charge and taxes, which this module settles after carried credits. Cached per document. */
function withoutMetering(document: TariffDocument): TariffDocument {
  let stripped = strippedDocuments.get(document);
  if (!stripped) {
    const drop = [...METERING_FIELDS, 'minimumCharge', 'taxes'];
    stripped = Object.fromEntries(Object.entries(document).filter(([k]) => !drop.includes(k))) as TariffDocument;
    strippedDocuments.set(document, stripped);
  }
  return stripped;
}

/** Dynamic prices cannot be netted per period over a window (a monthly net has no price slot): refused, never priced by guess. */
function refuseUnnettable(tariff: CompiledTariff, tariffId: string): void {
  if (tariff.dynamicPrices.length)
    throw new RatingError('net_metering_not_rated', `net metering cannot rate this tariff: ${tariffId} has dynamic prices, which cannot be netted per period over a window`, [
      `${tariffId}: dynamicPrices`,
    ]);
}

/** Import and export kWh per energy period (index) of the window's intervals. */
function periodSums(intervals: MeterInterval[], tariff: CompiledTariff): { importKwh: Dec; exportKwh: Dec }[] {
  const imp = tariff.energyPeriods.map(() => 0n);
  const exp = tariff.energyPeriods.map(() => 0n);
  for (const interval of intervals) {
    const p = tariff.classifier.classify(interval.intervalStart).energyPeriod;
    if (p < 0) continue;
    imp[p] += BigInt(interval.importMwh);
    exp[p] += BigInt(interval.exportMwh);
  }
  return imp.map((i, p) => ({ importKwh: fromMilli(i), exportKwh: fromMilli(exp[p]) }));
}

function netEnergyLines(tariff: CompiledTariff, tariffId: string, split: Map<number, [number, Dec][]>): EnergyLine[] {
  const lines: EnergyLine[] = [];
  [...split.keys()]
    .sort((a, b) => a - b)
    .forEach((p) =>
      split.get(p)!.forEach(([t, quantity]) => {
        if (!quantity.gt(0)) return;
        const rate = tariff.energyPeriods[p].tiers[t].rate;
        lines.push({
          type: 'energy',
          period: tariff.energyPeriods[p].id,
          tier: t + 1,
          quantity: formatDecimal(quantity),
          unit: 'kWh',
          rate: formatDecimal(rate),
          amount: formatMoney(roundMoney(quantity.mul(rate), tariff.minorUnit), tariff.minorUnit),
          tariffId,
        });
      }),
    );
  return lines;
}

/**
 * Import and export netted within each local clock hour (the repeated hour of a fall-back day is two
 * clock hours): the hour's net goes to its first interval, its other intervals keep their place with 0.
 */
export function netPerLocalHour(intervals: MeterInterval[], tariff: CompiledTariff): MeterInterval[] {
  const clock = tariff.classifier.clock;
  const groups = new Map<string, number[]>();
  intervals.forEach((interval, i) => {
    const start = interval.intervalStart;
    const key = `${Math.floor(clock.localMinutes(start) / 60)}/${clock.offsetAt(start)}`;
    const group = groups.get(key);
    if (group) group.push(i);
    else groups.set(key, [i]);
  });
  const netted = intervals.map((interval) => ({ ...interval }));
  for (const members of groups.values()) {
    if (members.length < 2) continue;
    let net = 0n;
    for (const i of members) net += BigInt(intervals[i].importMwh) - BigInt(intervals[i].exportMwh);
    members.forEach((i, k) => {
      netted[i].importMwh = k === 0 && net > 0n ? net.toString() : '0';
      netted[i].exportMwh = k === 0 && net < 0n ? (-net).toString() : '0';
    });
  }
  return netted;
}

/** The window's minimum charge, prorated as the core prorates it (per day: x days; per month: x months), rounded. */
function monthlyMinimum(tariff: CompiledTariff, clock: CompiledTariff['classifier']['clock'], window: TimeSpan, cycle: TimeSpan | undefined): Dec | null {
  const minimum = tariff.minimumCharge;
  if (!minimum) return null;
  const quantity = minimum.per === 'day' ? new Dec(clock.daysStartingIn(window.from, window.to)) : monthsOf(clock, window, cycle);
  return roundMoney(quantity.mul(minimum.amount), tariff.minorUnit);
}

function moneyLine(period: 'trueup' | 'carryover', value: Dec, currency: string, minorUnit: number, tariffId: string): SettlementLine {
  return { type: 'export_credit', period, quantity: formatMoney(value, minorUnit), unit: currency, rate: '1', amount: formatMoney(value.neg(), minorUnit), tariffId };
}

function sumAmounts(lines: { amount: string }[]): Dec {
  return lines.reduce((s, l) => s.plus(l.amount), ZERO);
}

function isSorted(intervals: MeterInterval[]): boolean {
  for (let i = 1; i < intervals.length; i++) if (!(intervals[i - 1].intervalStart <= intervals[i].intervalStart)) return false;
  return true;
}

/** Index of the first interval starting at or after `instant` (binary search on sorted intervals). */
function firstAtOrAfter(sorted: MeterInterval[], instant: number): number {
  let [low, high] = [0, sorted.length];
  while (low < high) {
    const mid = (low + high) >> 1;
    if (sorted[mid].intervalStart < instant) low = mid + 1;
    else high = mid;
  }
  return low;
}

function iso(instant: number): string {
  return new Date(instant).toISOString();
}
