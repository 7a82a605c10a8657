/**
 * One run of the simulator: fleet, optional provisioning, devices, backfill or live schedule, ledger and
 * summary. All side effects come in through `SimulationIo` (logging, progress, wall clock, stop signals).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { SimulatorConfig } from '../config.js';
import { DEFAULT_BACKOFF } from '../delivery/backoff.js';
import type { SessionEvents, SessionOptions } from '../delivery/device-session.js';
import { RateLimiter } from '../delivery/rate-limiter.js';
import { Slots } from '../delivery/slots.js';
import { alignDown, alignUp, countIntervals, createFleet, formatFaultSpec } from '../generator/index.js';
import { provisionFleet } from '../provision/provision.js';
import { secretKeyFor } from '../provision/secrets.js';
import { collectInterval, createDevices, endLiveSources, totalFaultCounts, type SimulatedDevice } from './devices.js';
import { isoSeconds, Ledger } from './ledger.js';
import { SimulatedClock } from './live-clock.js';
import type { ProgressReporter, ProgressSnapshot } from './progress.js';
import { RunStats, type RunSummary } from './run-stats.js';

export interface SimulationIo {
  /** A line for the operator (stderr). */
  log(line: string): void;
  progress: ProgressReporter;
  /** Wall clock, epoch ms. */
  now(): number;
  /** Aborted: stop producing, wait for what is in flight, write the ledger. */
  stop: AbortSignal;
  /** Aborted: stop at once; unacknowledged messages fail. */
  abort: AbortSignal;
}

export interface SimulationResult {
  summary: RunSummary;
  ledger: Ledger;
  /** 0: everything settled; 2: some messages failed or devices gave up; 130: stopped by a signal. */
  exitCode: number;
}

/** Most simultaneous MQTT handshakes. */
const MAX_HANDSHAKES = 100;
/** After a stop request, how long in-flight messages may take before the run aborts. */
const DRAIN_TIMEOUT_MS = 30_000;
/** The gateway quarantines readings starting more than this ahead of its clock (`future`). */
const FUTURE_TOLERANCE_MS = 5 * 60_000;

export async function runSimulation(config: SimulatorConfig, io: SimulationIo): Promise<SimulationResult> {
  const fleet = createFleet({
    meters: config.meters,
    seed: config.seed,
    profile: config.profile,
    timezone: config.timezone,
    intervalSeconds: config.intervalSeconds,
    idPrefix: config.idPrefix,
    concentrators: config.concentrators,
    latitude: config.latitude,
    longitude: config.longitude,
  });
  const secretKey = secretKeyFor(config.seed, config.secretKey);
  if (config.provision) {
    await provisionFleet(fleet, {
      apiUrl: config.apiUrl,
      token: config.token!,
      tariffId: config.tariffId,
      timezone: config.timezone,
      secretKey,
      log: io.log,
    });
  }

  const intervalMs = config.intervalSeconds * 1000;
  const mode = config.mode;
  const liveStartMs = mode.kind === 'live' ? (mode.startMs ?? io.now()) : 0;
  const firstIntervalStart =
    mode.kind === 'backfill' ? alignUp(mode.fromMs, config.intervalSeconds) : alignDown(liveStartMs, config.intervalSeconds);
  const window =
    mode.kind === 'backfill'
      ? { fromMs: mode.fromMs, toMs: mode.toMs }
      : { fromMs: firstIntervalStart, toMs: firstIntervalStart }; // widened as intervals end
  const ledger = new Ledger(fleet.meters.map((m) => m.id), firstIntervalStart, intervalMs, window);
  const stats = new RunStats();
  warnAboutFutureReadings(config, io, liveStartMs);

  const sessionOptions: SessionOptions = {
    brokerUrl: config.brokerUrl,
    connectTimeoutMs: 10_000,
    keepaliveSeconds: 60,
    qos: config.qos,
    inflightWindow: config.inflight,
    backoff: DEFAULT_BACKOFF,
    giveUpAfterMs: config.giveUpAfterMs,
    ackTimeoutMs: config.ackTimeoutMs,
    connections: new Slots(config.connections),
    handshakes: new Slots(MAX_HANDSHAKES),
    rateLimiter: config.rate === null ? null : new RateLimiter(config.rate),
    stayConnected: mode.kind === 'live' && config.connections >= (config.concentrators || config.meters),
    events: sessionEvents(config, stats, ledger, io),
  };
  const devices = createDevices(fleet, config, secretKey, sessionOptions);
  io.log(
    `${mode.kind}: ${fleet.meters.length} meters (${config.profile}) through ${devices.length} ` +
      `${config.concentrators > 0 ? 'concentrators' : 'direct connections'} (at most ${config.connections} at once), ` +
      `interval ${config.intervalSeconds} s, QoS ${config.qos}, faults ${formatFaultSpec(config.faults)}, seed ${config.seed}`,
  );

  const total =
    mode.kind === 'backfill' ? fleet.meters.length * countIntervals(mode.fromMs, mode.toMs, config.intervalSeconds) : null;
  let clockLabel: string | null = null;
  const snapshot = (): ProgressSnapshot => ({
    collected: devices.reduce((sum, d) => sum + d.feed.readingsCollected, 0),
    total,
    readingsAcked: ledger.readings,
    messagesSent: stats.sent,
    messagesAcked: config.qos === 1 ? stats.acked : stats.settledAtQos0,
    connected: stats.connected,
    reconnects: stats.reconnects,
    clock: clockLabel,
  });
  const progressTimer = setInterval(() => io.progress.update(snapshot()), 250);
  const ackSweeper = setInterval(
    () => devices.forEach((d) => d.session.checkAcknowledgements()),
    Math.min(1_000, config.ackTimeoutMs / 2),
  );

  const onAbort = () => devices.forEach((d) => d.session.abort());
  io.abort.addEventListener('abort', onAbort, { once: true });
  const sessionsDone = Promise.all(devices.map((d) => d.session.run()));
  const onStop = () => {
    io.log('stopping: no new readings; waiting for messages in flight');
    if (mode.kind === 'backfill') {
      for (const device of devices) {
        device.feed.halt();
        device.session.notify();
      }
    }
    setTimeout(onAbort, DRAIN_TIMEOUT_MS).unref();
  };
  io.stop.addEventListener('abort', onStop, { once: true });

  if (mode.kind === 'live') {
    await runLiveClock(devices, config, io, new SimulatedClock(liveStartMs, mode.speed, io.now), (intervalEnd) => {
      ledger.setWindow(firstIntervalStart, intervalEnd);
      clockLabel = isoSeconds(intervalEnd);
    });
    endLiveSources(devices);
  }
  const outcomes = await sessionsDone;
  clearInterval(progressTimer);
  clearInterval(ackSweeper);
  io.abort.removeEventListener('abort', onAbort);
  io.stop.removeEventListener('abort', onStop);
  stats.stop();
  io.progress.stop(snapshot());

  const gaveUp = outcomes.filter((o) => o.status === 'gave-up');
  stats.devicesGaveUp = gaveUp.length;
  for (const outcome of gaveUp.slice(0, 10)) if (outcome.status === 'gave-up') io.log(`gave up: ${outcome.reason}`);
  if (gaveUp.length > 10) io.log(`... and ${gaveUp.length - 10} more devices gave up`);
  if (config.ledgerPath) await ledger.write(config.ledgerPath);

  const summary = stats.summary({
    mode: mode.kind,
    qos: config.qos,
    meters: fleet.meters.length,
    devices: devices.length,
    readingsAcked: ledger.readings,
    invalidSent: ledger.invalidSent,
    duplicatesSent: ledger.duplicatesSent,
    faults: totalFaultCounts(devices),
  });
  const interrupted = io.stop.aborted || io.abort.aborted;
  return { summary, ledger, exitCode: stats.failed > 0 || gaveUp.length > 0 ? 2 : interrupted ? 130 : 0 };
}

