import { describe, expect, it } from 'vitest';
import type { Reading } from '../../common/reading.js';
import type { OutgoingItem } from '../generator/index.js';
import { readingJson } from '../generator/wire.js';
import { Ledger } from './ledger.js';

const from = Date.parse('2026-03-08T00:00:00Z');
const reading = (meterId: string, index: number, importMwh: number, exportMwh = 0): Reading => ({
  meterId, intervalStart: from + index * 900_000, intervalSeconds: 900, importMwh, exportMwh, quality: 'actual',
});
const item = (kind: OutgoingItem['kind'], r: Reading): OutgoingItem => ({
  kind, meterId: r.meterId, intervalStart: r.intervalStart, reading: kind === 'reading' || kind === 'duplicate' ? r : null,
  json: readingJson(r), rawPayload: null, invalidKind: null, expectedReason: null, delay: 'none',
});

describe('Ledger', () => {
  it('counts a reading once, sums exactly, counts invalid items and extra copies, lists every meter', () => {
    const ledger = new Ledger(['MTR-2', 'MTR-1'], from, 900_000, { fromMs: from, toMs: from + 86_400_000 });
    ledger.record([item('reading', reading('MTR-1', 0, 250_500)), item('reading', reading('MTR-1', 1, 1, 2_001))]);
    ledger.record([item('duplicate', reading('MTR-1', 0, 250_500)), item('invalid', reading('MTR-1', 2, 5)), item('conflict', reading('MTR-1', 1, 9))]);
    expect(ledger.toDocument()).toEqual({
      from: '2026-03-08T00:00:00Z',
      to: '2026-03-09T00:00:00Z',
      meters: {
        'MTR-1': { readings: 2, importWh: '250.501', exportWh: '2.001' },
        'MTR-2': { readings: 0, importWh: '0', exportWh: '0' },
      },
      invalidSent: 2,
      duplicatesSent: 1,
    });
    expect(Object.keys(ledger.toDocument().meters)).toEqual(['MTR-1', 'MTR-2']);
  });

  it('with reactive energy, counts the readings that carry it and sums it exactly', () => {
    const window = { fromMs: from, toMs: from + 86_400_000 };
    const ledger = new Ledger(['MTR-1', 'MTR-2'], from, 900_000, window, null, true);
    const withReactive = (index: number, importMwh: number, reactiveImportMvarh: number): Reading => ({
      ...reading('MTR-1', index, importMwh), reactiveImportMvarh, reactiveExportMvarh: 0,
    });
    ledger.record([item('reading', withReactive(0, 250_500, 121_000)), item('reading', withReactive(1, 9_000, 4_000))]);
    ledger.record([item('duplicate', withReactive(0, 250_500, 121_000)), item('reading', reading('MTR-1', 2, 7))]);
    expect(ledger.toDocument().meters).toEqual({
      'MTR-1': { readings: 3, importWh: '259.507', exportWh: '0', reactiveReadings: 2, reactiveImportVarh: '125', reactiveExportVarh: '0' },
      'MTR-2': { readings: 0, importWh: '0', exportWh: '0', reactiveReadings: 0, reactiveImportVarh: '0', reactiveExportVarh: '0' },
    });
  });

  it('stays exact beyond 2^53 mWh', () => {
    const ledger = new Ledger(['M'], from, 900_000, { fromMs: from, toMs: from });
    for (let i = 0; i < 10; i++) ledger.record([item('reading', reading('M', i, 999_999_999_999_999))]);
    expect(ledger.toDocument().meters.M.importWh).toBe('9999999999999.99');
  });

  it('grows with long windows (months of intervals per meter)', () => {
    const ledger = new Ledger(['M'], from, 900_000, { fromMs: from, toMs: from });
    for (let i = 0; i < 100_000; i += 7) ledger.record([item('reading', reading('M', i, 1))]);
    ledger.record([item('reading', reading('M', 99_995, 1))]);
    expect(ledger.toDocument().meters.M).toEqual({ readings: Math.ceil(100_000 / 7), importWh: '14.286', exportWh: '0' });
    expect(ledger.duplicatesSent).toBe(1);
  });

  it('with billing windows, sums each window per period, a copy counted once; an interval in no window is an error', () => {
    const windows = [{ from, to: from + 4 * 900_000 }, { from: from + 4 * 900_000, to: from + 8 * 900_000 }];
    const periodOf = (ms: number) => (((ms - from) / 900_000) % 2 === 0 ? 'p0' : 'p1');
    const ledger = new Ledger(['M'], from, 900_000, { fromMs: from, toMs: from + 8 * 900_000 }, { windows, periodOf });
    ledger.record([0, 1, 2, 5].map((i) => item('reading', reading('M', i, 1_000 * (i + 1), 10 * i))));
    ledger.record([item('duplicate', reading('M', 5, 6_000, 50))]);
    expect(ledger.toDocument().meters.M!.windows).toEqual([
      { from: '2026-03-08T00:00:00Z', to: '2026-03-08T01:00:00Z', periods: { p0: { importWh: '4', exportWh: '0.02' }, p1: { importWh: '2', exportWh: '0.01' } } },
      { from: '2026-03-08T01:00:00Z', to: '2026-03-08T02:00:00Z', periods: { p1: { importWh: '6', exportWh: '0.05' } } },
    ]);
    expect(ledger.windowEnergy('M')[1]!.periods).toEqual({ p1: { importMwh: 6_000n, exportMwh: 50n } });
    expect(() => ledger.record([item('reading', reading('M', 9, 1))])).toThrow(/in no billing window/);
  });
});
