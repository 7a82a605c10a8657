/**
 * Public API of the rating core (see README.md). Everything here is pure: no database, broker or clock.
 */
export { peakDemandKw, rateWindow, type BillingDemand, type Charges, type DemandHistoryEntry, type RatedPiece, type RateWindowInput } from './rate.js';
export {
  EMPTY_METERING_STATE,
  meteringHistoryStart,
  rateMeteredWindows,
  settlementYearStart,
  type MeteredCharges,
  type MeteredWindowInput,
  type MeteringState,
  type PeriodNetting,
  type RateMeteredWindowsInput,
  type WindowMetering,
} from './metering/billing-windows.js';
export { meteringOfTariff, resolveMetering, type Metering, type MeteringMode, type NetBillingOptions, type NetMeteringOptions } from './metering/options.js';
export { classifyInterval, type IntervalClassification } from './compiled-tariff.js';
export { resolveTariffTimeline, type TariffAssignment, type TariffTimelineEntry } from './timeline.js';
export type { Coverage, MeterInterval, Quality, TimeSpan } from './intervals.js';
export type { ChargeLine, DemandLine, EnergyLine, ExportCreditLine, FixedLine, MinimumLine, SettlementLine, TaxLine } from './lines.js';
export { RatingError, type RatingErrorCode } from './errors.js';
export { tariffSchema, type TariffDocument } from './tariff.schema.js';
export { exampleDynamicTariff, exampleTariff } from './tariff.example.js';
export { importUrdb, urdbToTariff, UrdbImportError, type UrdbImport, type UrdbImportOptions, type UrdbIssue } from './urdb.js';
