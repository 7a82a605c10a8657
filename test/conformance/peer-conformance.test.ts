/**
 * The peer conformance suite (`../shared/peer-conformance/`: bills asserted by NREL SAM's and REopt.jl's
 * own tests) replayed through the public API exactly as its README says: for each run, POST the tariff to
 * /v1/tariffs/urdb (with the run's `setup` options beside `rate`), an account in the case's zone with
 * billing day 1, a meter with the run's interval and the tariff, the CSV rows published over MQTT (QoS 1,
 * messages of at most 500 readings, numbers written as they are in the CSV, every message acknowledged),
 * then GET /v1/meters/{id}/charges for each window, and every check evaluated in exact decimals with the
 * README's pass rule.
 *
 * Every run is replayed, the net-metering and net-billing runs too: their options (`setup`) travel beside
 * `rate`, and each window's charges include what earlier windows carried into it (the charges of a window
 * are derived from the readings since the last true-up, so each window is fetched on its own).
 *
 * After the replay the test prints a table of every check (ours, the peer's figure, allowed, pass or fail).
 * A check listed in KNOWN_FAILURES is asserted in its known state (it fails, for the reason given); when
 * it starts to hold, the test fails until it is removed from the list, so the list never hides a pass or
 * a regression.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import Decimal from 'decimal.js';
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageModes } from '../support/database.js';
import { connectDevice, endClient } from '../support/mqtt.js';
import { startTestStack, type TestStack } from '../support/stack.js';
import { sharedFolder } from './shared-material.js';

const D = Decimal.clone({ precision: 50 });

/** Checks that do not hold yet, by name (`<case>/<run>/<check>`), with the reason. */
const KNOWN_FAILURES: Record<string, string> = {};

interface Check {
  id: string;
  kind: 'sum_total' | 'sum_amount_of_type' | 'neg_sum_amount_of_type' | 'line_quantity' | 'neg_sum_amount_of_type_and_period';
  types?: string[];
  period?: string;
  tier?: number;
  window?: number;
  expected: string;
  tolerance: string;
  perLineRounding: boolean;
}
interface Run {
  id: string;
  tariff: string;
  load: string;
  intervalSeconds: number;
  windows: { from: string; to: string }[];
  setup?: Record<string, unknown>;
  checks: Check[];
}
interface Case {
  case: string;
  timezone: string;
  billingDay: number;
  runs: Run[];
}
interface Line {
  type: string;
  period?: string;
  tier?: number;
  quantity?: string;
  amount: string;
}

const { dir, reason } = sharedFolder('peer-conformance');

if (!dir) {
  describe('peer conformance', () => {
    it(process.env.CI === 'true' ? 'has its shared material in CI' : `is not replayed here: ${reason}`, () => {
      if (process.env.CI === 'true') expect.fail(reason);
      expect(dir).toBeNull();
    });
  });
} else {
  const cases: Case[] = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => JSON.parse(readFileSync(join(dir, e.name, 'expected.json'), 'utf8')) as Case)
    .sort((a, b) => a.case.localeCompare(b.case));
  const replayed = cases.flatMap((c) => c.runs.map((run) => ({ c, run })));
  const checkCount = replayed.reduce((n, { run }) => n + run.checks.length, 0);

  describe('peer conformance through the public API', () => {
    let stack: TestStack;
    const charges = new Map<string, { body: { total: string; lines: Line[]; coverage: { actualIntervals: number } }; status: number }[]>();
    const provisioned = new Map<string, string>();
    const outcomes = new Map<string, { pass: boolean; detail: string }>();

    beforeAll(async () => {
      // The peers' years (2018, 2023, 2024) lie before the meters' creation: the stack accepts readings that old.
      stack = await startTestStack(storageModes()[0], { READING_BACKFILL_DAYS: '36500' });
      for (const [k, { c, run }] of replayed.entries()) {
        const name = `${c.case}/${run.id}`;
        try {
          const meterId = await provision(stack, c, run, k);
          await publishLoad(stack, meterId, readFileSync(join(dir, c.case, run.load), 'utf8'));
          const answers = [];
          for (const w of run.windows) {
            const res = await stack.api(`/v1/meters/${meterId}/charges?from=${encodeURIComponent(w.from)}&to=${encodeURIComponent(w.to)}`);
            answers.push(res);
          }
          charges.set(name, answers);
        } catch (err) {
          provisioned.set(name, (err as Error).message);
        }
        for (const check of run.checks) outcomes.set(`${name}/${check.id}`, outcomeOf(check, charges.get(name), provisioned.get(name)));
      }
    }, 1_200_000);
    afterAll(async () => stack?.close());

    for (const { c, run } of replayed) {
      it(`${c.case}/${run.id}: every published reading of its windows is rated`, () => {
        const name = `${c.case}/${run.id}`;
        expect(provisioned.get(name), `${name} could not be provisioned, published or fetched`).toBeUndefined();
        const starts = readFileSync(join(dir, c.case, run.load), 'utf8').trim().split('\n').slice(1).map((row) => Date.parse(row.split(',')[0]));
        const inWindows = starts.filter((t) => run.windows.some((w) => t >= Date.parse(w.from) && t < Date.parse(w.to))).length;
        expect(inWindows).toBeGreaterThan(0);
        expect(charges.get(name)!.reduce((n, a) => n + (a.body.coverage?.actualIntervals ?? 0), 0)).toBe(inWindows);
      });
      for (const check of run.checks) {
        const name = `${c.case}/${run.id}/${check.id}`;
        const known = KNOWN_FAILURES[name];
        it(known ? `${name} (known failure: ${known})` : name, () => {
          const outcome = outcomes.get(name)!;
          if (known) {
            expect(outcome.pass, `${name} now holds (${outcome.detail}): remove it from KNOWN_FAILURES`).toBe(false);
            return;
          }
          expect(outcome.pass, `${name}: ${outcome.detail}`).toBe(true);
        });
      }
    }

    it(`evaluates all ${checkCount} checks of the suite and prints the table`, () => {
      expect(outcomes.size).toBe(checkCount);
      const rows = [...outcomes].map(([name, o]) => `${o.pass ? 'pass' : 'FAIL'}  ${name}  ${o.detail}`);
      const passed = [...outcomes.values()].filter((o) => o.pass).length;
      console.log(`peer conformance through the public API: ${passed} of ${checkCount} checks hold\n${rows.join('\n')}`);
      expect(Object.keys(KNOWN_FAILURES).every((name) => outcomes.has(name)), 'every known failure names a check of the suite').toBe(true);
    });
  });
}

