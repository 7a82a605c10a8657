/**
 * The peer conformance suite (`../shared/peer-conformance/`, format `peer-conformance/1` as its README
 * documents it): its cases read and checked against that format, each run's tariff body and readings, and
 * the README's pass rule in exact decimals. Both replays read the suite here: the pure core's
 * (`rating/metering/peer-conformance.test.ts`) and the public API's (`test/conformance/`).
 *
 * Test-only: it reads files; production code never imports it.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import Decimal from 'decimal.js';
import { describe, expect, it } from 'vitest';
import { sharedFolder } from './shared-material.js';

const D = Decimal.clone({ precision: 50 });
const FORMAT = 'peer-conformance/1';
const CHECK_KINDS = ['sum_total', 'sum_amount_of_type', 'neg_sum_amount_of_type', 'line_quantity', 'neg_sum_amount_of_type_and_period'] as const;

export interface PeerCheck {
  id: string;
  kind: (typeof CHECK_KINDS)[number];
  types?: string[];
  period?: string;
  tier?: number;
  window?: number;
  expected: string;
  tolerance: string;
  perLineRounding: boolean;
}
/** Engine options of a run, sent beside `rate` in the tariff import body. */
export interface PeerSetup {
  netMetering?: Record<string, unknown>;
  netBilling?: Record<string, unknown>;
  billingDemand?: { lookbackHorizonMonths?: number };
  tierScope?: 'window' | 'period';
}
export interface PeerRun {
  id: string;
  tariff: string;
  load: string;
  intervalSeconds: number;
  windows: { from: string; to: string }[];
  setup?: PeerSetup;
  checks: PeerCheck[];
}
export interface PeerCase {
  case: string;
  timezone: string;
  billingDay: number;
  runs: PeerRun[];
}
export interface PeerSuite {
  dir: string;
  /** Sorted by case name. */
  cases: PeerCase[];
  /** Every run with its case, in order. */
  runs: { c: PeerCase; run: PeerRun }[];
  checkCount: number;
}
/** A reading as the CSV writes it (the source columns dropped); the numbers are the CSV's text. */
export interface PeerReading {
  intervalStart: string;
  intervalSeconds: string;
  importWh: string;
  exportWh: string;
}
/** The part of a window's charges the checks read. */
export interface PeerCharges {
  total: string;
  lines: { type: string; period?: string; tier?: number; quantity?: string; amount: string }[];
}
export interface PeerOutcome {
  pass: boolean;
  ours: string;
  expected: string;
  off: string;
  allowed: string;
  /** Non-zero lines summed (the half cent per line of `perLineRounding`). */
  lines: number;
}

/** The suite when `../shared/peer-conformance` (or SHARED_DIR's) is there; else null and why not. */
export function loadPeerSuite(): { suite: PeerSuite | null; reason: string } {
  const { dir, reason } = sharedFolder('peer-conformance');
  if (!dir) return { suite: null, reason };
  const issues: string[] = [];
  const cases = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => {
      const file = join(dir, e.name, 'expected.json');
      if (!existsSync(file)) {
        issues.push(`${e.name}: no expected.json`);
        return null;
      }
      const c = JSON.parse(readFileSync(file, 'utf8')) as PeerCase & { format?: unknown };
      issues.push(...issuesOf(join(dir, e.name), e.name, c).map((issue) => `${e.name}: ${issue}`));
      return c;
    })
    .filter((c): c is PeerCase => c !== null)
    .sort((a, b) => a.case.localeCompare(b.case));
  if (issues.length > 0) throw new Error(`${dir} does not follow the format ${FORMAT} of its README:\n  ${issues.join('\n  ')}`);
  const runs = cases.flatMap((c) => c.runs.map((run) => ({ c, run })));
  return { suite: { dir, cases, runs, checkCount: runs.reduce((n, { run }) => n + run.checks.length, 0) }, reason: '' };
}

/** What in a case's expected.json departs from the documented format (empty when nothing does). */
function issuesOf(caseDir: string, folder: string, c: PeerCase & { format?: unknown }): string[] {
  const issues: string[] = [];
  const decimal = (v: unknown) => typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v);
  if (c.format !== FORMAT) issues.push(`format ${JSON.stringify(c.format)}, not ${FORMAT}`);
  if (c.case !== folder) issues.push(`case ${JSON.stringify(c.case)} is not its folder's name`);
  if (typeof c.timezone !== 'string' || c.timezone === '') issues.push('no timezone');
  if (!Number.isInteger(c.billingDay) || c.billingDay < 1 || c.billingDay > 28) issues.push(`billingDay ${c.billingDay}`);
  if (!Array.isArray(c.runs) || c.runs.length === 0) return [...issues, 'no runs'];
  const runIds = new Set<string>();
  for (const run of c.runs) {
    const at = `run ${run.id}`;
    if (typeof run.id !== 'string' || runIds.has(run.id)) issues.push(`${at}: id missing or not unique`);
    runIds.add(run.id);
    for (const file of [run.tariff, run.load]) if (typeof file !== 'string' || !existsSync(join(caseDir, file))) issues.push(`${at}: no file ${file}`);
    if (!Number.isInteger(run.intervalSeconds) || run.intervalSeconds <= 0) issues.push(`${at}: intervalSeconds ${run.intervalSeconds}`);
    const windows = Array.isArray(run.windows) ? run.windows : [];
    if (windows.length === 0) issues.push(`${at}: no windows`);
    windows.forEach((w, k) => {
      const [from, to] = [Date.parse(w.from), Date.parse(w.to)];
      if (!(from < to)) issues.push(`${at}: window ${k} is not [from, to) instants`);
      if (k > 0 && !(Date.parse(windows[k - 1].to) <= from)) issues.push(`${at}: window ${k} is out of order`);
    });
    const checkIds = new Set<string>();
    for (const check of Array.isArray(run.checks) ? run.checks : []) {
      const where = `${at}, check ${check.id}`;
      if (typeof check.id !== 'string' || checkIds.has(check.id)) issues.push(`${where}: id missing or not unique`);
      checkIds.add(check.id);
      if (!CHECK_KINDS.includes(check.kind)) issues.push(`${where}: kind ${check.kind}`);
      if (CHECK_KINDS.includes(check.kind) && check.kind !== 'sum_total' && (!Array.isArray(check.types) || check.types.length === 0)) issues.push(`${where}: no types`);
      if (check.kind === 'line_quantity' && (check.types?.length !== 1 || check.period === undefined || check.tier === undefined || check.window === undefined))
        issues.push(`${where}: line_quantity needs one type, a period, a tier and a window`);
      if (check.kind === 'neg_sum_amount_of_type_and_period' && check.period === undefined) issues.push(`${where}: no period`);
      if (check.window !== undefined && !(Number.isInteger(check.window) && check.window >= 0 && check.window < windows.length))
        issues.push(`${where}: window ${check.window} is not an index of the run's windows`);
      if (!decimal(check.expected) || !decimal(check.tolerance)) issues.push(`${where}: expected and tolerance must be decimal strings`);
      if (typeof check.perLineRounding !== 'boolean') issues.push(`${where}: perLineRounding is not a boolean`);
    }
    if (checkIds.size === 0) issues.push(`${at}: no checks`);
  }
  return issues;
}

