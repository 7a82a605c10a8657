import { describe, expect, it } from 'vitest';
import { parseInstant, readingSchema, whToMwh, type Reading } from '../../../common/reading.js';
import { createFleet } from '../fleet.js';
import { fleetReadings } from '../readings.js';
import { EXPECTED_REASON, INVALID_KINDS, corruptReading } from './corruptions.js';
import { FaultInjector, MAX_LATE_INTERVALS, MAX_REORDER_DISTANCE, type OutgoingItem } from './injector.js';
import { FaultSpecError, parseFaultSpec, type FaultSpec } from './spec.js';

const from = Date.parse('2025-02-01T00:00:00Z');
const to = from + 4 * 86_400_000;
const fleet = createFleet({ meters: 30, seed: 'faults', profile: 'mixed' });
const readings: Reading[] = [...fleetReadings(fleet.meters, from, to)];

/** Pushes every reading, acknowledges every reading item at once, drains: what a device would send. */
function inject(spec: FaultSpec, seed = 'faults'): { items: OutgoingItem[]; injector: FaultInjector } {
  const injector = new FaultInjector(spec, seed);
  const items: OutgoingItem[] = [];
  const drain = () => {
    for (let item = injector.take(); item; item = injector.take()) {
      items.push(item);
      if (item.reading) injector.acknowledged(item.meterId, item.intervalStart);
    }
  };
  for (const reading of readings) {
    injector.push(reading);
    drain();
  }
  injector.end();
  drain();
  return { items, injector };
}

const key = (r: { meterId: string; intervalStart: number }) => `${r.meterId}|${r.intervalStart}`;
const spec = (text: string) => parseFaultSpec(text);

describe('parseFaultSpec', () => {
  it('reads every kind and defaults the others to 0', () => {
    expect(parseFaultSpec('duplicate=0.1, gap=0.02')).toEqual({
      duplicate: 0.1, reorder: 0, invalid: 0, gap: 0.02, late: 0, conflict: 0,
    });
    expect(parseFaultSpec('')).toEqual(parseFaultSpec('duplicate=0'));
  });

  it('lists every problem at once', () => {
    try {
      parseFaultSpec('dupe=0.1,gap=2,late=x,invalid=0.5');
      expect.unreachable();
    } catch (error) {
      expect((error as FaultSpecError).problems).toEqual([
        'unknown fault "dupe" (known: duplicate, reorder, invalid, gap, late, conflict)',
        'gap: probability must be between 0 and 1, got 2',
        'late: expected late=<probability>, got "late=x"',
      ]);
    }
    expect(() => parseFaultSpec('gap=0.6,invalid=0.6')).toThrow(/gap \+ invalid must be <= 1/);
  });
});

