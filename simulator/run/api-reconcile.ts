/**
 * `--reconcile`: the ledger against what the API stored, meter by meter, over the ledger's window [from, to):
 * the number of stored intervals and their exact import and export sums (from
 * `GET /v1/meters/{id}/consumption?groupBy=month`, summed as integer mWh). When the ledger carries reactive
 * energy, also the stored readings that carry it and their exact reactive import and export sums (from
 * `GET /v1/meters/{id}/readings`). Any difference is listed.
 */
import { ApiClient, describeError } from '../provision/api-client.js';
import type { LedgerDocument, LedgerMeter } from './ledger.js';
import type { NetMeteringReport } from './net-metering-reconcile.js';
import { isoUtc } from '../../common/time.js';

export interface MeterDifference {
  meterId: string;
  ledger: LedgerMeter;
  /** What the API holds; null when the API could not answer for this meter. */
  api: LedgerMeter | null;
  /** Why the API could not answer. */
  problem?: string;
}

export interface ReconcileReport {
  meters: number;
  differences: MeterDifference[];
  /** With the net-metering tariff (backfill): the kWh banks of every billing window against the API's charges. */
  netMetering?: NetMeteringReport;
}

/** The longest window of one consumption request (the API allows 800 days). */
const CHUNK_MS = 790 * 86_400_000;
const CONCURRENCY = 8;
/** Readings per page of `GET /v1/meters/{id}/readings` (the API's largest). */
const READINGS_PAGE = 10_000;

export async function reconcileWithApi(ledger: LedgerDocument, api: ApiClient): Promise<ReconcileReport> {
  const ids = Object.keys(ledger.meters);
  const fromMs = Date.parse(ledger.from);
  const toMs = Date.parse(ledger.to);
  const differences: MeterDifference[] = [];
  let next = 0;
  const worker = async () => {
    while (next < ids.length) {
      const meterId = ids[next++]!;
      const expected = ledger.meters[meterId]!;
      try {
        const actual = toMs > fromMs ? await storedTotals(api, meterId, fromMs, toMs) : { readings: 0, importWh: '0', exportWh: '0' };
        if (expected.reactiveReadings !== undefined) {
          Object.assign(actual, toMs > fromMs ? await storedReactive(api, meterId, fromMs, toMs) : { reactiveReadings: 0, reactiveImportVarh: '0', reactiveExportVarh: '0' });
        }
        if (
          actual.readings !== expected.readings ||
          toMwh(actual.importWh) !== toMwh(expected.importWh) ||
          toMwh(actual.exportWh) !== toMwh(expected.exportWh) ||
          (expected.reactiveReadings !== undefined &&
            (actual.reactiveReadings !== expected.reactiveReadings ||
              toMwh(actual.reactiveImportVarh!) !== toMwh(expected.reactiveImportVarh!) ||
              toMwh(actual.reactiveExportVarh!) !== toMwh(expected.reactiveExportVarh!)))
        ) {
          differences.push({ meterId, ledger: expected, api: actual });
        }
      } catch (error) {
        differences.push({ meterId, ledger: expected, api: null, problem: (error as Error).message });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, ids.length) }, worker));
  differences.sort((a, b) => (a.meterId < b.meterId ? -1 : 1));
  return { meters: ids.length, differences };
}

async function storedTotals(api: ApiClient, meterId: string, fromMs: number, toMs: number): Promise<LedgerMeter> {
  let readings = 0;
  let importMwh = 0n;
  let exportMwh = 0n;
  for (let start = fromMs; start < toMs; start += CHUNK_MS) {
    let path: string | null =
      `/v1/meters/${encodeURIComponent(meterId)}/consumption?from=${isoUtc(start)}&to=${isoUtc(Math.min(start + CHUNK_MS, toMs))}&groupBy=month&tz=UTC`;
    while (path) {
      const answer = await api.get(path);
      if (answer.status !== 200) throw new Error(`GET ${path.split('?')[0]}: HTTP ${answer.status} ${describeError(answer.body)}`);
      const page = answer.body as { items: { importKwh: string; exportKwh: string; intervals: { actual: number; estimated: number } }[]; next: string | null };
      for (const bucket of page.items) {
        readings += bucket.intervals.actual + bucket.intervals.estimated;
        importMwh += toMwh(bucket.importKwh, 6);
        exportMwh += toMwh(bucket.exportKwh, 6);
      }
      path = page.next;
    }
  }
  return { readings, importWh: formatMwh(importMwh), exportWh: formatMwh(exportMwh) };
}

