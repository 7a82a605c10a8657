/**
 * `--reconcile` of a net-metered fleet: the simulator's own net-metering account (./net-metering.ts, from
 * the ledger) against the API's charges of every billing window (`GET /v1/meters/{id}/charges?from&to`
 * per local month), meter by meter: per period the energy, the bank carried in, the kWh billed and the
 * bank carried out (`metering.periods`, `metering.carriedOut.banks`), the running net surplus and the
 * true-up (`metering.trueUpKwh`). Any difference is listed; charges without `metering` are a difference
 * too (the API does not carry net metering across windows).
 */
import Decimal from 'decimal.js';
import { ApiClient, describeError } from '../provision/api-client.js';
import { isoUtc } from '../../common/time.js';
import type { Ledger } from './ledger.js';
import { expectedNetMetering, sameKwh, type ExpectedWindow, type NetMeteringRules } from './net-metering.js';

export interface NetMeteringDifference {
  meterId: string;
  /** the billing window, ISO instants */
  window: { from: string; to: string };
  /** what differs, in words, with both values */
  problems: string[];
}

export interface NetMeteringReport {
  meters: number;
  windows: number;
  /** windows whose true-up was checked (the true-up month inside the run) */
  trueUps: number;
  /** the year's kWh banks at their fullest, summed over the fleet, from the ledger: what the demo shows */
  peakBankKwh: string;
  differences: NetMeteringDifference[];
}

/** What the charges endpoint returns of net metering (the rating core's WindowMetering, as JSON). */
interface ApiMetering {
  trueUp?: boolean;
  carriedOut?: { banks?: { period: string; kWh: string }[]; runningNetKwh?: string };
  periods?: { period: string; importKwh: string; exportKwh: string; bankInKwh: string; billedKwh: string }[];
  trueUpKwh?: string;
}

const CONCURRENCY = 4;

export async function reconcileNetMetering(
  ledger: Ledger,
  meterIds: readonly string[],
  rules: NetMeteringRules,
  api: ApiClient,
): Promise<NetMeteringReport> {
  const differences: NetMeteringDifference[] = [];
  let windows = 0;
  let trueUps = 0;
  const peakBanks = new Map<number, Decimal>();
  let next = 0;
  const worker = async () => {
    while (next < meterIds.length) {
      const meterId = meterIds[next++]!;
      const expected = expectedNetMetering(ledger.windowEnergy(meterId), rules);
      expected.forEach((w, i) => peakBanks.set(i, w.periods.reduce((sum, p) => sum.plus(p.bankOutKwh), peakBanks.get(i) ?? new Decimal(0))));
      for (const window of expected) {
        windows++;
        if (window.trueUp) trueUps++;
        const span = { from: isoUtc(window.from), to: isoUtc(window.to) };
        const path = `/v1/meters/${encodeURIComponent(meterId)}/charges?from=${span.from}&to=${span.to}`;
        let problems: string[];
        try {
          const answer = await api.get(path);
          problems =
            answer.status === 200
              ? compareWindow(window, (answer.body as { metering?: ApiMetering }).metering)
              : [`GET charges: HTTP ${answer.status} ${describeError(answer.body)}`];
        } catch (error) {
          problems = [`GET charges: ${(error as Error).message}`];
        }
        if (problems.length) differences.push({ meterId, window: span, problems });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, meterIds.length) }, worker));
  differences.sort((a, b) => (a.meterId === b.meterId ? (a.window.from < b.window.from ? -1 : 1) : a.meterId < b.meterId ? -1 : 1));
  const peak = [...peakBanks.values()].reduce((max, kWh) => Decimal.max(max, kWh), new Decimal(0));
  return { meters: meterIds.length, windows, trueUps, peakBankKwh: peak.toFixed(), differences };
}

/** The differences between the simulator's account of one window and the API's `metering`. */
export function compareWindow(want: ExpectedWindow, got: ApiMetering | undefined): string[] {
  if (!got) return ['the charges state no metering: the API does not carry net metering across billing windows'];
  const problems: string[] = [];
  if (got.trueUp !== want.trueUp) problems.push(`trueUp: simulator ${want.trueUp} / API ${got.trueUp}`);
  for (const period of want.periods) {
    const row = got.periods?.find((p) => p.period === period.period);
    const api = row ?? { importKwh: '0', exportKwh: '0', bankInKwh: '0', billedKwh: '0' };
    for (const field of ['importKwh', 'exportKwh', 'bankInKwh', 'billedKwh'] as const) {
      if (!sameKwh(api[field], period[field])) problems.push(`${period.period} ${field}: simulator ${period[field]} / API ${api[field]}`);
    }
    const banked = (got.carriedOut?.banks ?? []).filter((b) => b.period === period.period).map((b) => b.kWh);
    const bankOut = banked.reduce((sum, kWh) => sum.plus(kWh), new Decimal(0)).toFixed();
    if (!sameKwh(bankOut, period.bankOutKwh)) problems.push(`${period.period} bank carried out: simulator ${period.bankOutKwh} / API ${bankOut}`);
  }
  if (!sameKwh(got.carriedOut?.runningNetKwh ?? '0', want.runningNetKwh)) {
    problems.push(`running net surplus: simulator ${want.runningNetKwh} / API ${got.carriedOut?.runningNetKwh}`);
  }
  if (want.trueUp && !sameKwh(got.trueUpKwh ?? '0', want.trueUpKwh!)) problems.push(`true-up kWh: simulator ${want.trueUpKwh} / API ${got.trueUpKwh}`);
  return problems;
}

/** The differences as lines for the operator. */
export function describeNetMeteringDifferences(report: NetMeteringReport): string[] {
  return report.differences.map((d) => `${d.meterId} ${d.window.from}..${d.window.to}: ${d.problems.join('; ')}`);
}
