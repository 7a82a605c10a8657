/**
 * What a correction of a meter's tariff assignments changes (pure): the spans of time in which the tariff
 * assigned before and after differ. A correction is allowed only where no closed bill covers such a span,
 * so history that was billed is never repriced.
 */

/** One assignment of a meter: its tariff from `effectiveFrom` (epoch ms; -Infinity for all earlier history) on. */
export interface Assignment {
  id: string;
  tariffId: string;
  effectiveFrom: number;
}

/** [from, to), epoch ms, either end possibly infinite. */
export interface Span {
  from: number;
  to: number;
}

/** The tariff assigned at `t`: the latest assignment starting at or before it (null before the first). */
export function tariffAt(assignments: Assignment[], t: number): string | null {
  let found: Assignment | null = null;
  for (const a of assignments) if (a.effectiveFrom <= t && (!found || a.effectiveFrom > found.effectiveFrom)) found = a;
  return found?.tariffId ?? null;
}

/** Where the tariff in effect differs between two sets of assignments of one meter, merged, in order. */
export function changedSpans(before: Assignment[], after: Assignment[]): Span[] {
  const points = [...new Set([Number.NEGATIVE_INFINITY, ...before.map((a) => a.effectiveFrom), ...after.map((a) => a.effectiveFrom)])].sort((a, b) => a - b);
  const spans: Span[] = [];
  points.forEach((from, i) => {
    const to = points[i + 1] ?? Number.POSITIVE_INFINITY;
    if (tariffAt(before, from) === tariffAt(after, from)) return;
    const last = spans[spans.length - 1];
    if (last && last.to === from) last.to = to;
    else spans.push({ from, to });
  });
  return spans;
}

/** An instant as a refusal names it: ISO 8601 UTC, or the words for the ends of time. */
export function instantText(t: number): string {
  if (t === Number.NEGATIVE_INFINITY) return 'the beginning';
  if (t === Number.POSITIVE_INFINITY) return 'open end';
  return new Date(t).toISOString();
}