describe('FaultInjector', () => {
  it('without faults sends every reading once, in order', () => {
    const { items } = inject(spec(''));
    expect(items.map((i) => i.reading)).toEqual(readings);
  });

  it('is deterministic for a seed and differs across seeds', () => {
    const all = spec('duplicate=0.1,reorder=0.1,invalid=0.1,gap=0.1,late=0.05,conflict=0.1');
    expect(inject(all).items).toEqual(inject(all).items);
    expect(inject(all, 'other').items).not.toEqual(inject(all).items);
  });

  it('decides the fate of a reading independently of the stream it is in', () => {
    const all = spec('duplicate=0.2,invalid=0.2,gap=0.2,conflict=0.2');
    const meterId = fleet.meters[4].id;
    const alone = new FaultInjector(all, 'faults');
    const mixed = new FaultInjector(all, 'faults');
    for (const r of readings) {
      mixed.push(r);
      if (r.meterId === meterId) alone.push(r);
    }
    const fates = (injector: FaultInjector) => {
      const seen: string[] = [];
      for (let item = injector.take(); item; item = injector.take()) {
        if (item.meterId === meterId) seen.push(`${item.kind}|${item.intervalStart}|${item.invalidKind}`);
      }
      return seen.sort();
    };
    expect(fates(mixed)).toEqual(fates(alone));
  });

  it.each([
    ['gap', 0.1],
    ['invalid', 0.1],
    ['duplicate', 0.05],
    ['reorder', 0.2],
    ['late', 0.03],
    ['conflict', 0.08],
  ] as const)('%s=%s happens at roughly that rate', (kind, p) => {
    const { injector } = inject(spec(`${kind}=${p}`));
    const base = kind === 'gap' || kind === 'invalid' ? injector.counts.readings : injector.counts.delivered;
    const rate = injector.counts[kind] / base;
    const sigma = Math.sqrt((p * (1 - p)) / base);
    expect(Math.abs(rate - p)).toBeLessThan(4 * sigma);
  });

  it('gap: the reading is never sent', () => {
    const { items, injector } = inject(spec('gap=0.1'));
    const sent = new Set(items.map(key));
    expect(readings.filter((r) => !sent.has(key(r))).length).toBe(injector.counts.gap);
    expect(items.every((i) => i.kind === 'reading')).toBe(true);
  });

  it('invalid: a corrupted variant replaces the reading, each failing the contract the way it claims', () => {
    const { items, injector } = inject(spec('invalid=0.3'));
    const invalid = items.filter((i) => i.kind === 'invalid');
    expect(invalid.length).toBe(injector.counts.invalid);
    const kinds = new Set(invalid.map((i) => i.invalidKind));
    expect([...kinds].sort()).toEqual([...INVALID_KINDS].sort());
    const valid = new Set(items.filter((i) => i.reading).map(key));
    for (const item of invalid) {
      expect(valid.has(key(item))).toBe(false);
      expect(item.expectedReason).toBe(EXPECTED_REASON[item.invalidKind!]);
      checkReason(item);
    }
  });

  it('duplicate: an identical resend follows its original within a few readings of the meter', () => {
    const { items, injector } = inject(spec('duplicate=0.1'));
    const originals = new Map(items.map((item, position) => [key(item), { item, position }] as const).filter(([, v]) => v.item.kind === 'reading'));
    const duplicates = items.filter((i) => i.kind === 'duplicate');
    expect(duplicates.length).toBe(injector.counts.duplicate);
    for (const duplicate of duplicates) {
      const original = originals.get(key(duplicate))!;
      expect(duplicate.json).toBe(original.item.json);
      expect(items.indexOf(duplicate, original.position)).toBeGreaterThan(original.position);
    }
  });

  it('reorder: the reading comes after 1 to 4 later readings of its meter; late: well after, or at the end', () => {
    const { items } = inject(spec('reorder=0.1,late=0.05'));
    const byMeter = new Map<string, OutgoingItem[]>();
    for (const item of items) byMeter.set(item.meterId, [...(byMeter.get(item.meterId) ?? []), item]);
    let reordered = 0;
    let overtaken = 0;
    let late = 0;
    for (const stream of byMeter.values()) {
      let newest = -Infinity;
      const seen: number[] = [];
      for (const item of stream) {
        const overtakenBy = seen.filter((start) => start > item.intervalStart).length;
        if (item.delay === 'reordered') {
          reordered++;
          // Overtaken by the next 1-4 readings, unless those were delayed too or the stream ended.
          expect(overtakenBy).toBeLessThanOrEqual(MAX_REORDER_DISTANCE);
          if (overtakenBy >= 1) overtaken++;
        } else if (item.delay === 'late') {
          late++;
          // Due 4 to 96 intervals later, or flushed at the end of a stream that stopped before it was due.
          const flushedAtEnd = to - 900_000 - item.intervalStart < MAX_LATE_INTERVALS * 900_000;
          expect(newest - item.intervalStart >= 4 * 900_000 || flushedAtEnd).toBe(true);
        }
        seen.push(item.intervalStart);
        newest = Math.max(newest, item.intervalStart);
      }
      expect(new Set(stream.map(key)).size).toBe(stream.length); // nothing lost, nothing doubled
    }
    expect(overtaken / reordered).toBeGreaterThan(0.9);
    expect(late).toBeGreaterThan(0);
    expect(items.length).toBe(readings.length);
  });

  it('conflict: a variant with other values, released only after its original was acknowledged', () => {
    const injector = new FaultInjector(spec('conflict=0.2'), 'faults');
    for (const reading of readings) injector.push(reading);
    injector.end();
    const first: OutgoingItem[] = [];
    for (let item = injector.take(); item; item = injector.take()) first.push(item);
    expect(first.some((i) => i.kind === 'conflict')).toBe(false);
    expect(injector.conflictsWaiting).toBe(injector.counts.conflict);
    const original = first[0];
    injector.acknowledged(original.meterId, original.intervalStart);
    injector.acknowledged(first[1].meterId, first[1].intervalStart);
    const released: OutgoingItem[] = [];
    for (let item = injector.take(); item; item = injector.take()) released.push(item);
    for (const conflict of released) {
      expect(conflict.kind).toBe('conflict');
      expect(conflict.expectedReason).toBe('conflicting_duplicate');
      const parsed = readingSchema.parse(JSON.parse(conflict.json!));
      const source = readingSchema.parse(JSON.parse(first.find((i) => key(i) === key(conflict))!.json!));
      expect(parsed.intervalStart).toBe(source.intervalStart);
      expect(parsed.importWh).not.toBe(source.importWh);
    }
    const all = inject(spec('conflict=0.1'));
    expect(all.items.filter((i) => i.kind === 'conflict').length).toBe(all.injector.counts.conflict);
  });
});

/** Checks that an invalid item fails the contract for the reason it claims. */
function checkReason(item: OutgoingItem): void {
  if (item.invalidKind === 'invalid_json') {
    expect(() => JSON.parse(item.rawPayload!)).toThrow();
    return;
  }
  const parsed = readingSchema.safeParse(JSON.parse(item.json!));
  const meter = fleet.meters.find((m) => m.id === item.meterId)!;
  switch (item.expectedReason) {
    case 'schema':
      expect(parsed.success).toBe(false);
      break;
    case 'misaligned':
      expect(parsed.success).toBe(true);
      expect(parseInstant(parsed.data!.intervalStart)! % (parsed.data!.intervalSeconds * 1000)).not.toBe(0);
      break;
    case 'interval_mismatch':
      expect(parsed.success).toBe(true);
      expect(parsed.data!.intervalSeconds).not.toBe(meter.intervalSeconds);
      expect(parseInstant(parsed.data!.intervalStart)! % (parsed.data!.intervalSeconds * 1000)).toBe(0);
      break;
    case 'future':
      expect(parsed.success).toBe(true);
      expect(parseInstant(parsed.data!.intervalStart)!).toBeGreaterThan(Date.now() + 365 * 86_400_000);
      break;
    default:
      throw new Error(`unexpected reason ${item.expectedReason}`);
  }
}

describe('corruptReading', () => {
  const reading = readings.find((r) => r.importMwh > 10_000)!;
  it('too_many_decimals writes four decimals in the JSON text', () => {
    const { wire } = corruptReading(reading, 'too_many_decimals') as { wire: Record<string, unknown> };
    expect(JSON.stringify(wire.importWh)).toMatch(/\.\d{4}$/);
    expect(whToMwh(wire.importWh as number)).toBeNull();
  });
});
