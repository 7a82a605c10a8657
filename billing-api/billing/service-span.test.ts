/** The part of a cycle in service and the tariff timeline limited to it (pure). */
import { describe, expect, it } from 'vitest';
import type { TariffDocument } from '../../rating/index.js';
import { serviceEndsIn, serviceStartsIn, serviceWindow, timelineWithin } from './service-span.js';

const cycle = { from: 1_000, to: 2_000 };
const tariff = (id: string) => ({ id }) as unknown as TariffDocument;

describe('service window of a cycle', () => {
  it('is the whole cycle without a span, the overlap with one, and null outside it', () => {
    expect(serviceWindow(cycle, undefined)).toEqual(cycle);
    expect(serviceWindow(cycle, { start: null, end: null })).toEqual(cycle);
    expect(serviceWindow(cycle, { start: 1_500, end: null })).toEqual({ from: 1_500, to: 2_000 });
    expect(serviceWindow(cycle, { start: 500, end: 1_200 })).toEqual({ from: 1_000, to: 1_200 });
    expect(serviceWindow(cycle, { start: 2_000, end: null })).toBeNull();
    expect(serviceWindow(cycle, { start: null, end: 1_000 })).toBeNull();
  });

  it('limits every timeline entry to the window, open ends closed by the next entry, and drops those outside', () => {
    const timeline = [
      { from: Number.NEGATIVE_INFINITY, tariff: tariff('a') },
      { from: 1_400, tariff: tariff('b') },
      { from: 2_500, tariff: tariff('c') },
    ];
    expect(timelineWithin(timeline, { from: 1_200, to: 2_000 }).map((e) => [e.tariff.id, e.from, e.to])).toEqual([
      ['a', 1_200, 1_400],
      ['b', 1_400, 2_000],
    ]);
    expect(timelineWithin(timeline, { from: 1_500, to: 1_600 }).map((e) => e.tariff.id)).toEqual(['b']);
  });
});

describe('a service start or end inside a cycle', () => {
  it('starts in the cycle after its start and before its end; ends in it after its start and up to its end', () => {
    expect([null, 1_000, 1_500, 2_000].map((start) => serviceStartsIn(cycle, { start, end: null }))).toEqual([false, false, true, false]);
    expect([null, 1_000, 1_500, 2_000, 2_500].map((end) => serviceEndsIn(cycle, { start: null, end }))).toEqual([false, false, true, true, false]);
    expect(serviceStartsIn(cycle, undefined) || serviceEndsIn(cycle, undefined)).toBe(false);
  });
});
