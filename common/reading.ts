/**
 * The MQTT reading of the public contract (../shared/CONTRACT.md section 2), as one zod schema shared by
 * the gateway (validation), the simulator (generation) and the API (documentation), so they cannot drift.
 *
 * Energy is carried as integer milliwatt-hours (mWh) everywhere inside the system: a reading has at most
 * three decimal places of Wh, so `importWh * 1000` is an exact integer, and sums of integers never drift.
 */
import { z } from 'zod';
import { isoUtc, utcMillis } from './time.js';

export const DEVICE_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
export const INTERVAL_SECONDS = [300, 600, 900, 1800, 3600] as const;
export type IntervalSeconds = (typeof INTERVAL_SECONDS)[number];
export const QUALITIES = ['actual', 'estimated'] as const;
export type Quality = (typeof QUALITIES)[number];
export const MAX_READINGS_PER_MESSAGE = 10_000;
/** Upper bound of one interval's energy accepted by the schema (1 GWh); plausibility is checked per meter. */
export const MAX_WH_PER_READING = 1_000_000_000;

export const deviceIdSchema = z
  .string()
  .regex(DEVICE_ID_PATTERN, 'must match ^[A-Za-z0-9._-]{1,64}$');

/**
 * An id a new account, meter, concentrator or tariff may take. Besides DEVICE_ID_PATTERN (which already
 * keeps out empty ids, whitespace, control characters and the MQTT topic characters `/ + #`), an id that
 * a database, a CSV reader or a command-line tool could misread is refused, as defence in depth:
 * `null` in any letter case (SQL array and CSV literals) and a leading `.` or `-` (`.`/`..` path segments,
 * command-line options). The rule applies at creation only: lookups accept every DEVICE_ID_PATTERN id.
 */
export function newIdProblem(id: string): string | null {
  if (!DEVICE_ID_PATTERN.test(id)) return 'must match ^[A-Za-z0-9._-]{1,64}$';
  if (id.toLowerCase() === 'null') return 'must not be "null" in any letter case';
  if (id[0] === '.' || id[0] === '-') return 'must start with a letter or a digit';
  return null;
}

export const newIdSchema = z.string().superRefine((id, ctx) => {
  const problem = newIdProblem(id);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

const ISO_WITH_OFFSET =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-](\d{2}):(\d{2}))$/;

/**
 * Parses an ISO 8601 instant that carries `Z` or a `±hh:mm` offset. Returns epoch milliseconds, or null
 * when the text is not such an instant (no offset, impossible date such as Feb 30, out-of-range fields).
 * Every four-digit year 0000-9999 is read exactly (0099 is the year 99, never 1999).
 */
export function parseInstant(text: string): number | null {
  // Validation and conversion both ask for the same text in turn: remember the last answer.
  if (text === lastInstantText) return lastInstantValue;
  const value = parseInstantUncached(text);
  lastInstantText = text;
  lastInstantValue = value;
  return value;
}
let lastInstantText: string | undefined;
let lastInstantValue: number | null = null;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function parseInstantUncached(text: string): number | null {
  const m = ISO_WITH_OFFSET.exec(text);
  if (!m) return null;
  const year = +m[1], month = +m[2], day = +m[3], hour = +m[4], minute = +m[5];
  const second = m[6] === undefined ? 0 : +m[6];
  const frac = m[7];
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return null;
  const leap = month === 2 && (year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0));
  if (day > DAYS_IN_MONTH[month - 1] + (leap ? 1 : 0)) return null;
  let offsetMinutes = 0;
  const zone = m[8];
  if (zone !== 'Z') {
    const oh = +m[9], om = +m[10];
    if (oh > 23 || om > 59) return null;
    offsetMinutes = (oh * 60 + om) * (zone.charCodeAt(0) === 45 /* - */ ? -1 : 1);
  }
  let ms = 0;
  if (frac !== undefined) {
    const nanos = +(frac + '000000000').slice(0, 9);
    if (nanos % 1_000_000 !== 0) return null; // below a millisecond cannot be an interval boundary
    ms = nanos / 1_000_000;
  }
  return utcMillis(year, month, day, hour, minute, second, ms) - offsetMinutes * 60_000;
}

