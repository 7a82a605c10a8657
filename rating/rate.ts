/**
 * The pure rating core: tariff timeline + meter intervals + billing window -> charges, exactly as
 * CONTRACT.md sections 3 and 4 define them. No I/O, no clock: the same input always gives the same output,
 * whatever the order of the intervals.
 *
 * A window spanning a change of tariff document (an assignment change or a new version) is rated in
 * pieces, each with its own document: its own periods, tiers, demand, fixed charges and minimum charge.
 * Tier limits and demand charges of a document in effect for part of the billing cycle are prorated by
 * its share of the cycle's days; fixed charges count the piece's own days. Taxes apply to the subtotal of
 * the pieces whose document lists them (with one document: the subtotal).
 */
import type { InstantClass } from './classify.js';
import { type CompiledTariff, compileTariff } from './compiled-tariff.js';
import { demandLines, type Maxima, measureDemand, needsDemand, type Ratchet } from './demand.js';
import { dynamicEnergyLines, energyLines, exportCreditLines } from './energy.js';
import { RatingError } from './errors.js';
import { fixedChargeLines, minimumChargeLine, monthsOf, shareOfReference } from './fixed.js';
import {
  type Coverage,
  coverageOf,
  intervalsInWindow,
  METER_INTERVAL_SECONDS,
  type MeterInterval,
  type TimeSpan,
} from './intervals.js';
import type { ChargeLine, PieceContext, PricedLine, TaxLine } from './lines.js';
import { price } from './lines.js';
import { reactiveDemandLines } from './reactive.js';
import { isoUtc } from '../common/time.js';
import type { ZoneClock } from './local-time.js';
import type { TariffDocument } from './tariff.schema.js';
import { Dec, formatDecimal, formatMoney, fromMilli, ZERO } from './money.js';
import { allNumbers, isZeroMwh } from './mwh.js';
import { piecesOfWindow, type TariffTimelineEntry } from './timeline.js';
import { type MeteringState, rateMeteredWindows, type WindowMetering } from './metering/billing-windows.js';
import { carriesAcrossWindows, type Metering, meteringOfTariff } from './metering/options.js';
import { ANNUAL_MINIMUM_MONTH } from './metering/sam-rules.js';

export interface RateWindowInput {
  /** Tariff documents in effect over time (see resolveTariffTimeline); must cover the whole window. */
  tariffTimeline: TariffTimelineEntry[];
  /** The meter's stored intervals; those whose intervalStart is outside the window are ignored. */
  intervals: MeterInterval[];
  /** [from, to) on intervalStart, epoch ms UTC. */
  billingWindow: TimeSpan;
  /** The meter's configured interval length; every interval in the window must have it. */
  meterIntervalSeconds: number;
  /**
   * The billing cycle the window belongs to, [from, to) epoch ms: `$/month` charges are x 1 for a window
   * equal to it and prorated by its days otherwise. Without it, monthly charges are prorated per local
   * calendar month. Must contain the window.
   */
  billingCycle?: TimeSpan;
  /**
   * Peak demand of the meter's preceding billing cycles, for demand ratchets (`billingDemand`): each cycle
   * [from, to) with its highest demand in kW (a decimal string, see `peakDemandKw`). Cycles ending after
   * the window's cycle starts are ignored. Without it, a tariff with a ratchet rates on the window's own
   * demand and the charges say that the preceding months were not supplied.
   */
  demandHistory?: DemandHistoryEntry[];
  /**
   * What earlier billing windows carried into this one under a metering mode that carries (net metering,
   * a net billing credit balance, an annual minimum): see metering/README.md. Without it, such a window is
   * rated as the first of its settlement year when that cannot change its charges (no export, no annual
   * minimum settled in it), and refused ('net_metering_not_rated') otherwise; `rateMeteredWindows` rates
   * the windows since `meteringHistoryStart` and supplies it.
   */
  carriedIn?: MeteringState;
  /**
   * The last window of the meter's service (move-out, meter removal or exchange): under a carrying mode,
   * everything carried is settled at its end (see metering/README.md).
   */
  finalWindow?: boolean;
}

