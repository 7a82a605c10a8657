/**
 * The simulator end to end: the real entry point as a child process against a real (bare) Aedes broker
 * that records every PUBLISH before acknowledging it. No gateway, no database: the test applies the
 * contract's validation and first-value-wins rule to what the broker received and reconciles the result
 * with the ledger, to the mWh.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFleet, readingAt } from './generator/index.js';
import { deviceSecret, secretKeyFor } from './provision/secrets.js';
import type { LedgerDocument } from './run/ledger.js';
import type { RunSummary } from './run/run-stats.js';
import { startRecordingBroker, type RecordedPublish, type RecordingBroker } from './test-support/recording-broker.js';
import { storedView } from './test-support/reconcile.js';
import { runCli, type CliRun } from './test-support/run-cli.js';

let directory: string;
beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'simulator-e2e-'));
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

const FROM = '2025-03-08T00:00:00Z'; // spans the US spring-forward night
const FAULTS = 'duplicate=0.05,reorder=0.05,invalid=0.05,gap=0.03,late=0.02,conflict=0.04';

/** Waits until `condition` holds; fails at once if the simulator exits first. */
async function until(condition: () => boolean, running: Promise<CliRun>): Promise<void> {
  let exited: CliRun | null = null;
  void running.then((run) => (exited = run));
  while (!condition()) {
    if (exited) throw new Error(`simulator exited early with ${(exited as CliRun).code}: ${(exited as CliRun).stderr}`);
    await sleep(20);
  }
}

/** Checks the ledger against what the broker received, and every stored value against the generator. */
function reconcile(received: RecordedPublish[], ledger: LedgerDocument, fleetOptions: { meters: number; seed: string }) {
  const fleet = createFleet({ ...fleetOptions, profile: 'mixed' });
  const view = storedView(received, {
    meterIds: fleet.meters.map((m) => m.id),
    intervalSeconds: 900,
    futureAfterMs: Date.now() + 5 * 60_000,
  });
  expect(ledger.meters).toEqual(view.meters);
  for (const reading of view.stored.values()) {
    const meter = fleet.meters.find((m) => m.id === reading.meterId)!;
    expect(reading).toEqual(readingAt(meter, reading.intervalStart)); // the original, never a conflicting variant
  }
  return view;
}

