/**
 * A fleet: meters with their profile and fixed parameters, and the concentrators they report through.
 *
 * Everything about meter `MTR-000042` (profile in a mixed fleet, parameters, readings, faults) is derived
 * from the seed and its id alone, so it is the same in a fleet of 50 or of 50,000 and with any number of
 * concentrators.
 */
import { INTERVAL_SECONDS, type IntervalSeconds } from '../../common/reading.js';
import { wallClock } from './wall-clock.js';
import { drawUnit, meterKey, mulberry32, pickWeighted } from './prng.js';
import { drawBusinessParams, businessPeakW, type BusinessParams } from './profiles/business.js';
import { drawEvParams, type EvParams } from './profiles/ev.js';
import {
  APPLIANCE_SPIKE_MAX_W,
  drawHouseholdParams,
  householdPeakW,
  type HouseholdParams,
} from './profiles/household.js';
import { drawPvParams, PV_MAX_OUTPUT_PER_W, type PvParams } from './profiles/pv.js';
import { drawSizedPvParams } from './profiles/pv-sizing.js';
import { drawFullLoadPowerFactor } from './reactive.js';
import type { Site } from './sun.js';

export const PROFILES = ['residential', 'commercial', 'solar', 'residential-solar', 'ev'] as const;
export type Profile = (typeof PROFILES)[number];
export const FLEET_PROFILES = [...PROFILES, 'mixed'] as const;
export type FleetProfile = (typeof FLEET_PROFILES)[number];

/** Share of each profile in a `mixed` fleet. */
export const MIXED_PROFILE_WEIGHTS: ReadonlyArray<readonly [Profile, number]> = [
  ['residential', 0.55],
  ['solar', 0.2],
  ['ev', 0.15],
  ['commercial', 0.1],
];

/** Largest multiplicative noise applied to a load (see meter-model.ts), used to size `maxPowerKw`. */
export const MAX_NOISE_FACTOR = 1.6;

export interface MeterSpec {
  id: string;
  /** 0-based position in the fleet. */
  index: number;
  accountId: string;
  /** The concentrator the meter reports through; null when it connects itself. */
  concentratorId: string | null;
  profile: Profile;
  /** IANA zone of the meter's site: its load follows local wall-clock time. */
  timezone: string;
  intervalSeconds: IntervalSeconds;
  site: Site;
  /** Consumption of a home (residential, solar and ev meters); null for commercial ones. */
  household: HouseholdParams | null;
  business: BusinessParams | null;
  pv: PvParams | null;
  ev: EvParams | null;
  /** Highest power the meter can report, kW: what `POST /v1/meters` is given as `maxPowerKw`. */
  maxPowerKw: number;
  /** Power factor at full load when the meter registers reactive energy (see reactive.ts); null: it does not. */
  powerFactor: number | null;
  /** Key of every random draw about this meter (from the seed and the id). */
  key: number;
}

export interface ConcentratorSpec {
  id: string;
  meterIds: string[];
}

export interface Fleet {
  seed: string;
  meters: MeterSpec[];
  concentrators: ConcentratorSpec[];
}

export interface FleetOptions {
  /** Number of meters. */
  meters: number;
  /** Any text; the same seed gives the same fleet and the same readings. Default "1". */
  seed?: string | number;
  profile?: FleetProfile;
  /** IANA zone of every meter. Default America/New_York. */
  timezone?: string;
  intervalSeconds?: IntervalSeconds;
  /** Prepended to every id (meters `<prefix>MTR-000001`, accounts `<prefix>ACC-000001`, `<prefix>DCU-0001`). */
  idPrefix?: string;
  /** 0: every meter connects itself; K: meter i reports through concentrator i mod K. */
  concentrators?: number;
  /** Degrees north. Default 40.7 (New York). */
  latitude?: number;
  /** Degrees east. Default: the zone's standard UTC offset x 15 (the centre of its time zone). */
  longitude?: number;
  /**
   * Every meter registers reactive energy (reactive import from its power factor, reactive export 0).
   * Default: on for a `commercial` fleet, off otherwise.
   */
  reactive?: boolean;
}

export const DEFAULT_TIMEZONE = 'America/New_York';
export const DEFAULT_LATITUDE = 40.7;
const PROFILE_TAG = 11;

export function meterId(idPrefix: string, index: number): string {
  return `${idPrefix}MTR-${String(index + 1).padStart(6, '0')}`;
}