/** The run's tariff file: a body for `POST /v1/tariffs/urdb` (without the run's `setup`). */
export function peerTariffBody(suite: PeerSuite, c: PeerCase, run: PeerRun): { id: string; timezone: string; rate: Record<string, unknown> } {
  return JSON.parse(readFileSync(join(suite.dir, c.case, run.tariff), 'utf8'));
}

/** The run's CSV rows as readings; every row must carry the run's interval and an instant. */
export function peerReadings(suite: PeerSuite, c: PeerCase, run: PeerRun): PeerReading[] {
  const [header, ...rows] = readFileSync(join(suite.dir, c.case, run.load), 'utf8').trim().split('\n');
  const columns = header.split(',');
  const names = ['intervalStart', 'intervalSeconds', 'importWh', 'exportWh'] as const;
  const at = names.map((name) => columns.indexOf(name));
  if (at.some((i) => i < 0)) throw new Error(`${c.case}/${run.load}: the header ${header} lacks one of ${names.join(', ')}`);
  return rows.map((row, k) => {
    const f = row.split(',');
    const reading = { intervalStart: f[at[0]], intervalSeconds: f[at[1]], importWh: f[at[2]], exportWh: f[at[3]] };
    if (Number(reading.intervalSeconds) !== run.intervalSeconds || !Number.isFinite(Date.parse(reading.intervalStart)))
      throw new Error(`${c.case}/${run.load} row ${k + 2}: ${row} is not a reading of a ${run.intervalSeconds} s meter`);
    return reading;
  });
}

/** A check against the charges of the run's windows, with the README's pass rule (exact decimals). */
export function peerOutcome(check: PeerCheck, windows: PeerCharges[]): PeerOutcome {
  const selected = check.window === undefined ? windows : [windows[check.window]];
  const { ours, lines } = figureOf(check, selected);
  const allowed = new D(check.tolerance).plus(check.perLineRounding ? new D('0.005').mul(lines) : 0);
  const off = ours.minus(check.expected).abs();
  return { pass: off.lte(allowed), ours: ours.toFixed(), expected: check.expected, off: off.toFixed(), allowed: allowed.toFixed(), lines };
}

/** Our figure for a check and the number of non-zero lines it summed. */
function figureOf(check: PeerCheck, windows: PeerCharges[]): { ours: Decimal; lines: number } {
  const ofTypes = (l: PeerCharges['lines'][number]) => check.types!.includes(l.type);
  const sumOf = (keep: (l: PeerCharges['lines'][number]) => boolean) => {
    let total = new D(0);
    let n = 0;
    for (const w of windows)
      for (const l of w.lines.filter(keep)) {
        total = total.plus(l.amount);
        if (!new D(l.amount).isZero()) n++;
      }
    return { total, n };
  };
  switch (check.kind) {
    case 'sum_total':
      return { ours: windows.reduce((t, w) => t.plus(w.total), new D(0)), lines: sumOf(() => true).n };
    case 'sum_amount_of_type': {
      const { total, n } = sumOf(ofTypes);
      return { ours: total, lines: n };
    }
    case 'neg_sum_amount_of_type': {
      const { total, n } = sumOf(ofTypes);
      return { ours: total.neg(), lines: n };
    }
    case 'neg_sum_amount_of_type_and_period': {
      const { total, n } = sumOf((l) => ofTypes(l) && l.period === check.period);
      return { ours: total.neg(), lines: n };
    }
    case 'line_quantity': {
      const line = windows[0].lines.find((l) => l.type === check.types![0] && l.period === check.period && l.tier === check.tier);
      return { ours: new D(line?.quantity ?? 0), lines: 0 };
    }
  }
}

/**
 * The suite's place when its material is absent: one test that says why it is not replayed, and fails
 * in CI (CI=true), where the material must be there.
 */
export function describeAbsentPeerSuite(title: string, reason: string): void {
  describe(title, () => {
    it(process.env.CI === 'true' ? 'has its shared material in CI' : `is not replayed here: ${reason}`, () => {
      if (process.env.CI === 'true') expect.fail(reason);
      expect(reason).toContain('is absent');
    });
  });
}