/** The peak demand of one preceding billing cycle. */
export interface DemandHistoryEntry {
  from: number;
  to: number;
  peakKw: string;
}

/** What set a piece's billing demand. */
export interface BillingDemand {
  /** the billing demand, kW */
  kw: string;
  /** the piece's own peak demand, kW */
  measuredKw: string;
  /** the preceding cycle whose peak (x lookbackPercent) set it, when the ratchet binds; else absent */
  setBy?: { from: string; to: string; peakKw: string; lookbackPercent: string };
}

/** A part of the window rated with one tariff document. */
export interface RatedPiece {
  /** ISO 8601 UTC */
  from: string;
  to: string;
  tariffId: string;
  /** The document's effectiveFrom (its version), when it has one. */
  tariffEffectiveFrom?: string;
  /** Share of the billing cycle during which the document is in effect; prorates tiers and demand. */
  prorationFactor: string;
  /** The billing demand, when the document has a ratchet or kWh/kW tiers. */
  billingDemand?: BillingDemand;
}

/** The charges of a window in the line format of CONTRACT.md section 3. */
export interface Charges {
  /** ISO 4217 code */
  currency: string;
  /** Ids of the tariffs that rated the window, in time order. */
  tariffIds: string[];
  /** Charge lines in piece order (energy, demand, fixed, export_credit, minimum), then taxes. */
  lines: ChargeLine[];
  /** Sum of the amounts of all lines but taxes. */
  subtotal: string;
  /** Sum of the tax lines. */
  taxes: string;
  /** subtotal + taxes */
  total: string;
  /** End of the latest interval rated (ISO 8601 UTC), null when the window has none. */
  asOf: string | null;
  coverage: Coverage;
  pieces: RatedPiece[];
  /** Informative notes: the tariffs' free-text attributes, what could not be considered. Absent when none. */
  notes?: string[];
  /** Under a metering mode other than instantaneous net billing: what the window netted, carried and settled. */
  metering?: WindowMetering;
}

/**
 * Rates the intervals of a billing window. Throws RatingError for an invalid window, invalid or
 * overlapping intervals, a part of the window without tariff, an invalid tariff document, tariffs in
 * different currencies, a missing dynamic price, or a window whose charges depend on what earlier windows
 * carried when `carriedIn` is not given (see RateWindowInput.carriedIn).
 */
export function rateWindow(input: RateWindowInput): Charges {
  checkWindow(input.billingWindow, input.billingCycle, input.meterIntervalSeconds);
  const metering = meteringOfWindow(input.tariffTimeline, input.billingWindow);
  if (!metering) return ratePlainWindow(input);
  const carries = carriesAcrossWindows(metering);
  if (carries && !input.carriedIn) refuseWithoutHistory(input, metering);
  const [charges] = rateMeteredWindows({
    tariffTimeline: input.tariffTimeline,
    intervals: input.intervals,
    meterIntervalSeconds: input.meterIntervalSeconds,
    windows: [{ window: input.billingWindow, billingCycle: input.billingCycle, demandHistory: input.demandHistory, finalWindow: input.finalWindow }],
    carriedIn: input.carriedIn,
  });
  if (!carriesEnergy(metering) || input.carriedIn) return charges;
  const note = 'metering: nothing carried in from earlier billing windows was considered (rated as the first window of its settlement year)';
  return { ...charges, notes: [...(charges.notes ?? []), note] };
}

/**
 * The metering of the window's tariff documents when one of them nets or carries (anything but
 * instantaneous net billing or buy all / sell all without an annual minimum); null otherwise.
 */
function meteringOfWindow(timeline: TariffTimelineEntry[], window: TimeSpan): Metering | null {
  for (const piece of piecesOfWindow(timeline, window)) {
    const metering = meteringOfTariff(piece.tariff);
    if (carriesAcrossWindows(metering) || metering.mode === 'net_billing_hourly') return metering;
  }
  return null;
}

