/**
 * `npm run simulate -- [options]`: parses options, runs the simulation, prints the summary, exits with
 * 0 (everything acknowledged), 1 (bad options or provisioning failed), 2 (messages failed) or 130
 * (stopped by SIGINT/SIGTERM, everything sent was acknowledged).
 */
import { parseArguments } from './config.js';
import { createProgressReporter } from './run/progress.js';
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
    process.stdout.write(config.json ? `${JSON.stringify(result.summary)}\n` : formatSummary(result.summary, config.ledgerPath));
    return result.exitCode;
  } catch (error) {
    process.stderr.write(`simulate: ${(error as Error).message}\n`);
    return 1;
  }
}

function formatSummary(s: RunSummary, ledgerPath: string | null): string {
  const latency = s.ackLatencyMs.p50 === null ? 'n/a (QoS 0)' : `p50 ${s.ackLatencyMs.p50} ms, p99 ${s.ackLatencyMs.p99} ms`;
  return [
    `${s.mode} done in ${(s.elapsedMs / 1000).toFixed(1)} s: ${s.meters} meters, ${s.devices} devices, QoS ${s.qos}`,
    `messages: ${s.sent} sent, ${s.acked} acked, ${s.failed} failed, ${s.resent} resent after ${s.reconnects} reconnections`,
    `readings: ${s.readingsAcked} in the ledger (${s.readingsPerSec}/s), ` +
      `${s.invalidSent} invalid and ${s.duplicatesSent} duplicates sent`,
    `ack latency: ${latency}; peak memory ${s.peakRssMb} MiB`,
    ...(ledgerPath ? [`ledger: ${ledgerPath}`] : []),
    ...(s.devicesGaveUp > 0 ? [`${s.devicesGaveUp} devices gave up`] : []),
  ].join('\n') + '\n';
}

process.exitCode = await main();
