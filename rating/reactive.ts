/**
 * Reactive power charge (URDB `demandreactivepowercharge`, $/kVAR): rate x the highest reactive demand of
 * the billing window. Reactive demand is measured exactly as active demand is (demand.ts), from reactive
 * import energy (lagging, OBIS 3.8.0, Q+) instead of active import: an interval's kvarh / its hours, or the
 * block average over the tariff's demand window.
 *
 * Meters that do not measure reactive energy send none (null), which is not 0: the charge is measured on the
 * intervals that carry it. When some intervals of the piece lack it, the charges say so in a note
 * `reactive_data_missing: N of M intervals without reactive energy`; when all lack it, no reactive charge is
 * invented: the line is absent and the note says why.
 */
import type { InstantClass } from './classify.js';
import { forEachDemand } from './demand.js';
import type { PieceContext, PricedLine, ReactiveDemandLine } from './lines.js';
import { price } from './lines.js';
import { formatDecimal, fromMilli } from './money.js';

/** The reactive demand line of a piece (none when its tariff has no reactive charge or no interval measured it), and its notes. */
export function reactiveDemandLines(piece: PieceContext, classes: InstantClass[]): { lines: PricedLine[]; notes: string[] } {
  const rate = piece.tariff.reactiveRate;
  if (rate === null) return { lines: [], notes: [] };
  const total = piece.intervals.length;
  let missing = 0;
  for (const interval of piece.intervals) if (interval.reactiveImportMvarh === null) missing++;
  const notes =
    missing > 0
      ? [
          `reactive_data_missing: ${missing} of ${total} intervals without reactive energy` +
            (missing === total
              ? `; ${piece.tariffId}: reactive power charge not billed`
              : `; ${piece.tariffId}: reactive power charge measured on the other ${total - missing}`),
        ]
      : [];
  if (total === 0 || missing === total) return { lines: [], notes };
  let maximum = 0n;
  forEachDemand(
    piece,
    classes,
    0n,
    (interval) => BigInt(interval.reactiveImportMvarh ?? 0),
    (a, b) => a + b,
    (mvarh, perHour) => mvarh * BigInt(perHour),
    (millivar) => {
      if (millivar > maximum) maximum = millivar;
    },
  );
  const measured = fromMilli(maximum);
  const prorated = !piece.share.eq(1);
  const quantity = prorated ? measured.mul(piece.share) : measured;
  const { amount, text } = price(quantity, rate, piece.tariff.minorUnit);
  const line: ReactiveDemandLine = {
    type: 'demand',
    period: 'reactive',
    tier: 1,
    quantity: formatDecimal(quantity),
    unit: 'kVAR',
    rate: formatDecimal(rate),
    amount: text,
    tariffId: piece.tariffId,
    ...(prorated ? { measuredKvar: formatDecimal(measured), prorationFactor: formatDecimal(piece.share) } : {}),
  };
  return { lines: [{ line, amount }], notes };
}
