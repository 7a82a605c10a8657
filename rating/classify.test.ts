import { describe, expect, it } from 'vitest';
import { classifyInterval, exampleTariff, RatingError, type TariffDocument } from './index.js';
import { at, flatTariff, local } from './test-support.js';

/** Weekdays: off-peak, peak 16:30-21:00; weekends off-peak all day; Thanksgiving a holiday. */
function halfHourTou(timeZone: string): TariffDocument {
  return flatTariff({
    timeZone,
    holidays: { rules: [{ type: 'nth_weekday', name: 'Thanksgiving Day', month: 11, weekday: 4, nth: 4 }] },
    energy: {
      periods: [
        { id: 'off', tiers: [{ rate: '0.1' }] },
        { id: 'peak', tiers: [{ rate: '0.3' }] },
        { id: 'night', tiers: [{ rate: '0.05' }] },
      ],
      schedule: [
        {
          seasons: ['all'],
          dayTypes: ['weekday'],
          periods: [
            { from: '00:00', period: 'off' },
            { from: '01:00', period: 'night' },
            { from: '02:00', period: 'off' },
            { from: '16:30', period: 'peak' },
            { from: '21:00', period: 'off' },
          ],
        },
        {
          seasons: ['all'],
          dayTypes: ['weekend'],
          periods: [
            { from: '00:00', period: 'off' },
            { from: '01:00', period: 'night' },
            { from: '02:00', period: 'off' },
          ],
        },
      ],
    },
  });
}

describe('classifyInterval', () => {
  it('cuts periods at half hours by local wall-clock time', () => {
    const tariff = halfHourTou('America/Los_Angeles');
    expect(classifyInterval(tariff, local('America/Los_Angeles', '2026-06-10T16:15')).period).toBe('off');
    expect(classifyInterval(tariff, local('America/Los_Angeles', '2026-06-10T16:30')).period).toBe('peak');
    expect(classifyInterval(tariff, local('America/Los_Angeles', '2026-06-10T20:45')).period).toBe('peak');
    expect(classifyInterval(tariff, local('America/Los_Angeles', '2026-06-10T21:00')).period).toBe('off');
  });

  it('reads a +05:30 zone: 16:30 in Kolkata is 11:00 UTC', () => {
    const tariff = halfHourTou('Asia/Kolkata');
    expect(classifyInterval(tariff, at('2026-06-10T10:45:00Z')).period).toBe('off');
    expect(classifyInterval(tariff, at('2026-06-10T11:00:00Z')).period).toBe('peak');
    expect(classifyInterval(tariff, at('2026-06-10T15:15:00Z')).period).toBe('peak'); // 20:45 local
    expect(classifyInterval(tariff, at('2026-06-10T15:30:00Z')).period).toBe('off'); // 21:00 local
  });

  it('rates the repeated fall-back hour twice by its local hour (Los Angeles, 1 November 2026)', () => {
    const tariff = halfHourTou('America/Los_Angeles');
    expect(classifyInterval(tariff, at('2026-11-01T08:15:00Z')).period).toBe('night'); // 01:15 PDT
    expect(classifyInterval(tariff, at('2026-11-01T09:15:00Z')).period).toBe('night'); // 01:15 PST
    expect(classifyInterval(tariff, at('2026-11-01T10:00:00Z')).period).toBe('off'); // 02:00 PST
  });

  it('jumps over the missing spring-forward hour (London, 29 March 2026)', () => {
    const tariff = halfHourTou('Europe/London');
    expect(classifyInterval(tariff, at('2026-03-29T00:45:00Z')).period).toBe('off'); // 00:45 GMT
    expect(classifyInterval(tariff, at('2026-03-29T01:00:00Z')).period).toBe('off'); // 02:00 BST
    expect(classifyInterval(tariff, at('2026-03-29T00:00:00Z')).period).toBe('off');
  });

  it('rates a holiday with the weekend schedule unless the tariff gives holidays their own', () => {
    const tariff = halfHourTou('America/Los_Angeles');
    const thanksgiving = classifyInterval(tariff, local('America/Los_Angeles', '2026-11-26T17:00'));
    expect(thanksgiving).toEqual({ season: 'all', dayType: 'holiday', period: 'off', demandPeriod: null });
    expect(classifyInterval(tariff, local('America/Los_Angeles', '2026-11-25T17:00')).period).toBe('peak');
    // The example tariff has a summer holiday rule shared with weekends and observes July 4 2026 (a Saturday) on Friday July 3.
    const observed = classifyInterval(exampleTariff, local('America/Los_Angeles', '2026-07-03T17:00'));
    expect(observed).toEqual({ season: 'summer', dayType: 'holiday', period: 'mid_peak', demandPeriod: 'other' });
    const weekday = classifyInterval(exampleTariff, local('America/Los_Angeles', '2026-07-02T17:00'));
    expect(weekday).toEqual({ season: 'summer', dayType: 'weekday', period: 'on_peak', demandPeriod: 'on_peak' });
  });

  it('finds the season of a range that wraps the year end, and custom weekend days', () => {
    expect(classifyInterval(exampleTariff, local('America/Los_Angeles', '2026-01-15T12:00')).season).toBe('winter');
    expect(classifyInterval(exampleTariff, local('America/Los_Angeles', '2026-05-31T23:59')).season).toBe('winter');
    expect(classifyInterval(exampleTariff, local('America/Los_Angeles', '2026-06-01T00:00')).season).toBe('summer');
    const fridaySaturday = { ...halfHourTou('Asia/Kolkata'), weekendDays: [5, 6] };
    expect(classifyInterval(fridaySaturday, local('Asia/Kolkata', '2026-06-12T17:00')).dayType).toBe('weekend'); // Friday
    expect(classifyInterval(fridaySaturday, local('Asia/Kolkata', '2026-06-14T17:00')).period).toBe('peak'); // Sunday
  });

  it('refuses an invalid tariff document with every problem', () => {
    const broken = { ...flatTariff(), timeZone: 'Mars/Olympus_Mons', seasons: [] } as TariffDocument;
    expect(() => classifyInterval(broken, 0)).toThrow(RatingError);
    try {
      classifyInterval(broken, 0);
    } catch (error) {
      expect((error as RatingError).code).toBe('invalid_tariff');
      expect((error as RatingError).details.join('\n')).toMatch(/timeZone[\s\S]*seasons/);
    }
  });
});
