/**
 * The tariffs `--provision` creates when none is given, in the shape of an OpenEI URDB rate object
 * (CONTRACT.md section 4), imported through `POST /v1/tariffs/urdb`, the one tariff format the contract
 * spells out. Both have the same two time-of-use periods, all year:
 *
 * - p0 off-peak 0.12 $/kWh; p1 peak 0.28 $/kWh on weekdays 16:00-21:00. Fixed charge 0.33 $/day.
 * - `sim-tou-residential-v1`: net billing (the contract's default): export credited at 0.04 $/kWh per interval.
 * - `sim-nem-residential-v1`: net metering (`dgrules: "Net Metering"`) with a kWh bank per period, true-up
 *   in December, the running net surplus paid at 0.04 $/kWh (`netMetering` beside `rate`).
 *
 * `periodAt` classifies an instant by the same schedules, for the simulator's own net-metering ledger.
 */
import { wallClock } from '../generator/wall-clock.js';

export const SIMULATOR_TARIFF_ID = 'sim-tou-residential-v1';
export const SIMULATOR_NET_METERING_TARIFF_ID = 'sim-nem-residential-v1';

/** The simulator's tariff plans: net billing per interval, or net metering with a kWh bank. */
export type TariffPlan = 'tou' | 'net-metering';

export const OFF_PEAK = 0;
export const PEAK = 1;
export const PEAK_HOURS = { from: 16, to: 21 } as const;
export const BUY_RATES = ['0.12', '0.28'] as const;
export const SELL_RATE = '0.04';
/** Net metering: the local month whose billing cycle settles the year, and what the running net surplus is paid. */
export const NET_METERING = { carryOver: 'kWh', trueUpMonth: 12, trueUpSellRate: SELL_RATE } as const;

const weekdayHours = Array.from({ length: 24 }, (_, hour) => (hour >= PEAK_HOURS.from && hour < PEAK_HOURS.to ? PEAK : OFF_PEAK));
const weekendHours = Array.from({ length: 24 }, () => OFF_PEAK);

export function simulatorTariffId(plan: TariffPlan): string {
  return plan === 'net-metering' ? SIMULATOR_NET_METERING_TARIFF_ID : SIMULATOR_TARIFF_ID;
}

/** The body of `POST /v1/tariffs/urdb` for the plan, in the meters' zone. */
export function simulatorTariffRequest(timezone: string, plan: TariffPlan = 'tou'): Record<string, unknown> {
  const id = simulatorTariffId(plan);
  const netMetering = plan === 'net-metering';
  return {
    id,
    timezone,
    rate: {
      label: id,
      name: netMetering ? 'Simulator residential time of use, net metering' : 'Simulator residential time of use',
      utility: 'Smart-meter simulator',
      sector: 'Residential',
      ...(netMetering ? { dgrules: 'Net Metering' } : {}),
      fixedchargefirstmeter: 0.33,
      fixedchargeunits: '$/day',
      energyratestructure: BUY_RATES.map((rate) => [{ rate: Number(rate), adj: 0, unit: 'kWh', sell: Number(SELL_RATE) }]),
      energyweekdayschedule: Array.from({ length: 12 }, () => [...weekdayHours]),
      energyweekendschedule: Array.from({ length: 12 }, () => [...weekendHours]),
    },
    ...(netMetering ? { netMetering: { ...NET_METERING } } : {}),
  };
}

/**
 * The energy period (`p0`, `p1`, as the URDB import names them) of the interval starting at `utcMs`, by
 * the local wall clock of `timezone` (the tariff's): weekdays 16:00-21:00 are peak, everything else
 * off-peak. The schedule is the same in every month, so a kWh bank stays in its period.
 */
export function periodAt(timezone: string, utcMs: number): 'p0' | 'p1' {
  const local = wallClock(timezone).localTime(utcMs);
  const hour = Math.floor(local.hour);
  return local.weekday <= 5 && hour >= PEAK_HOURS.from && hour < PEAK_HOURS.to ? 'p1' : 'p0';
}