describe('simulate (end to end, bare broker)', () => {
  it('backfills through concentrators at QoS 1 with faults; the ledger matches the stored readings exactly', async () => {
    const broker = await startRecordingBroker();
    try {
      const ledgerPath = join(directory, 'concentrators.json');
      const run = await runCli([
        '--bare-broker', '--broker', `mqtt://127.0.0.1:${broker.port}`,
        '--meters', '12', '--concentrators', '3', '--batch', '40', '--qos', '1',
        '--from', FROM, '--to', '2025-03-10T00:00:00Z',
        '--seed', 'e2e', '--faults', FAULTS, '--ledger', ledgerPath, '--json',
      ]);
      expect(run.code, run.stderr).toBe(0);
      const summary = JSON.parse(run.stdout.trim()) as RunSummary;
      const ledger = JSON.parse(await readFile(ledgerPath, 'utf8')) as LedgerDocument;
      expect(Object.keys(ledger)).toEqual(['from', 'to', 'meters', 'invalidSent', 'duplicatesSent']);
      expect([ledger.from, ledger.to]).toEqual([FROM, '2025-03-10T00:00:00Z']);

      const view = reconcile(broker.received, ledger, { meters: 12, seed: 'e2e' });
      // Nothing was resent by the transport here, so every copy the broker saw is one the ledger counted.
      expect(ledger.invalidSent).toBe(view.invalid + view.conflicting);
      expect(ledger.duplicatesSent).toBe(view.identicalCopies);
      expect(view.conflicting).toBeGreaterThan(0);
      expect(view.invalid).toBeGreaterThan(0);
      expect(view.identicalCopies).toBeGreaterThan(0);
      expect(summary).toMatchObject({ sent: summary.acked, failed: 0, resent: 0, readingsAcked: view.stored.size });
      expect(summary.faults.gap).toBeGreaterThan(0);
      expect(view.stored.size).toBe(12 * 192 - summary.faults.gap - summary.faults.invalid);
      expect(broker.received.every((p) => /^concentrators\/DCU-000[1-3]\/readings$/.test(p.topic))).toBe(true);
      expect(new Set(broker.received.map((p) => p.clientId))).toEqual(new Set(['DCU-0001:sim', 'DCU-0002:sim', 'DCU-0003:sim']));
    } finally {
      await broker.close();
    }
  });

  it('survives a broker restart: meters reconnect, resend what was not acknowledged, and the ledger still reconciles', async () => {
    const received: RecordedPublish[] = [];
    // The first broker hangs after 100 messages (no record, no PUBACK), then dies; a new one takes its port.
    let broker: RecordingBroker = await startRecordingBroker(0, received, { stallAfter: 100 });
    const port = broker.port;
    const ledgerPath = join(directory, 'restart.json');
    const running = runCli([
      '--bare-broker', '--broker', `mqtt://127.0.0.1:${port}`,
      '--meters', '6', '--batch', '3', '--qos', '1', '--rate', '150', '--inflight', '4',
      '--from', FROM, '--to', '2025-03-09T00:00:00Z',
      '--seed', 'restart', '--faults', FAULTS, '--ledger', ledgerPath, '--json',
    ]);
    try {
      await until(() => broker.stalled >= 12, running);
      const unacknowledged = broker.stalled;
      await broker.close();
      await sleep(1_000);
      broker = await startRecordingBroker(port, received);
      const run = await running;
      expect(run.code, run.stderr).toBe(0);
      const summary = JSON.parse(run.stdout.trim()) as RunSummary;
      expect(summary.reconnects).toBeGreaterThanOrEqual(6);
      expect(summary.resent).toBeGreaterThanOrEqual(unacknowledged);
      expect(summary).toMatchObject({ failed: 0, acked: summary.sent });
      const ledger = JSON.parse(await readFile(ledgerPath, 'utf8')) as LedgerDocument;
      const view = reconcile(received, ledger, { meters: 6, seed: 'restart' });
      expect(ledger.invalidSent).toBe(view.invalid + view.conflicting);
      expect(ledger.duplicatesSent).toBe(view.identicalCopies);
      expect(view.stored.size).toBe(6 * 96 - summary.faults.gap - summary.faults.invalid);
      expect(received.every((p) => /^meters\/MTR-00000[1-6]\/readings$/.test(p.topic))).toBe(true);
    } finally {
      await broker.close();
    }
  });

  it('resends when acknowledgements stop coming on a live connection (ack timeout, reconnect, resend)', async () => {
    const broker = await startRecordingBroker(0, [], { stallAfter: 40 });
    try {
      const ledgerPath = join(directory, 'stall.json');
      const running = runCli([
        '--bare-broker', '--broker', `mqtt://127.0.0.1:${broker.port}`, '--meters', '4', '--batch', '4', '--rate', '100', '--ack-timeout', '1',
        '--from', FROM, '--to', '2025-03-09T00:00:00Z', '--seed', 'stall', '--faults', FAULTS, '--ledger', ledgerPath, '--json',
      ]);
      await until(() => broker.stalled >= 4, running);
      broker.resume(); // the gateway recovers; what it swallowed is never acknowledged
      const run = await running;
      expect(run.code, run.stderr).toBe(0);
      const summary = JSON.parse(run.stdout.trim()) as RunSummary;
      expect(summary.ackTimeouts).toBeGreaterThanOrEqual(1);
      expect(summary.resent).toBeGreaterThanOrEqual(broker.stalled);
      expect(summary).toMatchObject({ failed: 0, acked: summary.sent });
      const ledger = JSON.parse(await readFile(ledgerPath, 'utf8')) as LedgerDocument;
      const view = reconcile(broker.received, ledger, { meters: 4, seed: 'stall' });
      expect(view.stored.size).toBe(4 * 96 - summary.faults.gap - summary.faults.invalid);
    } finally {
      await broker.close();
    }
  });

  it('at QoS 0 counts in the ledger what was written to the socket', async () => {
    const broker = await startRecordingBroker();
    try {
      const ledgerPath = join(directory, 'qos0.json');
      const run = await runCli([
        '--bare-broker', '--broker', `mqtt://127.0.0.1:${broker.port}`, '--meters', '3', '--qos', '0',
        '--from', FROM, '--to', '2025-03-08T12:00:00Z', '--seed', 'q0', '--ledger', ledgerPath, '--json',
      ]);
      expect(run.code, run.stderr).toBe(0);
      const summary = JSON.parse(run.stdout.trim()) as RunSummary;
      expect(summary).toMatchObject({ sent: 144, acked: 0, failed: 0, readingsAcked: 144, ackLatencyMs: { p50: null, p99: null } });
      await sleep(200); // the broker may still be reading the last packets
      const ledger = JSON.parse(await readFile(ledgerPath, 'utf8')) as LedgerDocument;
      reconcile(broker.received, ledger, { meters: 3, seed: 'q0' });
    } finally {
      await broker.close();
    }
  });

  it('connects with the secrets derived from the seed; a device refused for its credentials gives up at once', async () => {
    const key = secretKeyFor('creds', null);
    const broker = await startRecordingBroker(0, [], { credentials: (id, password) => password === deviceSecret(key, id) });
    try {
      const args = ['--bare-broker', '--broker', `mqtt://127.0.0.1:${broker.port}`, '--meters', '2', '--from', FROM, '--to', '2025-03-08T01:00:00Z', '--seed', 'creds', '--json'];
      const accepted = await runCli(args);
      expect(accepted.code, accepted.stderr).toBe(0);
      expect(broker.received.length).toBe(8);
      const refused = await runCli([...args, '--secret-key', 'not-the-provisioned-one']);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('Connection refused: Bad username or password');
      expect(JSON.parse(refused.stdout)).toMatchObject({ sent: 0, devicesGaveUp: 2, connectFailures: 2 });
    } finally {
      await broker.close();
    }
  });

  it('refuses bad options, listing every problem, with exit code 1', async () => {
    const run = await runCli(['--meters', '0', '--interval', '700', '--faults', 'gap=2', '--from', '2025-03-08T00:00:00', '--provision']);
    expect(run.code).toBe(1);
    for (const problem of ['--meters:', '--interval: must be one of', '--faults: gap: probability', '--from: "2025-03-08T00:00:00" is neither an ISO 8601 instant']) {
      expect(run.stderr).toContain(problem);
    }
  });
});
