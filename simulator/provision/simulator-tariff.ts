/**
 * The tariff `--provision` creates when none is given: a two-period time-of-use residential rate in the
 * shape of an OpenEI URDB rate object (CONTRACT.md section 4), imported through `POST /v1/tariffs/urdb`,
 * the one tariff format the contract spells out.
 *
 * Periods: p0 off-peak 0.12 $/kWh; p1 peak 0.28 $/kWh on weekdays 16:00-21:00, all year.
 * Export credited at 0.04 $/kWh. Fixed charge 0.33 $/day.
 */

export const SIMULATOR_TARIFF_ID = 'sim-tou-residential-v1';

const OFF_PEAK = 0;
const PEAK = 1;
const weekdayHours = Array.from({ length: 24 }, (_, hour) => (hour >= 16 && hour < 21 ? PEAK : OFF_PEAK));
const weekendHours = Array.from({ length: 24 }, () => OFF_PEAK);

export function simulatorTariffRequest(timezone: string): Record<string, unknown> {
  return {
    id: SIMULATOR_TARIFF_ID,
    timezone,
    rate: {
      label: SIMULATOR_TARIFF_ID,
      name: 'Simulator residential time of use',
      utility: 'Smart-meter simulator',
      sector: 'Residential',
      fixedchargefirstmeter: 0.33,
      fixedchargeunits: '$/day',
      energyratestructure: [
        [{ rate: 0.12, adj: 0, unit: 'kWh', sell: 0.04 }],
        [{ rate: 0.28, adj: 0, unit: 'kWh', sell: 0.04 }],
      ],
      energyweekdayschedule: Array.from({ length: 12 }, () => [...weekdayHours]),
      energyweekendschedule: Array.from({ length: 12 }, () => [...weekendHours]),
    },
  };
}
