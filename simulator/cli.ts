/**
 * `npm run simulate -- [options]`: parses options, runs the simulation, prints the summary, exits with
 * 0 (everything acknowledged), 1 (bad options or provisioning failed), 2 (messages failed), 3 (the broker
 * is not the API's: one line, no summary), 4 (--reconcile found differences) or 130 (stopped by
 * SIGINT/SIGTERM, everything sent was acknowledged).
 */
import { parseArguments } from './config.js';
import { createProgressReporter } from './run/progress.js';
import { describeDifferences } from './run/api-reconcile.js';
import { describeNetMeteringDifferences } from './run/net-metering-reconcile.js';
import { BrokerRefusal } from './run/broker-check.js';
import { runSimulation } from './run/simulation.js';
import type { RunSummary } from './run/run-stats.js';

async function main(): Promise<number> {
  const parsed = parseArguments(process.argv);
  if ('errors' in parsed) {
    process.stderr.write(`simulate: invalid options\n${parsed.errors.map((e) => `  ${e}\n`).join('')}`);
    return 1;
  }
  const config = parsed.config;
  const stop = new AbortController();
  const abort = new AbortController();
  const onSignal = () => (stop.signal.aborted ? abort.abort() : stop.abort());
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const result = await runSimulation(config, {
      log: (line) => process.stderr.write(`[simulate] ${line}\n`),
      progress: createProgressReporter({ interactive: Boolean(process.stdout.isTTY && process.stderr.isTTY) }),
      now: Date.now,
      stop: stop.signal,
      abort: abort.signal,
    });
    const reconcile = result.reconcile && {
      meters: result.reconcile.meters,
      differences: result.reconcile.differences,
      ...(result.reconcile.netMetering ? { netMetering: result.reconcile.netMetering } : {}),
    };
    process.stdout.write(
      config.json ? `${JSON.stringify(reconcile ? { ...result.summary, reconcile } : result.summary)}\n` : formatSummary(result.summary, config.ledgerPath),
    );
    if (result.reconcile) {
      const { meters, differences } = result.reconcile;
      if (differences.length === 0) process.stderr.write(`reconcile: all ${meters} meters match the API to the mWh\n`);
      else {
        const lines = describeDifferences(result.reconcile);
        process.stderr.write(
          `reconcile: ${differences.length} of ${meters} meters differ from the API\n` +
            lines.slice(0, 50).map((l) => `  ${l}\n`).join('') +
            (lines.length > 50 ? `  ... and ${lines.length - 50} more (all of them in the --json summary)\n` : ''),
        );
      }
      const nem = result.reconcile.netMetering;
      if (nem && nem.differences.length === 0) {
        process.stderr.write(
          `reconcile: the kWh banks of all ${nem.meters} meters match the API's charges in ${nem.windows} billing windows` +
            ` (${nem.trueUps} true-ups; at their fullest the banks held ${nem.peakBankKwh} kWh)\n`,
        );
      } else if (nem) {
        const lines = describeNetMeteringDifferences(nem);
        process.stderr.write(
          `reconcile: ${nem.differences.length} of ${nem.windows} billing windows differ from the API's net metering\n` +
            lines.slice(0, 50).map((l) => `  ${l}\n`).join('') +
            (lines.length > 50 ? `  ... and ${lines.length - 50} more (all of them in the --json summary)\n` : ''),
        );
      }
    }
    return result.exitCode;
  } catch (error) {
    if (error instanceof BrokerRefusal) {
      process.stderr.write(`simulate: refused: ${error.message}\n`);
      return 3;
    }
    process.stderr.write(`simulate: ${(error as Error).message}\n`);
    return 1;
  }
}

function formatSummary(s: RunSummary, ledgerPath: string | null): string {
  const latency =
    s.qos === 0 ? 'none at QoS 0' : s.ackLatencyMs.p50 === null ? 'nothing acknowledged' : `p50 ${s.ackLatencyMs.p50} ms, p99 ${s.ackLatencyMs.p99} ms`;
  const check = {
    stored: 'verified: an acknowledged reading was found through the API',
    address: 'an address the API lists (not checked by data: no --token)',
    'already-stored': 'an address the API lists (not checked by data: every reading checked was stored before this run)',
    unverified: 'NOT verified: acknowledgements are the broker\'s alone',
  }[s.brokerCheck];
  return [
    `${s.mode} done in ${(s.elapsedMs / 1000).toFixed(1)} s: ${s.meters} meters, ${s.devices} devices, QoS ${s.qos}`,
    `broker: ${s.broker}, ${check}`,
    s.qos === 1
      ? `messages: ${s.sent} sent, ${s.acked} acked, ${s.failed} failed, ${s.resent} resent after ${s.reconnects} reconnections`
      : `messages: ${s.sent} sent at QoS 0 (nothing is acknowledged), ${s.failed} failed, ${s.reconnects} reconnections`,
    `readings: ${s.readingsAcked} in the ledger (${s.readingsPerSec}/s), ` +
      `${s.invalidSent} invalid and ${s.duplicatesSent} duplicates sent`,
    `ack latency: ${latency}; peak memory ${s.peakRssMb} MiB`,
    ...(ledgerPath ? [`ledger: ${ledgerPath}`] : []),
    ...(s.devicesGaveUp > 0 ? [`${s.devicesGaveUp} devices gave up`] : []),
  ].join('\n') + '\n';
}

process.exitCode = await main();
