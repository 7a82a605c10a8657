import { describe, expect, it } from 'vitest';
import { sinSolarElevation, sunWindow } from './sun.js';

const newYork = { latitude: 40.71, longitude: -74.01 };
const minutes = (ms: number) => ms / 60_000;

describe('sunWindow', () => {
  // Published times for New York (timeanddate.com): 2025-06-21 05:25 / 20:31 EDT, 2025-12-21 07:17 / 16:32 EST.
  it.each([
    ['summer solstice', 2025, 6, 21, 172, '2025-06-21T09:25:00Z', '2025-06-22T00:31:00Z'],
    ['winter solstice', 2025, 12, 21, 355, '2025-12-21T12:17:00Z', '2025-12-21T21:32:00Z'],
  ])('matches published sunrise and sunset within 5 minutes at the %s', (_, year, month, day, doy, sunrise, sunset) => {
    const window = sunWindow(newYork, year, month, day, doy);
    expect(Math.abs(minutes(window.sunriseMs - Date.parse(sunrise)))).toBeLessThan(5);
    expect(Math.abs(minutes(window.sunsetMs - Date.parse(sunset)))).toBeLessThan(5);
  });

  it('puts the sun above the horizon only between sunrise and sunset', () => {
    const window = sunWindow(newYork, 2025, 3, 20, 79);
    expect(sinSolarElevation(newYork, window, window.solarNoonMs)).toBeGreaterThan(0.7);
    expect(sinSolarElevation(newYork, window, window.sunriseMs - 60_000)).toBeLessThan(0);
    expect(sinSolarElevation(newYork, window, window.sunsetMs + 60_000)).toBeLessThan(0);
  });

  it('handles polar night and midnight sun', () => {
    const tromso = { latitude: 69.65, longitude: 18.96 };
    const winter = sunWindow(tromso, 2025, 12, 21, 355);
    expect(winter.sunsetMs - winter.sunriseMs).toBe(0);
    const summer = sunWindow(tromso, 2025, 6, 21, 172);
    expect(summer.sunsetMs - summer.sunriseMs).toBe(86_400_000);
  });
});
