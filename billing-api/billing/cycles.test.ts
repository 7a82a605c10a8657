/**
 * Billing cycle arithmetic. Every expected instant is written out by hand from the zone's offsets
 * (Los Angeles: PST -08, PDT -07 from 8 March to 1 November 2026; London: GMT, BST +01 from 29 March to
 * 25 October 2026; Santiago: -04, -03 from 6 September 2026 at local midnight).
 */
import { describe, expect, it } from 'vitest';
import { cycleContaining, cycleDays, localDate, nextCycle } from './cycles.js';

const at = (iso: string) => Date.parse(iso);
const span = (c: { from: number; to: number }) => [new Date(c.from).toISOString(), new Date(c.to).toISOString()];
const hours = (c: { from: number; to: number }) => (c.to - c.from) / 3_600_000;

describe('billing cycles', () => {
  it('March in Los Angeles (billing day 1) runs from PST midnight to PDT midnight: 743 hours', () => {
    const c = cycleContaining(at('2026-03-15T12:00:00Z'), 'America/Los_Angeles', 1);
    expect(span(c)).toEqual(['2026-03-01T08:00:00.000Z', '2026-04-01T07:00:00.000Z']);
    expect(hours(c)).toBe(743);
    expect(cycleDays(c, 'America/Los_Angeles')).toEqual({ firstDay: '2026-03-01', lastDay: '2026-03-31', days: 31 });
  });

  it('a cycle from 15 October to 15 November in Los Angeles holds the fall-back day: 745 hours', () => {
    const c = cycleContaining(at('2026-11-01T09:30:00Z'), 'America/Los_Angeles', 15);
    expect(span(c)).toEqual(['2026-10-15T07:00:00.000Z', '2026-11-15T08:00:00.000Z']);
    expect(hours(c)).toBe(745);
    expect(cycleDays(c, 'America/Los_Angeles')).toEqual({ firstDay: '2026-10-15', lastDay: '2026-11-14', days: 31 });
  });

  it('March and October in London', () => {
    const march = cycleContaining(at('2026-03-29T12:00:00Z'), 'Europe/London', 1);
    expect(span(march)).toEqual(['2026-03-01T00:00:00.000Z', '2026-03-31T23:00:00.000Z']);
    expect(hours(march)).toBe(743);
    const october = cycleContaining(at('2026-10-01T00:30:00+01:00'), 'Europe/London', 1);
    expect(span(october)).toEqual(['2026-09-30T23:00:00.000Z', '2026-11-01T00:00:00.000Z']);
    expect(hours(october)).toBe(745);
  });

  it('an instant at the cycle start belongs to that cycle; a millisecond earlier to the previous one', () => {
    const start = at('2026-03-01T08:00:00Z');
    expect(cycleContaining(start, 'America/Los_Angeles', 1).from).toBe(start);
    expect(span(cycleContaining(start - 1, 'America/Los_Angeles', 1))).toEqual(['2026-02-01T08:00:00.000Z', '2026-03-01T08:00:00.000Z']);
  });

  it('billing days 29-31 clamp to the month end, and cycles stay contiguous', () => {
    let c = cycleContaining(at('2026-02-10T00:00:00Z'), 'Europe/London', 31);
    const seen = [span(c)];
    for (let i = 0; i < 3; i++) {
      const next = nextCycle(c, 'Europe/London', 31);
      expect(next.from).toBe(c.to);
      c = next;
      seen.push(span(c));
    }
    expect(seen).toEqual([
      ['2026-01-31T00:00:00.000Z', '2026-02-28T00:00:00.000Z'],
      ['2026-02-28T00:00:00.000Z', '2026-03-30T23:00:00.000Z'],
      ['2026-03-30T23:00:00.000Z', '2026-04-29T23:00:00.000Z'],
      ['2026-04-29T23:00:00.000Z', '2026-05-30T23:00:00.000Z'],
    ]);
    // 2028 is a leap year: day 29 exists in February.
    expect(span(cycleContaining(at('2028-03-01T00:00:00Z'), 'UTC', 29))).toEqual(['2028-02-29T00:00:00.000Z', '2028-03-29T00:00:00.000Z']);
    expect(span(cycleContaining(at('2027-03-01T00:00:00Z'), 'UTC', 29))).toEqual(['2027-02-28T00:00:00.000Z', '2027-03-29T00:00:00.000Z']);
  });

  it('a billing day whose midnight does not exist starts at the first instant after it (Santiago, 6 September)', () => {
    const c = cycleContaining(at('2026-09-20T12:00:00Z'), 'America/Santiago', 6);
    // 00:00 -04 is skipped to 01:00 -03 = 04:00Z.
    expect(span(c)).toEqual(['2026-09-06T04:00:00.000Z', '2026-10-06T03:00:00.000Z']);
  });

  it('local dates in the account zone', () => {
    expect(localDate(at('2026-04-01T06:59:00Z'), 'America/Los_Angeles')).toBe('2026-03-31');
    expect(localDate(at('2026-04-01T07:00:00Z'), 'America/Los_Angeles')).toBe('2026-04-01');
  });

  it('refuses a zone that is not IANA', () => {
    expect(() => cycleContaining(0, 'Mars/Olympus', 1)).toThrow(/IANA/);
  });
});
