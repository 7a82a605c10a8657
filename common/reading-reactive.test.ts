/** The reading schema's optional reactive energy: absent (not measured) vs 0 vs values, exact, refused when invalid. */
import { describe, expect, it } from 'vitest';
import { readingSchema, toReading, toWireReading } from './reading.js';

const base = { intervalStart: '2026-03-08T09:00:00Z', intervalSeconds: 900, importWh: 250.5 };

describe('reading schema: reactive energy', () => {
  it('leaves reactive energy absent when not sent, and keeps 0 as 0', () => {
    const absent = toReading(readingSchema.parse(base), 'MTR-1');
    expect('reactiveImportMvarh' in absent).toBe(false);
    expect('reactiveExportMvarh' in absent).toBe(false);
    const zero = toReading(readingSchema.parse({ ...base, reactiveImportVarh: 0, reactiveExportVarh: 0 }), 'MTR-1');
    expect(zero).toMatchObject({ reactiveImportMvarh: 0, reactiveExportMvarh: 0 });
  });

  it('converts varh with up to 3 decimals to exact milli-var-hours, and back to the wire', () => {
    const r = toReading(readingSchema.parse({ ...base, reactiveImportVarh: 120.125, reactiveExportVarh: 0.001 }), 'MTR-1');
    expect(r).toMatchObject({ importMwh: 250_500, reactiveImportMvarh: 120_125, reactiveExportMvarh: 1 });
    expect(toWireReading(r)).toMatchObject({ reactiveImportVarh: 120.125, reactiveExportVarh: 0.001 });
    expect('reactiveImportVarh' in toWireReading(toReading(readingSchema.parse(base), 'MTR-1'))).toBe(false);
  });

  it('refuses negative, too precise, non-numeric and null reactive values, naming the field', () => {
    for (const [field, value, message] of [
      ['reactiveImportVarh', -0.5, '>= 0'],
      ['reactiveExportVarh', 1.0005, '3 decimal'],
      ['reactiveImportVarh', '12', 'number'],
      ['reactiveExportVarh', null, 'number'],
      ['reactiveImportVarh', Number.POSITIVE_INFINITY, ''],
    ] as const) {
      const parsed = readingSchema.safeParse({ ...base, [field]: value });
      expect(parsed.success, `${field} ${String(value)}`).toBe(false);
      const issue = parsed.error!.issues[0];
      expect(issue.path).toEqual([field]);
      expect(issue.message).toContain(message);
    }
  });
});