/** Wh with at most three decimals -> exact integer mWh; null when the value has more decimals. */
export function whToMwh(wh: number): number | null {
  const mwh = Math.round(wh * 1000);
  // Both sides are the correctly rounded double of the same decimal when `wh` has <= 3 decimals.
  return mwh / 1000 === wh ? mwh : null;
}

/** Exact decimal text of an integer mWh amount, in Wh ("250.5", "0", "12.001"). */
export function mwhToWhString(mwh: number | bigint | string): string {
  return scaledToDecimalString(BigInt(mwh), 3);
}

/** Exact decimal text of an integer mWh amount, in kWh ("0.2505"). */
export function mwhToKwhString(mwh: number | bigint | string): string {
  return scaledToDecimalString(BigInt(mwh), 6);
}

function scaledToDecimalString(value: bigint, scale: number): string {
  const negative = value < 0n;
  const digits = (negative ? -value : value).toString().padStart(scale + 1, '0');
  const int = digits.slice(0, digits.length - scale);
  const frac = digits.slice(digits.length - scale).replace(/0+$/, '');
  return (negative ? '-' : '') + int + (frac ? '.' + frac : '');
}

const energyWh = z
  .number()
  .finite()
  .min(0, 'must be >= 0')
  .max(MAX_WH_PER_READING, `must be <= ${MAX_WH_PER_READING}`)
  .refine((v) => whToMwh(v) !== null, 'at most 3 decimal places');

/** One reading as a device sends it. Unknown fields are refused, so a misspelt field is never ignored. */
export const readingSchema = z.strictObject({
  meterId: deviceIdSchema.optional(),
  intervalStart: z.string().refine((s) => parseInstant(s) !== null, {
    message: 'ISO 8601 instant with Z or a ±hh:mm offset required',
  }),
  intervalSeconds: z.literal(INTERVAL_SECONDS, { message: 'must be one of 300, 600, 900, 1800, 3600' }),
  importWh: energyWh,
  exportWh: energyWh.default(0),
  quality: z.enum(QUALITIES).default('actual'),
  /** Reactive energy imported (lagging, OBIS 3.8.0, Q+), varh; absent: not measured (not 0). */
  reactiveImportVarh: energyWh.optional(),
  /** Reactive energy exported (leading, OBIS 4.8.0), varh; absent: not measured. */
  reactiveExportVarh: energyWh.optional(),
});
export type ReadingInput = z.input<typeof readingSchema>;

/** A reading after validation, in the units the system stores. */
export interface Reading {
  meterId: string;
  /** epoch milliseconds, UTC */
  intervalStart: number;
  intervalSeconds: IntervalSeconds;
  importMwh: number;
  exportMwh: number;
  quality: Quality;
  /** milli-var-hours; absent when the reading carries none (not measured) */
  reactiveImportMvarh?: number;
  reactiveExportMvarh?: number;
}

/** Converts a reading that passed `readingSchema` into storage units. */
export function toReading(parsed: z.output<typeof readingSchema>, meterId: string): Reading {
  return {
    meterId,
    intervalStart: parseInstant(parsed.intervalStart)!,
    intervalSeconds: parsed.intervalSeconds as IntervalSeconds,
    importMwh: whToMwh(parsed.importWh)!,
    exportMwh: whToMwh(parsed.exportWh)!,
    quality: parsed.quality,
    ...(parsed.reactiveImportVarh !== undefined ? { reactiveImportMvarh: whToMwh(parsed.reactiveImportVarh)! } : {}),
    ...(parsed.reactiveExportVarh !== undefined ? { reactiveExportMvarh: whToMwh(parsed.reactiveExportVarh)! } : {}),
  };
}

/** The reading as the contract writes it (what a device would publish), from storage units. */
export function toWireReading(r: Reading, withMeterId = true): Record<string, unknown> {
  return {
    ...(withMeterId ? { meterId: r.meterId } : {}),
    intervalStart: isoUtc(r.intervalStart),
    intervalSeconds: r.intervalSeconds,
    importWh: r.importMwh / 1000,
    exportWh: r.exportMwh / 1000,
    quality: r.quality,
    ...(r.reactiveImportMvarh !== undefined ? { reactiveImportVarh: r.reactiveImportMvarh / 1000 } : {}),
    ...(r.reactiveExportMvarh !== undefined ? { reactiveExportVarh: r.reactiveExportMvarh / 1000 } : {}),
  };
}
