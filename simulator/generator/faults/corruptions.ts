/**
 * Malformed and out-of-contract variants of a valid reading, one per kind, each with the quarantine reason
 * code the gateway must give it (../shared/CONTRACT.md section 2).
 */
import { toWireReading, type Reading } from '../../../common/reading.js';

export const INVALID_KINDS = [
  'invalid_json',
  'negative',
  'too_many_decimals',
  'no_offset',
  'unknown_field',
  'string_energy',
  'bad_interval_seconds',
  'misaligned',
  'interval_mismatch',
  'future',
] as const;
export type InvalidKind = (typeof INVALID_KINDS)[number];

/** Quarantine reason codes of the contract that these variants provoke. */
export type ExpectedReason = 'invalid_json' | 'schema' | 'misaligned' | 'interval_mismatch' | 'future';

export const EXPECTED_REASON: Readonly<Record<InvalidKind, ExpectedReason>> = {
  invalid_json: 'invalid_json',
  negative: 'schema',
  too_many_decimals: 'schema',
  no_offset: 'schema',
  unknown_field: 'schema',
  string_energy: 'schema',
  bad_interval_seconds: 'schema',
  misaligned: 'misaligned',
  interval_mismatch: 'interval_mismatch',
  future: 'future',
};

/** How far a `future` reading is pushed ahead: 10 years of whole days (keeps it aligned). */
const FUTURE_SHIFT_MS = 3_650 * 86_400_000;

/** A corrupted reading: a JSON value to put in a message, or (invalid_json) a whole raw payload. */
export type Corruption = { wire: Record<string, unknown> } | { rawPayload: string };

/**
 * The variant of `reading` of the given kind. `interval_mismatch` needs a meter interval above 300 s
 * (it claims 300 s with the same average power); callers pick another kind for 300-s meters.
 */
export function corruptReading(reading: Reading, kind: InvalidKind): Corruption {
  const wire = toWireReading(reading, true);
  switch (kind) {
    case 'invalid_json': {
      const text = JSON.stringify({ readings: [wire] });
      return { rawPayload: text.slice(0, Math.floor(text.length * 0.6)) };
    }
    case 'negative':
      return { wire: { ...wire, importWh: -(reading.importMwh + 1_000) / 1000 } };
    case 'too_many_decimals':
      return { wire: { ...wire, importWh: (reading.importMwh * 10 + 5) / 10_000 } };
    case 'no_offset':
      return { wire: { ...wire, intervalStart: String(wire.intervalStart).replace(/Z$/, '') } };
    case 'unknown_field': {
      const { importWh, ...rest } = wire;
      return { wire: { ...rest, importKwh: (importWh as number) / 1000 } };
    }
    case 'string_energy':
      return { wire: { ...wire, importWh: String(wire.importWh) } };
    case 'bad_interval_seconds':
      return { wire: { ...wire, intervalSeconds: 450 } };
    case 'misaligned':
      return { wire: toWireReading({ ...reading, intervalStart: reading.intervalStart + 420_000 }) };
    case 'interval_mismatch': {
      const ratio = reading.intervalSeconds / 300;
      return {
        wire: toWireReading({
          ...reading,
          intervalSeconds: 300,
          importMwh: Math.round(reading.importMwh / ratio),
          exportMwh: Math.round(reading.exportMwh / ratio),
        }),
      };
    }
    case 'future':
      return { wire: toWireReading({ ...reading, intervalStart: reading.intervalStart + FUTURE_SHIFT_MS }) };
  }
}

/**
 * A variant with the same meter and interval and different energy: a `conflicting_duplicate`. The energy
 * goes down (by 10%, at least 1 Wh) so that the variant can never exceed the meter's maximum power.
 */
export function conflictingVariant(reading: Reading): Record<string, unknown> {
  const importMwh =
    reading.importMwh >= 2_000
      ? reading.importMwh - Math.max(1_000, Math.round(reading.importMwh * 0.1))
      : reading.importMwh + 1_000;
  return toWireReading({ ...reading, importMwh }, true);
}