export function accountId(idPrefix: string, index: number): string {
  return `${idPrefix}ACC-${String(index + 1).padStart(6, '0')}`;
}

export function concentratorId(idPrefix: string, index: number): string {
  return `${idPrefix}DCU-${String(index + 1).padStart(4, '0')}`;
}

export function createFleet(options: FleetOptions): Fleet {
  const seed = String(options.seed ?? '1');
  const profile = options.profile ?? 'residential';
  const timezone = options.timezone ?? DEFAULT_TIMEZONE;
  const intervalSeconds = options.intervalSeconds ?? 900;
  const idPrefix = options.idPrefix ?? '';
  const concentratorCount = options.concentrators ?? 0;
  const reactive = options.reactive ?? profile === 'commercial';
  if (!Number.isInteger(options.meters) || options.meters < 0) throw new RangeError('meters must be an integer >= 0');
  if (!Number.isInteger(concentratorCount) || concentratorCount < 0) {
    throw new RangeError('concentrators must be an integer >= 0');
  }
  if (!INTERVAL_SECONDS.includes(intervalSeconds)) {
    throw new RangeError(`intervalSeconds must be one of ${INTERVAL_SECONDS.join(', ')}`);
  }
  const clock = wallClock(timezone); // validates the zone
  const site: Site = {
    latitude: options.latitude ?? DEFAULT_LATITUDE,
    longitude: options.longitude ?? (clock.standardOffsetMinutes() / 60) * 15,
  };

  const concentrators: ConcentratorSpec[] = Array.from({ length: concentratorCount }, (_, k) => ({
    id: concentratorId(idPrefix, k),
    meterIds: [],
  }));
  const meters: MeterSpec[] = [];
  for (let index = 0; index < options.meters; index++) {
    const id = meterId(idPrefix, index);
    const concentrator = concentratorCount > 0 ? concentrators[index % concentratorCount] : null;
    concentrator?.meterIds.push(id);
    meters.push(
      describeMeter({
        id,
        index,
        accountId: accountId(idPrefix, index),
        concentratorId: concentrator?.id ?? null,
        seed,
        profile,
        timezone,
        intervalSeconds,
        site,
        reactive,
      }),
    );
  }
  return { seed, meters, concentrators };
}

interface MeterIdentity {
  id: string;
  index: number;
  accountId: string;
  concentratorId: string | null;
  seed: string;
  profile: FleetProfile;
  timezone: string;
  intervalSeconds: IntervalSeconds;
  site: Site;
  /** The meter registers reactive energy. Default false. */
  reactive?: boolean;
}

/** The full description of one meter, from its identity and the seed alone. */
export function describeMeter(identity: MeterIdentity): MeterSpec {
  const key = meterKey(identity.seed, identity.id);
  const profile =
    identity.profile === 'mixed' ? pickWeighted(drawUnit(key, PROFILE_TAG), MIXED_PROFILE_WEIGHTS) : identity.profile;
  const next = mulberry32(key);
  const household = profile === 'commercial' ? null : drawHouseholdParams(next);
  const business = profile === 'commercial' ? drawBusinessParams(next) : null;
  const pv =
    profile === 'solar' ? drawPvParams(next) : profile === 'residential-solar' ? drawSizedPvParams(next, household!, identity.site) : null;
  const ev = profile === 'ev' ? drawEvParams(next) : null;
  const loadPeakW = household
    ? (householdPeakW(household) + APPLIANCE_SPIKE_MAX_W) * MAX_NOISE_FACTOR
    : businessPeakW(business!) * MAX_NOISE_FACTOR;
  // The gateway checks import and export against maxPowerKw: it covers the load and the array's highest output.
  const maxPowerKw = Math.ceil(Math.max(loadPeakW + (ev?.chargerW ?? 0), (pv?.peakW ?? 0) * PV_MAX_OUTPUT_PER_W) / 1000) + 1;
  return {
    id: identity.id,
    index: identity.index,
    accountId: identity.accountId,
    concentratorId: identity.concentratorId,
    profile,
    timezone: identity.timezone,
    intervalSeconds: identity.intervalSeconds,
    site: identity.site,
    household,
    business,
    pv,
    ev,
    maxPowerKw,
    powerFactor: identity.reactive ? drawFullLoadPowerFactor(key) : null,
    key,
  };
}