/**
 * A window under a carrying mode rated without what earlier windows carried: refused when that could
 * change its charges (it exports, or settles an annual minimum), never billed as if nothing was carried.
 */
function refuseWithoutHistory(input: RateWindowInput, metering: Metering): void {
  const exporting = carriesEnergy(metering)
    ? intervalsInWindow(input.intervals, input.billingWindow, input.meterIntervalSeconds).filter((i) => !isZeroMwh(i.exportMwh))
    : [];
  const cycle = input.billingCycle ?? input.billingWindow;
  const tariff = compileTariff(piecesOfWindow(input.tariffTimeline, input.billingWindow)[0].tariff);
  const settlesAnnualMinimum = metering.annualMinimum !== undefined && tariff.classifier.clock.localTime(cycle.to - 1).month === ANNUAL_MINIMUM_MONTH;
  if (exporting.length === 0 && !settlesAnnualMinimum) return;
  const what = metering.mode === 'net_metering' ? 'nets import against export across billing windows (net metering)' : metering.netBilling ? 'carries export credits across billing windows' : 'settles an annual minimum over the year';
  throw new RatingError(
    'net_metering_not_rated',
    `the tariff ${what}: this window's charges depend on what earlier windows carried; rate the windows since the settlement year began (rateMeteredWindows) or pass carriedIn` +
      (exporting.length ? `; ${exporting.length} intervals of the window export` : ''),
    exporting.length ? exporting.slice(0, 20).map((i) => `${isoUtc(i.start)}: exports`) : [`${isoUtc(cycle.from)} to ${isoUtc(cycle.to)}: settles the annual minimum`],
  );
}

/** The mode carries energy or export credit across windows (an annual minimum alone carries only the year's bills). */
function carriesEnergy(metering: Metering): boolean {
  return metering.mode === 'net_metering' || metering.netBilling !== undefined;
}

/**
 * Rates a window as the core does without any metering mode: import billed gross, export credited per
 * interval (instantaneous net billing, buy all / sell all). The metering module builds on it; it rates a
 * window in parts, and `prorationReference` is then the span the whole window's documents are prorated
 * against (its billing cycle, or the whole window): default `billingCycle ?? billingWindow`.
 */
export function ratePlainWindow(input: RateWindowInput, options: { prorationReference?: TimeSpan } = {}): Charges {
  const { billingWindow: window, billingCycle, meterIntervalSeconds } = input;
  const reference = options.prorationReference ?? billingCycle ?? window;
  checkWindow(window, billingCycle, meterIntervalSeconds);
  const intervals = intervalsInWindow(input.intervals, window, meterIntervalSeconds);
  const pieces = piecesOfWindow(input.tariffTimeline, window);
  const tariffs = pieces.map((piece) => compileTariff(piece.tariff));
  const currency = singleCurrency(tariffs);
  const minorUnit = tariffs[0].minorUnit;
  const numeric = allNumbers(intervals);

  let next = 0;
  const rated = pieces.map((piece, i) => {
    const first = next;
    while (next < intervals.length && intervals[next].start < piece.to) next++;
    const clock = tariffs[i].classifier.clock;
    return ratePiece(
      {
        tariff: tariffs[i],
        tariffId: piece.tariff.id,
        intervals: intervals.slice(first, next),
        numeric,
        share: shareOfReference(clock, piece.inEffect, reference),
        days: clock.daysStartingIn(piece.from, piece.to),
        months: monthsOf(clock, piece, billingCycle),
        billingDemandKw: ZERO,
      },
      { reference, history: input.demandHistory },
    );
  });

  const lines = rated.flatMap((r) => r.lines);
  const taxLines = taxLinesOf(rated, minorUnit);
  const subtotal = sum(lines);
  const taxes = sum(taxLines);
  const last = intervals[intervals.length - 1];
  const notes = [...new Set(rated.flatMap((r) => r.notes))];
  return {
    currency,
    tariffIds: [...new Set(pieces.map((p) => p.tariff.id))],
    lines: [...lines, ...taxLines].map((l) => l.line),
    subtotal: formatMoney(subtotal, minorUnit),
    taxes: formatMoney(taxes, minorUnit),
    total: formatMoney(subtotal.plus(taxes), minorUnit),
    asOf: last ? isoUtc(last.end) : null,
    coverage: coverageOf(intervals, window, meterIntervalSeconds),
    pieces: pieces.map((piece, i) => ({
      from: isoUtc(piece.from),
      to: isoUtc(piece.to),
      tariffId: piece.tariff.id,
      ...(piece.tariff.effectiveFrom ? { tariffEffectiveFrom: piece.tariff.effectiveFrom } : {}),
      prorationFactor: formatDecimal(rated[i].share),
      ...(rated[i].billingDemand ? { billingDemand: rated[i].billingDemand } : {}),
    })),
    ...(notes.length ? { notes } : {}),
  };
}