/** Live mode: publishes each interval when it ends on the simulated clock, until a stop condition. */
async function runLiveClock(
  devices: SimulatedDevice[],
  config: SimulatorConfig,
  io: SimulationIo,
  clock: SimulatedClock,
  onInterval: (intervalEnd: number) => void,
): Promise<void> {
  if (config.mode.kind !== 'live') return;
  const { stopAtMs, durationMs } = config.mode;
  const intervalMs = config.intervalSeconds * 1000;
  const stopped = new AbortController();
  const stop = () => stopped.abort();
  const durationTimer = durationMs === null ? null : setTimeout(stop, durationMs);
  io.stop.addEventListener('abort', stop, { once: true });
  io.abort.addEventListener('abort', stop, { once: true });
  try {
    for (let intervalStart = alignDown(clock.startMs, config.intervalSeconds); ; intervalStart += intervalMs) {
      const intervalEnd = intervalStart + intervalMs;
      if (stopAtMs !== null && intervalEnd > stopAtMs) return;
      try {
        await sleep(clock.realDelayUntil(intervalEnd), undefined, { signal: stopped.signal });
      } catch {
        return; // stopped
      }
      collectInterval(devices, intervalStart);
      onInterval(intervalEnd);
    }
  } finally {
    if (durationTimer) clearTimeout(durationTimer);
    io.stop.removeEventListener('abort', stop);
    io.abort.removeEventListener('abort', stop);
  }
}

function sessionEvents(config: SimulatorConfig, stats: RunStats, ledger: Ledger, io: SimulationIo): SessionEvents {
  let connectErrorsLogged = 0;
  return {
    published(message, isResend) {
      if (isResend) {
        stats.resent++;
      } else {
        stats.sent++;
        stats.readingsSent += message.items.length;
      }
    },
    settled(message, latencyMs) {
      if (config.qos === 1) {
        stats.acked++;
        stats.latency.add(latencyMs);
      } else {
        stats.settledAtQos0++;
      }
      ledger.record(message.items);
    },
    failed(messages) {
      stats.failed += messages.length;
    },
    connected(_device, isReconnect) {
      stats.connected++;
      if (isReconnect) stats.reconnects++;
    },
    connectionLost() {
      stats.connected--;
    },
    ackTimedOut() {
      stats.ackTimeouts++;
    },
    disconnected() {
      stats.connected--;
    },
    connectFailed(device, error) {
      stats.connectFailures++;
      if (connectErrorsLogged++ < 5) io.log(`${device.id}: cannot connect to ${config.brokerUrl}: ${error.message}`);
      else if (connectErrorsLogged === 6) io.log('(further connection errors are counted, not logged)');
    },
  };
}

function warnAboutFutureReadings(config: SimulatorConfig, io: SimulationIo, liveStartMs: number): void {
  const horizon = io.now() + FUTURE_TOLERANCE_MS;
  const mode = config.mode;
  if (mode.kind === 'backfill' && mode.toMs > horizon) {
    io.log(`warning: --to is in the future; the gateway quarantines readings starting after ${isoSeconds(horizon)} as "future"`);
  }
  if (mode.kind === 'live' && mode.speed > 1 && (mode.stopAtMs ?? Infinity) > horizon) {
    const secondsAhead = (horizon - liveStartMs) / mode.speed / 1000;
    io.log(
      `warning: at --speed ${mode.speed} the simulated clock passes the gateway's clock ` +
        `${secondsAhead > 0 ? `after about ${Math.round(secondsAhead)} s` : 'at once'}; ` +
        'later readings are quarantined as "future" (use --start in the past)',
    );
  }
}