/** The stored readings of [fromMs, toMs) that carry reactive energy, and its sums (exact decimal varh). */
async function storedReactive(
  api: ApiClient,
  meterId: string,
  fromMs: number,
  toMs: number,
): Promise<{ reactiveReadings: number; reactiveImportVarh: string; reactiveExportVarh: string }> {
  let reactiveReadings = 0;
  let importMvarh = 0n;
  let exportMvarh = 0n;
  let path: string | null =
    `/v1/meters/${encodeURIComponent(meterId)}/readings?from=${isoUtc(fromMs)}&to=${isoUtc(toMs)}&limit=${READINGS_PAGE}`;
  while (path) {
    const answer = await api.get(path);
    if (answer.status !== 200) throw new Error(`GET ${path.split('?')[0]}: HTTP ${answer.status} ${describeError(answer.body)}`);
    const page = answer.body as { items: { reactiveImportVarh?: string; reactiveExportVarh?: string }[]; next: string | null };
    for (const item of page.items) {
      if (item.reactiveImportVarh === undefined && item.reactiveExportVarh === undefined) continue;
      reactiveReadings++;
      importMvarh += toMwh(item.reactiveImportVarh ?? '0');
      exportMvarh += toMwh(item.reactiveExportVarh ?? '0');
    }
    path = page.next;
  }
  return { reactiveReadings, reactiveImportVarh: formatMwh(importMvarh), reactiveExportVarh: formatMwh(exportMvarh) };
}

/** An exact decimal string in units of 10^-`decimals` (Wh with 3 decimals: mWh). */
export function toMwh(text: string, decimals = 3): bigint {
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text.trim());
  if (!match) throw new Error(`not a decimal: "${text}"`);
  const fraction = (match[3] ?? '').padEnd(decimals, '0');
  if (fraction.length > decimals) throw new Error(`more than ${decimals} decimals: "${text}"`);
  const value = BigInt(match[2]! + fraction);
  return match[1] ? -value : value;
}

/** mWh as an exact decimal string of Wh (at most 3 decimals, no trailing zeros). */
export function formatMwh(mwh: bigint): string {
  const sign = mwh < 0n ? '-' : '';
  const abs = mwh < 0n ? -mwh : mwh;
  const fraction = (abs % 1000n).toString().padStart(3, '0').replace(/0+$/, '');
  return `${sign}${abs / 1000n}${fraction ? `.${fraction}` : ''}`;
}

/** The differences as lines for the operator. */
export function describeDifferences(report: ReconcileReport): string[] {
  return report.differences.map((d) =>
    d.api === null
      ? `${d.meterId}: the API could not answer (${d.problem})`
      : `${d.meterId}: readings ledger ${d.ledger.readings} / API ${d.api.readings}, ` +
        `importWh ledger ${d.ledger.importWh} / API ${d.api.importWh}, exportWh ledger ${d.ledger.exportWh} / API ${d.api.exportWh}` +
        (d.ledger.reactiveReadings === undefined
          ? ''
          : `, reactive readings ledger ${d.ledger.reactiveReadings} / API ${d.api.reactiveReadings}, ` +
            `reactiveImportVarh ledger ${d.ledger.reactiveImportVarh} / API ${d.api.reactiveImportVarh}, ` +
            `reactiveExportVarh ledger ${d.ledger.reactiveExportVarh} / API ${d.api.reactiveExportVarh}`),
  );
}