interface PieceCharges {
  lines: PricedLine[];
  subtotal: Dec;
  share: Dec;
  taxes: CompiledTariff['taxes'];
  billingDemand: BillingDemand | null;
  notes: string[];
}

/**
 * Demand first (it sizes kWh/kW tiers), then energy, demand, fixed and export credit lines, then the
 * minimum charge on their subtotal.
 */
function ratePiece(piece: PieceContext, context: { reference: TimeSpan; history: DemandHistoryEntry[] | undefined }): PieceCharges {
  const { tariff } = piece;
  const classifier = tariff.classifier;
  const classes: InstantClass[] = piece.intervals.map((interval) => classifier.classify(interval.start));
  const notes = [...tariff.notes];
  let maxima: Maxima | null = null;
  let ratchet: Ratchet | null = null;
  let billingDemand: BillingDemand | null = null;
  if (needsDemand(piece)) {
    maxima = measureDemand(piece, classes);
    const measured = fromMilli(maxima.peak);
    if (tariff.billingDemand) {
      if (context.history === undefined)
        notes.push(`${piece.tariffId}: demand ratchet not applied: the peak demand of the preceding billing cycles was not supplied`);
      ratchet = ratchetOf(tariff.billingDemand, piece.tariff.classifier.clock, context.reference, context.history ?? []);
    }
    const binds = ratchet !== null && ratchet.kw.gt(measured);
    piece.billingDemandKw = binds ? ratchet!.kw : measured;
    if (tariff.billingDemand || tariff.demandSizedTiers)
      billingDemand = {
        kw: formatDecimal(piece.billingDemandKw),
        measuredKw: formatDecimal(measured),
        ...(binds
          ? {
              setBy: {
                from: isoUtc(ratchet!.from),
                to: isoUtc(ratchet!.to),
                peakKw: formatDecimal(ratchet!.peakKw),
                lookbackPercent: formatDecimal(ratchet!.percent),
              },
            }
          : {}),
      };
  }
  const reactive = reactiveDemandLines(piece, classes);
  notes.push(...reactive.notes);
  const lines = [
    ...energyLines(piece, classes),
    ...dynamicEnergyLines(piece),
    ...(maxima ? demandLines(piece, maxima, ratchet) : []),
    ...reactive.lines,
    ...fixedChargeLines(piece),
    ...exportCreditLines(piece, classes),
  ];
  lines.push(...minimumChargeLine(piece, sum(lines)));
  return { lines, subtotal: sum(lines), share: piece.share, taxes: tariff.taxes, billingDemand, notes };
}

/**
 * The ratchet: lookbackPercent x the highest peak among the preceding billing cycles looked back: the
 * `horizonMonths` latest cycles of the history that end by the start of the reference (the billing cycle,
 * or the window), counting only those whose month is flagged (the local month of the cycle's middle
 * instant). The history lists every preceding cycle (0 kW for a cycle without readings). Null when none
 * counts.
 */
