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
import type { ZoneClock } from './local-time.js';
import type { TariffDocument } from './tariff.schema.js';
import { Dec, formatDecimal, formatMoney, fromMilli, ZERO } from './money.js';
import { allNumbers, isZeroMwh } from './mwh.js';
import { piecesOfWindow, type TariffTimelineEntry } from './timeline.js';

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
}

/**
 * Rates the intervals of a billing window. Throws RatingError for an invalid window, invalid or
 * overlapping intervals, a part of the window without tariff, an invalid tariff document, tariffs in
 * different currencies, or a missing dynamic price.
 */
export function rateWindow(input: RateWindowInput): Charges {
  const { billingWindow: window, billingCycle, meterIntervalSeconds } = input;
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
        share: shareOfReference(clock, piece.inEffect, billingCycle ?? window),
        days: clock.daysStartingIn(piece.from, piece.to),
        months: monthsOf(clock, piece, billingCycle),
        billingDemandKw: ZERO,
      },
      { reference: billingCycle ?? window, history: input.demandHistory },
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
    asOf: last ? isoInstant(last.end) : null,
    coverage: coverageOf(intervals, window, meterIntervalSeconds),
    pieces: pieces.map((piece, i) => ({
      from: isoInstant(piece.from),
      to: isoInstant(piece.to),
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
  if (tariff.netMetering) refuseExportUnderNetMetering(piece);
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
                from: isoInstant(ratchet!.from),
                to: isoInstant(ratchet!.to),
                peakKw: formatDecimal(ratchet!.peakKw),
                lookbackPercent: formatDecimal(ratchet!.percent),
              },
            }
          : {}),
      };
  }
  const lines = [
    ...energyLines(piece, classes),
    ...dynamicEnergyLines(piece),
    ...(maxima ? demandLines(piece, maxima, ratchet) : []),
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

/** Net metering nets import against export across the window: not rated yet, so a window with export is refused. */
function refuseExportUnderNetMetering(piece: PieceContext): void {
  const exporting = piece.intervals.filter((i) => !isZeroMwh(i.exportMwh));
  if (exporting.length === 0) return;
  throw new RatingError(
    'net_metering_not_rated',
    `tariff ${piece.tariffId} nets import against export (net metering), which is not rated yet; ${exporting.length} intervals of the window export`,
    exporting.slice(0, 20).map((i) => `${isoInstant(i.start)}: exports`),
  );
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

/** ISO 8601 UTC without milliseconds when they are zero, as the contract writes instants. */
function isoInstant(instant: number): string {
  return new Date(instant).toISOString().replace('.000Z', 'Z');
}
