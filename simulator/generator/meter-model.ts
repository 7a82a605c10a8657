/**
 * Energy of one meter in one interval: the profile's mean power sampled every 5 minutes, with noise,
 * appliance spikes, EV charging (exact overlap with the session) and PV generation netted per sample.
 * Import and export are what a bidirectional meter registers: within one interval both can be non-zero.
 */
import type { WallClock } from './wall-clock.js';
import { wallClock } from './wall-clock.js';
import { drawGaussian, drawUnit } from './prng.js';
import { MAX_NOISE_FACTOR, type MeterSpec } from './fleet.js';
import { businessLoadW } from './profiles/business.js';
import { chargingEnergyMwh, sessionsAround } from './profiles/ev.js';
import { APPLIANCE_SPIKE_MAX_W, householdLoadW } from './profiles/household.js';
import { dayClearness, pvOutputW } from './profiles/pv.js';
import { coolingSeason, heatingSeason } from './season.js';
import { sunWindow, type SunWindow } from './sun.js';

/** Energy registered by a meter in one interval, integer milliwatt-hours. */
export interface IntervalEnergy {
  importMwh: number;
  exportMwh: number;
}

const SAMPLE_MS = 300_000;
const NOISE_TAG = 21;
const SPIKE_TAG = 22;
/** Appliance bursts (kettle, oven, dryer) a household starts per day, between 06:00 and 23:00. */
const SPIKES_PER_DAY = 4;
/** Spread of the multiplicative noise on loads (log-normal sigma). */
const NOISE_SIGMA = { household: 0.15, business: 0.06 } as const;

/**
 * Energy of `meter` in the interval starting at `intervalStart` (epoch ms, aligned to the meter's
 * interval). A pure function of the meter and the instant: the same inputs give the same mWh.
 */
export function intervalEnergy(meter: MeterSpec, intervalStart: number): IntervalEnergy {
  const clock = wallClock(meter.timezone);
  const intervalMs = meter.intervalSeconds * 1000;
  const samples = Math.max(1, Math.round(intervalMs / SAMPLE_MS));
  const sampleMs = intervalMs / samples;
  const minute = Math.floor(intervalStart / 60_000);
  const sigma = meter.business ? NOISE_SIGMA.business : NOISE_SIGMA.household;
  const logNormal = Math.exp(sigma * drawGaussian(meter.key, NOISE_TAG, minute) - (sigma * sigma) / 2); // mean 1
  const noise = Math.min(MAX_NOISE_FACTOR, Math.max(0.5, logNormal));

  const sessions = meter.ev ? sessionsAround(meter.ev, meter.key, clock, intervalStart) : [];
  let importMwh = 0;
  let exportMwh = 0;
  let window: SunWindow | null = null;
  let windowDay = Number.NaN;
  for (let i = 0; i < samples; i++) {
    const sampleStart = intervalStart + i * sampleMs;
    const at = sampleStart + sampleMs / 2;
    const local = clock.localTime(at);
    const heating = heatingSeason(local.dayOfYear, meter.site.latitude);
    const cooling = coolingSeason(local.dayOfYear, meter.site.latitude);
    const loadW = meter.household
      ? householdLoadW(meter.household, local, heating, cooling)
      : businessLoadW(meter.business!, local, heating, cooling);
    let consumedMwh = (loadW * noise * sampleMs) / 3_600; // W x ms / 3600 = mWh
    consumedMwh += chargingEnergyMwh(sessions, sampleStart, sampleStart + sampleMs);
    let generatedMwh = 0;
    if (meter.pv) {
      if (local.dayNumber !== windowDay) {
        window = sunWindow(meter.site, local.year, local.month, local.day, local.dayOfYear);
        windowDay = local.dayNumber;
      }
      const clearness = dayClearness(meter.key, local.dayNumber);
      generatedMwh = (pvOutputW(meter.pv, meter.site, window!, at, clearness, meter.key) * sampleMs) / 3_600;
    }
    importMwh += Math.max(0, consumedMwh - generatedMwh);
    exportMwh += Math.max(0, generatedMwh - consumedMwh);
  }
  if (meter.household) importMwh += applianceSpikeMwh(meter.key, clock, intervalStart, intervalMs);

  const maxMwh = meter.maxPowerKw * meter.intervalSeconds * (1_000 / 3.6); // kW x s -> mWh
  return { importMwh: Math.round(Math.min(importMwh, maxMwh)), exportMwh: Math.round(exportMwh) };
}

/** A short appliance burst in this interval, if one starts in it (daytime and evening only), mWh. */
function applianceSpikeMwh(key: number, clock: WallClock, intervalStart: number, intervalMs: number): number {
  const hour = clock.localTime(intervalStart).hour;
  if (hour < 6 || hour >= 23) return 0;
  const minute = Math.floor(intervalStart / 60_000);
  const probability = (SPIKES_PER_DAY * intervalMs) / (17 * 3_600_000);
  if (drawUnit(key, SPIKE_TAG, minute, 0) >= probability) return 0;
  const powerW = 1_200 + (APPLIANCE_SPIKE_MAX_W - 1_200) * drawUnit(key, SPIKE_TAG, minute, 1);
  const durationMs = Math.min(intervalMs, 120_000 + 480_000 * drawUnit(key, SPIKE_TAG, minute, 2));
  return (powerW * durationMs) / 3_600;
}
