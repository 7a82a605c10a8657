/**
 * The JSON text of a reading as the contract writes it: the same text as
 * `JSON.stringify(toWireReading(reading))` of common/reading.ts (a property test holds them equal), built
 * directly because it is the hot path of a large backfill (about ten times faster).
 */
import type { Reading } from '../../common/reading.js';
import { isoUtc } from '../../common/time.js';

let cachedStart = Number.NaN;
let cachedIso = '';

/** `2026-03-08T09:00:00Z`, as `toWireReading` writes an interval start (milliseconds only when not 0). */
export function wireInstant(ms: number): string {
  if (ms !== cachedStart) {
    cachedStart = ms;
    cachedIso = isoUtc(ms);
  }
  return cachedIso;
}

export function readingJson(reading: Reading): string {
  const reactiveImport = reading.reactiveImportMvarh === undefined ? '' : `,"reactiveImportVarh":${reading.reactiveImportMvarh / 1000}`;
  const reactiveExport = reading.reactiveExportMvarh === undefined ? '' : `,"reactiveExportVarh":${reading.reactiveExportMvarh / 1000}`;
  return (
    `{"meterId":${JSON.stringify(reading.meterId)},"intervalStart":"${wireInstant(reading.intervalStart)}",` +
    `"intervalSeconds":${reading.intervalSeconds},"importWh":${reading.importMwh / 1000},` +
    `"exportWh":${reading.exportMwh / 1000},"quality":"${reading.quality}"${reactiveImport}${reactiveExport}}`
  );
}
