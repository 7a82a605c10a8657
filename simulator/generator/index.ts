/**
 * The reading generator as a library: pure and deterministic (no I/O, no clock), usable from tests and
 * benchmarks without MQTT. See ../README.md "Generator".
 */
export {
  createFleet,
  describeMeter,
  meterId,
  accountId,
  concentratorId,
  PROFILES,
  FLEET_PROFILES,
  MIXED_PROFILE_WEIGHTS,
  DEFAULT_TIMEZONE,
  DEFAULT_LATITUDE,
  type Fleet,
  type FleetOptions,
  type FleetProfile,
  type Profile,
  type MeterSpec,
  type ConcentratorSpec,
} from './fleet.js';
export { intervalEnergy, type IntervalEnergy } from './meter-model.js';
export {
  readingAt,
  powerFactorAt,
  readingsFor,
  fleetReadings,
  intervalStarts,
  countIntervals,
  alignUp,
  alignDown,
} from './readings.js';
export { chargingSession, type ChargingSession } from './profiles/ev.js';
export { sunWindow, type Site, type SunWindow } from './sun.js';
export { wallClock, WallClock, type LocalTime } from './wall-clock.js';
export {
  parseFaultSpec,
  formatFaultSpec,
  hasFaults,
  FaultSpecError,
  FAULT_KINDS,
  NO_FAULTS,
  type FaultKind,
  type FaultSpec,
} from './faults/spec.js';
export {
  corruptReading,
  conflictingVariant,
  INVALID_KINDS,
  EXPECTED_REASON,
  type InvalidKind,
  type ExpectedReason,
} from './faults/corruptions.js';
export { FaultInjector, emptyFaultCounts, type OutgoingItem, type FaultCounts, type ItemKind } from './faults/injector.js';
export { readingJson } from './wire.js';
export { POWER_FACTOR_MAX, POWER_FACTOR_MIN, intervalPowerFactor, reactiveImportMvarh } from './reactive.js';
