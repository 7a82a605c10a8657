/**
 * Which tariff document is in effect when: a meter's tariff assignments (PUT /v1/meters/{id}/tariff) combined
 * with the stored versions of each tariff (documents with `effectiveFrom`), and the pieces of a billing
 * window that each document rates.
 */
import { RatingError } from './errors.js';
import type { TimeSpan } from './intervals.js';
import type { TariffDocument } from './tariff.schema.js';

/**
 * A tariff document in effect from `from` (epoch ms UTC) until `to`, or when `to` is absent until the
 * next entry's `from` (open-ended for the last entry).
 */
export interface TariffTimelineEntry {
  from: number;
  to?: number;
  tariff: TariffDocument;
}

/** A meter's tariff assignment: `tariffId` in effect from `effectiveFrom` (epoch ms) until the next assignment. */
export interface TariffAssignment {
  tariffId: string;
  effectiveFrom: number;
}

/** A part of the billing window rated with one tariff document. */
export interface TariffPiece extends TimeSpan {
  tariff: TariffDocument;
  /** The whole span the document is in effect (may extend beyond the window). */
  inEffect: TimeSpan;
}

/**
 * The timeline of a meter: each assignment's span, cut where a new version of its tariff takes effect.
 * A version applies from its `effectiveFrom` (a version without one applies from the beginning of time)
 * until the next version of the same id. Spans with no version in effect are left out, so rating a window
 * that touches them fails with 'no_tariff_in_effect' instead of pricing with the wrong version.
 */
export function resolveTariffTimeline(
  assignments: TariffAssignment[],
  versions: TariffDocument[],
): TariffTimelineEntry[] {
  const sorted = [...assignments].sort((a, b) => a.effectiveFrom - b.effectiveFrom);
  const timeline: TariffTimelineEntry[] = [];
  sorted.forEach((assignment, i) => {
    const end = sorted[i + 1]?.effectiveFrom ?? Number.POSITIVE_INFINITY;
    const ofTariff = versions
      .filter((v) => v.id === assignment.tariffId)
      .map((tariff) => ({
        tariff,
        from: tariff.effectiveFrom ? Date.parse(tariff.effectiveFrom) : Number.NEGATIVE_INFINITY,
      }))
      .sort((a, b) => a.from - b.from);
    ofTariff.forEach((version, j) => {
      const from = Math.max(version.from, assignment.effectiveFrom);
      const to = Math.min(ofTariff[j + 1]?.from ?? Number.POSITIVE_INFINITY, end);
      if (from < to) timeline.push({ from, to, tariff: version.tariff });
    });
  });
  return timeline;
}

/**
 * Cuts the window at every change of tariff document. Throws RatingError 'no_tariff_in_effect' naming
 * each part of the window without a tariff, 'invalid_tariff_timeline' when entries overlap.
 */
export function piecesOfWindow(timeline: TariffTimelineEntry[], window: TimeSpan): TariffPiece[] {
  const entries = [...timeline].sort((a, b) => a.from - b.from);
  const spans = entries.map((entry, i) => ({
    tariff: entry.tariff,
    inEffect: { from: entry.from, to: entry.to ?? entries[i + 1]?.from ?? Number.POSITIVE_INFINITY },
  }));
  const overlaps = spans
    .filter((span, i) => i > 0 && span.inEffect.from < spans[i - 1].inEffect.to)
    .map((span) => `${iso(span.inEffect.from)}: ${span.tariff.id} overlaps the entry before it`);
  if (overlaps.length) throw new RatingError('invalid_tariff_timeline', 'tariff timeline entries overlap', overlaps);

  const pieces: TariffPiece[] = [];
  const gaps: string[] = [];
  let covered = window.from;
  for (const span of spans) {
    const from = Math.max(span.inEffect.from, window.from);
    const to = Math.min(span.inEffect.to, window.to);
    if (from >= to) continue;
    if (from > covered) gaps.push(`${iso(covered)} to ${iso(from)}`);
    pieces.push({ from, to, tariff: span.tariff, inEffect: span.inEffect });
    covered = to;
  }
  if (covered < window.to) gaps.push(`${iso(covered)} to ${iso(window.to)}`);
  if (gaps.length) throw new RatingError('no_tariff_in_effect', 'no tariff in effect for part of the window', gaps);
  return pieces;
}

function iso(instant: number): string {
  return new Date(instant).toISOString();
}