/** Whether a check holds, with our figure, the peer's and what is allowed (the README's pass rule). */
function outcomeOf(check: Check, answers: { body: any; status: number }[] | undefined, failure: string | undefined): { pass: boolean; detail: string } {
  if (failure || !answers) return { pass: false, detail: `not provisioned, published or fetched: ${failure}` };
  const selected = check.window === undefined ? answers : [answers[check.window]];
  const refused = selected.find((a) => a.status !== 200);
  if (refused) return { pass: false, detail: `charges answered ${refused.status}: ${JSON.stringify(refused.body).slice(0, 300)}` };
  const { ours, lines } = evaluate(check, selected.map((a) => a.body));
  const allowed = new D(check.tolerance).plus(check.perLineRounding ? new D('0.005').mul(lines) : 0);
  const off = ours.minus(check.expected).abs();
  return { pass: off.lte(allowed), detail: `ours ${ours.toFixed()} vs the peer's ${check.expected} (off ${off.toFixed()}, allowed ${allowed.toFixed()}, ${lines} lines)` };
}

/** Our figure for a check and the number of non-zero lines it summed (exact decimals). */
function evaluate(check: Check, windows: { total: string; lines: Line[] }[]): { ours: Decimal; lines: number } {
  const ofTypes = (l: Line) => check.types!.includes(l.type);
  const sumOf = (keep: (l: Line) => boolean) => {
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
    case 'sum_total': {
      const { n } = sumOf(() => true);
      return { ours: windows.reduce((t, w) => t.plus(w.total), new D(0)), lines: n };
    }
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

/** The run's tariff, account and meter, as the README's recipe says; returns the meter id. */
async function provision(stack: TestStack, c: Case, run: Run, k: number): Promise<string> {
  const tariff = JSON.parse(readFileSync(join(dir!, c.case, run.tariff), 'utf8'));
  const tariffId = `pc-${k}-${run.id}`.slice(0, 64);
  const imported = await stack.api('/v1/tariffs/urdb', { body: { ...tariff, id: tariffId, ...(run.setup ?? {}) } });
  if (imported.status !== 201) throw new Error(`tariff import: ${imported.status} ${JSON.stringify(imported.body)}`);
  const accountId = `PC-${k}`;
  const account = await stack.api('/v1/accounts', { body: { id: accountId, name: c.case, timezone: c.timezone, billingDay: c.billingDay } });
  if (account.status !== 201) throw new Error(`account: ${account.status} ${JSON.stringify(account.body)}`);
  const meterId = `PC-M-${k}`;
  const meter = await stack.api('/v1/meters', {
    body: { id: meterId, accountId, timezone: c.timezone, intervalSeconds: run.intervalSeconds, tariffId, mqttPassword: `replay-${k}-secret-0123456789` },
  });
  if (meter.status !== 201) throw new Error(`meter: ${meter.status} ${JSON.stringify(meter.body)}`);
  return meterId;
}

/**
 * Publishes the CSV rows as readings: QoS 1, at most 500 a message, the numbers as written in the CSV
 * (the source columns dropped), a window of messages in flight; resolves when every message is
 * acknowledged, resending after a dropped connection what was not.
 */
async function publishLoad(stack: TestStack, meterId: string, csv: string): Promise<void> {
  const [header, ...rows] = csv.trim().split('\n');
  const columns = header.split(',');
  const at = (name: string) => columns.indexOf(name);
  const [start, seconds, imported, exported] = [at('intervalStart'), at('intervalSeconds'), at('importWh'), at('exportWh')];
  const readings = rows.map((row) => {
    const f = row.split(',');
    return `{"intervalStart":"${f[start]}","intervalSeconds":${f[seconds]},"importWh":${f[imported]},"exportWh":${f[exported]}}`;
  });
  const messages: string[] = [];
  for (let i = 0; i < readings.length; i += 500) messages.push(`{"readings":[${readings.slice(i, i + 500).join(',')}]}`);
  const acknowledged = new Set<number>();
  for (let attempt = 0; attempt < 3 && acknowledged.size < messages.length; attempt++) {
    const client: MqttClient = await connectDevice(stack.mqttUrl, meterId, `replay-${meterId.slice(5)}-secret-0123456789`);
    try {
      const waiting = messages.map((_, i) => i).filter((i) => !acknowledged.has(i));
      let next = 0;
      const worker = async () => {
        while (next < waiting.length) {
          const i = waiting[next++];
          await new Promise<void>((resolve, reject) =>
            client.publish(`meters/${meterId}/readings`, messages[i], { qos: 1 }, (err) => (err ? reject(err) : resolve())),
          );
          acknowledged.add(i);
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
    } catch {
      // resent on the next connection
    } finally {
      await endClient(client);
    }
  }
  if (acknowledged.size < messages.length) throw new Error(`${messages.length - acknowledged.size} messages not acknowledged`);
}
