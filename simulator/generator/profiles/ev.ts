/**
 * A home electric-vehicle charger: on most nights a session at constant power, starting in the late
 * evening after the car is plugged in (21:30-24:00 local), or just after midnight for owners who set a
 * timer for a night rate, and lasting until the energy the car needs is delivered.
 */
import type { WallClock } from '../wall-clock.js';
import { between, drawUnit, pickWeighted, type UnitStream } from '../prng.js';

export interface EvParams {
  /** Charging power, W (3.7, 7.4 or 11 kW wall boxes). */
  chargerW: number;
  /** Probability of charging on a given night. */
  nightlyProbability: number;
  /** Mean energy per session, Wh. */
  meanSessionWh: number;
  /** Whether the owner uses a timer (sessions start 00:00-00:30 instead of on plug-in). */
  usesTimer: boolean;
}

/** One charging session as UTC instants (epoch milliseconds). */
export interface ChargingSession {
  startMs: number;
  endMs: number;
  /** Charging power, W. */
  powerW: number;
}

const SESSION_TAG = 51;

export function drawEvParams(next: UnitStream): EvParams {
  return {
    chargerW: pickWeighted(next(), [[3_700, 0.25], [7_400, 0.6], [11_000, 0.15]] as const),
    nightlyProbability: between(next(), 0.55, 0.85),
    meanSessionWh: Math.round(between(next(), 8_000, 20_000)),
    usesTimer: next() < 0.3,
  };
}

/** The session that starts on the evening of local day `dayNumber`, or null when the car is not charged. */
export function chargingSession(
  p: EvParams,
  key: number,
  clock: WallClock,
  dayNumber: number,
): ChargingSession | null {
  if (drawUnit(key, SESSION_TAG, dayNumber, 0) >= p.nightlyProbability) return null;
  const startMinutes = p.usesTimer
    ? 24 * 60 + Math.floor(30 * drawUnit(key, SESSION_TAG, dayNumber, 1))
    : 21 * 60 + 30 + Math.floor(150 * drawUnit(key, SESSION_TAG, dayNumber, 1));
  const energyWh = p.meanSessionWh * between(drawUnit(key, SESSION_TAG, dayNumber, 2), 0.4, 1.6);
  const startMs = clock.instantAt(dayNumber, startMinutes);
  const durationMs = Math.round((energyWh / p.chargerW) * 3_600_000);
  return { startMs, endMs: startMs + durationMs, powerW: p.chargerW };
}

/**
 * Sessions that can overlap an interval starting at `fromMs` (at most one hour long): those of the
 * local day of `fromMs` and of the day before (sessions start after 21:30 and last under 10 hours).
 */
export function sessionsAround(p: EvParams, key: number, clock: WallClock, fromMs: number): ChargingSession[] {
  const today = clock.localTime(fromMs).dayNumber;
  const sessions: ChargingSession[] = [];
  for (const dayNumber of [today - 1, today]) {
    const session = chargingSession(p, key, clock, dayNumber);
    if (session) sessions.push(session);
  }
  return sessions;
}

/** Energy drawn by `sessions` in [fromMs, toMs), mWh (not rounded). */
export function chargingEnergyMwh(sessions: readonly ChargingSession[], fromMs: number, toMs: number): number {
  let mwh = 0;
  for (const session of sessions) {
    const overlapMs = Math.min(toMs, session.endMs) - Math.max(fromMs, session.startMs);
    if (overlapMs > 0) mwh += (session.powerW * overlapMs) / 3_600; // W x ms / 3600 = mWh
  }
  return mwh;
}