function ratchetOf(billingDemand: NonNullable<CompiledTariff['billingDemand']>, clock: ZoneClock, reference: TimeSpan, history: DemandHistoryEntry[]): Ratchet | null {
  const looked = history
    .filter((entry) => entry.to <= reference.from)
    .sort((a, b) => b.from - a.from)
    .slice(0, billingDemand.horizonMonths);
  let best: DemandHistoryEntry | null = null;
  let bestKw = ZERO;
  for (const entry of looked) {
    const middle = clock.localTime(entry.from + Math.floor((entry.to - entry.from) / 2));
    if (!billingDemand.months[middle.month]) continue;
    const kw = new Dec(entry.peakKw);
    if (kw.gt(bestKw)) [best, bestKw] = [entry, kw];
  }
  if (!best) return null;
  return { kw: bestKw.mul(billingDemand.percent), from: best.from, to: best.to, peakKw: bestKw, percent: billingDemand.percent };
}

/**
 * The highest demand (kW, exact decimal string) of a meter's intervals in a span, measured as `tariff`
 * measures demand (its demand window): what `demandHistory` takes for each preceding billing cycle.
 */
export function peakDemandKw(input: { tariff: TariffDocument; intervals: MeterInterval[]; span: TimeSpan; meterIntervalSeconds: number }): string {
  const tariff = compileTariff(input.tariff);
  const intervals = intervalsInWindow(input.intervals, input.span, input.meterIntervalSeconds);
  const piece: PieceContext = {
    tariff,
    tariffId: input.tariff.id,
    intervals,
    numeric: allNumbers(intervals),
    share: new Dec(1),
    days: 0,
    months: ZERO,
    billingDemandKw: ZERO,
  };
  const classes = intervals.map((interval) => tariff.classifier.classify(interval.start));
  return formatDecimal(fromMilli(measureDemand(piece, classes).peak));
}

/** One line per tax (name and rate), on the subtotal of the pieces whose tariff lists it. */
function taxLinesOf(pieces: PieceCharges[], minorUnit: number): PricedLine[] {
  const bases = new Map<string, { name: string; rate: Dec; base: Dec }>();
  for (const piece of pieces) {
    for (const tax of piece.taxes) {
      const key = `${tax.name}\u0000${formatDecimal(tax.rate)}`;
      const entry = bases.get(key) ?? { ...tax, base: ZERO };
      entry.base = entry.base.plus(piece.subtotal);
      bases.set(key, entry);
    }
  }
  return [...bases.values()].map(({ name, rate, base }) => {
    const { amount, text } = price(base, rate, minorUnit);
    const line: TaxLine = { type: 'tax', name, rate: formatDecimal(rate), base: formatMoney(base, minorUnit), amount: text };
    return { line, amount };
  });
}

function checkWindow(window: TimeSpan, billingCycle: TimeSpan | undefined, meterIntervalSeconds: number): void {
  const problems: string[] = [];
  if (!Number.isSafeInteger(window.from) || !Number.isSafeInteger(window.to) || window.from >= window.to)
    problems.push('billingWindow must be integer epoch ms with from < to');
  if (billingCycle && !(billingCycle.from <= window.from && window.to <= billingCycle.to))
    problems.push('billingCycle must contain billingWindow');
  if (!(METER_INTERVAL_SECONDS as readonly number[]).includes(meterIntervalSeconds))
    problems.push(`meterIntervalSeconds must be one of ${METER_INTERVAL_SECONDS.join(', ')}`);
  if (problems.length) throw new RatingError('invalid_window', 'invalid billing window', problems);
}

function singleCurrency(tariffs: CompiledTariff[]): string {
  const codes = [...new Set(tariffs.map((t) => t.document.currency.code))];
  if (codes.length > 1)
    throw new RatingError('currency_mismatch', 'the window spans tariffs in different currencies', codes);
  return codes[0];
}

function sum(lines: PricedLine[]): Dec {
  return lines.reduce((total, l) => total.plus(l.amount), new Dec(0));
}
