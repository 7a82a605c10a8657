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
import type { MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storageModes } from '../support/database.js';
import { connectDevice, endClient } from '../support/mqtt.js';
import {
  describeAbsentPeerSuite,
  loadPeerSuite,
  peerOutcome,
  peerReadings,
  peerTariffBody,
  type PeerCase,
  type PeerCharges,
  type PeerCheck,
  type PeerReading,
  type PeerRun,
  type PeerSuite,
} from '../support/peer-suite.js';
import { startTestStack, type TestStack } from '../support/stack.js';

/** Checks that do not hold yet, by name (`<case>/<run>/<check>`), with the reason. */
const KNOWN_FAILURES: Record<string, string> = {};

const { suite, reason } = loadPeerSuite();

if (!suite) {
  describeAbsentPeerSuite('peer conformance through the public API', reason);
} else {
  const replayed = suite.runs;
  const checkCount = suite.checkCount;

  describe('peer conformance through the public API', () => {
    let stack: TestStack;
    const charges = new Map<string, { body: PeerCharges & { coverage: { actualIntervals: number } }; status: number }[]>();
    const provisioned = new Map<string, string>();
    const outcomes = new Map<string, { pass: boolean; detail: string }>();

    beforeAll(async () => {
      // The peers' years (2018, 2023, 2024) lie before the meters' creation: the stack accepts readings that old.
      stack = await startTestStack(storageModes()[0], { READING_BACKFILL_DAYS: '36500' });
      for (const [k, { c, run }] of replayed.entries()) {
        const name = `${c.case}/${run.id}`;
        try {
          const meterId = await provision(stack, suite, c, run, k);
          await publishLoad(stack, meterId, peerReadings(suite, c, run));
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
        const starts = peerReadings(suite, c, run).map((r) => Date.parse(r.intervalStart));
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
function outcomeOf(check: PeerCheck, answers: { body: PeerCharges; status: number }[] | undefined, failure: string | undefined): { pass: boolean; detail: string } {
  if (failure || !answers) return { pass: false, detail: `not provisioned, published or fetched: ${failure}` };
  const selected = check.window === undefined ? answers : [answers[check.window]];
  const refused = selected.find((a) => a.status !== 200);
  if (refused) return { pass: false, detail: `charges answered ${refused.status}: ${JSON.stringify(refused.body).slice(0, 300)}` };
  const o = peerOutcome(check, answers.map((a) => a.body));
  return { pass: o.pass, detail: `ours ${o.ours} vs the peer's ${o.expected} (off ${o.off}, allowed ${o.allowed}, ${o.lines} lines)` };
}

/** The run's tariff, account and meter, as the README's recipe says; returns the meter id. */
async function provision(stack: TestStack, suite: PeerSuite, c: PeerCase, run: PeerRun, k: number): Promise<string> {
  const tariff = peerTariffBody(suite, c, run);
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
async function publishLoad(stack: TestStack, meterId: string, rows: PeerReading[]): Promise<void> {
  const readings = rows.map(
    (r) => `{"intervalStart":"${r.intervalStart}","intervalSeconds":${r.intervalSeconds},"importWh":${r.importWh},"exportWh":${r.exportWh}}`,
  );
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
