import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { INTERVAL_SECONDS, toWireReading, type Reading } from '../../common/reading.js';
import { readingJson } from './wire.js';

const readingArbitrary: fc.Arbitrary<Reading> = fc.record(
  {
    meterId: fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/),
    intervalStart: fc.integer({ min: 0, max: 4_102_444_800_000 }),
    intervalSeconds: fc.constantFrom(...INTERVAL_SECONDS),
    importMwh: fc.integer({ min: 0, max: 1_000_000_000_000 }),
    exportMwh: fc.integer({ min: 0, max: 1_000_000_000_000 }),
    quality: fc.constantFrom('actual' as const, 'estimated' as const),
    reactiveImportMvarh: fc.integer({ min: 0, max: 1_000_000_000_000 }),
    reactiveExportMvarh: fc.integer({ min: 0, max: 1_000_000_000_000 }),
  },
  { requiredKeys: ['meterId', 'intervalStart', 'intervalSeconds', 'importMwh', 'exportMwh', 'quality'] },
);

describe('readingJson', () => {
  it('writes exactly what JSON.stringify(toWireReading(reading)) writes', () => {
    fc.assert(
      fc.property(readingArbitrary, (reading) => {
        expect(readingJson(reading)).toBe(JSON.stringify(toWireReading(reading, true)));
      }),
      { numRuns: 2_000 },
    );
  });
});
