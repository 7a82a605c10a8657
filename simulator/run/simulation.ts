/**
 * One run of the simulator: fleet, optional provisioning, devices, backfill or live schedule, ledger and
 * summary. All side effects come in through `SimulationIo` (logging, progress, wall clock, stop signals).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DateTime } from 'luxon';
import type { Reading } from '../../common/reading.js';
import type { SimulatorConfig } from '../config.js';
import { DEFAULT_BACKOFF } from '../delivery/backoff.js';
import type { SessionEvents, SessionOptions } from '../delivery/device-session.js';
import { RateLimiter } from '../delivery/rate-limiter.js';
import { Slots } from '../delivery/slots.js';
import { alignDown, alignUp, countIntervals, createFleet, formatFaultSpec } from '../generator/index.js';
import { ApiClient } from '../provision/api-client.js';
import { provisionFleet } from '../provision/provision.js';
import { secretKeyFor } from '../provision/secrets.js';
import { collectInterval, createDevices, endLiveSources, totalFaultCounts, type SimulatedDevice } from './devices.js';
import { reconcileWithApi, type ReconcileReport } from './api-reconcile.js';
import { BrokerRefusal, confirmStored, fetchServiceInfo, isAdvertised, preferredBroker } from './broker-check.js';
import { isoUtc } from '../../common/time.js';
import { Ledger } from './ledger.js';
import { billingMonths } from './net-metering.js';
import { reconcileNetMetering } from './net-metering-reconcile.js';
import { NET_METERING, periodAt } from '../provision/simulator-tariff.js';
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
  /** --reconcile: the ledger against the API; null without --reconcile. */
  reconcile: ReconcileReport | null;
  /**
   * 0: everything settled (and, with --reconcile, matched); 2: some messages failed or devices gave up;
   * 4: --reconcile found differences; 130: stopped by a signal. A broker that is not the API's throws a
   * `BrokerRefusal` instead (exit 3).
   */
  exitCode: number;
}

/** How the broker was checked: a reading found through the API, its address only, or not at all. */
export type BrokerCheck = 'stored' | 'address' | 'already-stored' | 'unverified';

/** Most simultaneous MQTT handshakes. */
const MAX_HANDSHAKES = 100;
/** After a stop request, how long in-flight messages may take before the run aborts. */
const DRAIN_TIMEOUT_MS = 30_000;
/** Acknowledged readings looked up through the API, at most, when each was stored before the run. */
const MAX_READINGS_CHECKED = 20;
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
    reactive: config.reactive,
    latitude: config.latitude,
    longitude: config.longitude,
  });
  const secretKey = secretKeyFor(config.seed, config.secretKey);
  const broker = await resolveBroker(config, io);
  if (config.provision) {
    await provisionFleet(fleet, {
      apiUrl: config.apiUrl,
      token: config.token!,
      tariffId: config.tariffId,
      tariffPlan: config.netMetering ? 'net-metering' : 'tou',
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
  // A net-metered backfill keeps each billing window's energy per tariff period, for its own account of the banks.
  const netMetering =
    config.netMetering && mode.kind === 'backfill'
      ? {
          rules: { timezone: config.timezone, trueUpMonth: NET_METERING.trueUpMonth, periods: ['p0', 'p1'] },
          periods: { windows: billingMonths(config.timezone, mode.fromMs, mode.toMs), periodOf: (ms: number) => periodAt(config.timezone, ms) },
        }
      : null;
  const ledger = new Ledger(fleet.meters.map((m) => m.id), firstIntervalStart, intervalMs, window, netMetering?.periods ?? null, config.reactive);
  const stats = new RunStats();
  warnAboutFutureReadings(config, io, liveStartMs);
  warnAboutLocalTime(config, io);

  const halt = new AbortController(); // the broker was refused: stop everything at once
  let refusal: BrokerRefusal | null = null;
  let brokerCheck: BrokerCheck = broker.check === 'stored' ? 'unverified' : broker.check;
  let storedCheck: Promise<void> | null = null;
  let readingsChecked = 0;
  const api = config.token && !config.bareBroker ? new ApiClient(config.apiUrl, config.token) : null;
  // The first acknowledged valid reading is looked up through the API. One stored before this run (a
  // re-run of the same window) proves nothing: the next acknowledged reading is tried, up to a limit.
  const onValidReading =
    broker.check === 'stored' && api
      ? (reading: Reading, deviceId: string): boolean => {
          if (storedCheck) return false;
          readingsChecked++;
          storedCheck = confirmStored(api, reading, deviceId, {
            brokerUrl: broker.url,
            apiUrl: config.apiUrl,
            advertised: broker.advertised,
            runStartedMs: broker.runStartedMs,
            intervalMs,
          }).then(
            (found) => {
              if (found === 'delivered') {
                brokerCheck = 'stored';
                io.log(`broker ${broker.url} verified: a reading it acknowledged is in the API`);
                return;
              }
              if (readingsChecked < MAX_READINGS_CHECKED) {
                storedCheck = null; // try the next acknowledged reading
                return;
              }
              if (broker.listed) {
                brokerCheck = 'already-stored';
                io.log(`broker ${broker.url}: every reading checked was stored before this run; it is an address the API lists`);
                return;
              }
              throw notShownToDeliver(broker, config.apiUrl, readingsChecked);
            },
          ).catch((error: unknown) => {
            refusal = error instanceof BrokerRefusal ? error : new BrokerRefusal((error as Error).message);
            halt.abort();
          });
          return true;
        }
      : null;

  const sessionOptions: SessionOptions = {
    brokerUrl: broker.url,
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
    events: sessionEvents(config, broker.url, stats, ledger, io, onValidReading),
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
  let nextIntervalEndMs: number | null = null; // live: wall-clock instant the next interval completes
  const snapshot = (): ProgressSnapshot => ({
    collected: devices.reduce((sum, d) => sum + d.feed.readingsCollected, 0),
    total,
    readingsAcked: ledger.readings,
    messagesSent: stats.sent,
    messagesAcked: config.qos === 1 ? stats.acked : stats.settledAtQos0,
    connected: stats.connected,
    reconnects: stats.reconnects,
    clock: clockLabel,
    nextIntervalEndMs,
    ackLatencyMs: config.qos === 1 ? { p50: stats.latency.quantile(0.5), p99: stats.latency.quantile(0.99) } : null,
  });
  const progressTimer = setInterval(() => io.progress.update(snapshot()), 250);
  const ackSweeper = setInterval(
    () => devices.forEach((d) => d.session.checkAcknowledgements()),
    Math.min(1_000, config.ackTimeoutMs / 2),
  );

  const onAbort = () => devices.forEach((d) => d.session.abort());
  io.abort.addEventListener('abort', onAbort, { once: true });
  halt.signal.addEventListener('abort', onAbort, { once: true });
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
    await runLiveClock(devices, config, io, new SimulatedClock(liveStartMs, mode.speed, io.now), halt.signal, {
      waiting(intervalEnd, wallClockMs) {
        nextIntervalEndMs = wallClockMs;
        if (clockLabel === null) {
          io.log(
            `live: the first interval completes at ${isoUtc(intervalEnd)} simulated, ` +
              `in ${formatDuration(wallClockMs - io.now())} (${isoUtc(Math.round(wallClockMs / 1000) * 1000)} wall clock); readings are published then`,
          );
        }
      },
      completed(intervalEnd) {
        ledger.setWindow(firstIntervalStart, intervalEnd);
        clockLabel = isoUtc(intervalEnd);
      },
    });
    endLiveSources(devices);
  }
  const outcomes = await sessionsDone;
  while (storedCheck) {
    const pending: Promise<void> = storedCheck;
    await pending;
    if (storedCheck === pending) break;
  }
  if (!refusal && broker.check === 'stored' && brokerCheck === 'unverified' && readingsChecked > 0 && !broker.listed) {
    refusal = notShownToDeliver(broker, config.apiUrl, readingsChecked);
  }
  clearInterval(progressTimer);
  clearInterval(ackSweeper);
  io.abort.removeEventListener('abort', onAbort);
  halt.signal.removeEventListener('abort', onAbort);
  io.stop.removeEventListener('abort', onStop);
  stats.stop();
  nextIntervalEndMs = null;
  io.progress.stop(snapshot());
  if (refusal) throw refusal;

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
    broker: broker.url,
    brokerCheck,
  });
  let reconcile: ReconcileReport | null = null;
  if (config.reconcile && api) {
    io.log(`reconciling the ledger of ${fleet.meters.length} meters with ${config.apiUrl}`);
    reconcile = await reconcileWithApi(ledger.toDocument(), api);
    if (netMetering) {
      io.log(`reconciling the kWh banks of ${fleet.meters.length} net-metered meters with the API's charges, window by window`);
      reconcile.netMetering = await reconcileNetMetering(ledger, fleet.meters.map((m) => m.id), netMetering.rules, api);
    }
  }
  const interrupted = io.stop.aborted || io.abort.aborted;
  const differs = reconcile !== null && (reconcile.differences.length > 0 || (reconcile.netMetering?.differences.length ?? 0) > 0);
  const exitCode = stats.failed > 0 || gaveUp.length > 0 ? 2 : differs ? 4 : interrupted ? 130 : 0;
  return { summary, ledger, reconcile, exitCode };
}

/** A broker not listed by the API whose acknowledged readings were all in the API before this run. */
function notShownToDeliver(broker: { url: string; advertised: string[] }, apiUrl: string, checked: number): BrokerRefusal {
  return new BrokerRefusal(
    `the broker at ${broker.url} is not among the addresses the API at ${apiUrl} serves (${broker.advertised.join(', ')}), ` +
      `and the ${checked === 1 ? 'reading' : `${checked} readings`} it acknowledged that ${checked === 1 ? 'was' : 'were'} checked ` +
      `${checked === 1 ? 'was' : 'were all'} stored before this run, so nothing shows that it delivers to the API: leave out --broker to use the API's`,
  );
}

/**
 * The broker to publish to and how it will be checked (see broker-check.ts): --bare-broker trusts the
 * given broker; otherwise the API's `GET /v1` names its broker, and an explicit --broker must be among its
 * addresses (without a token) or prove itself with the first acknowledged reading (with a token).
 */
async function resolveBroker(
  config: SimulatorConfig,
  io: SimulationIo,
): Promise<{ url: string; check: BrokerCheck; advertised: string[]; listed: boolean; runStartedMs: number }> {
  if (config.bareBroker) {
    io.log(`--bare-broker: publishing to ${config.brokerUrl} without an API; acknowledgements are the broker's alone, nothing checks that a gateway stored them`);
    return { url: config.brokerUrl!, check: 'unverified', advertised: [], listed: false, runStartedMs: io.now() };
  }
  const info = await fetchServiceInfo(config.apiUrl);
  const advertised = info.mqtt.urls;
  // The run's start by the API's clock (its Date header has whole seconds): what is received from now on.
  const runStartedMs = (info.serverTimeMs ?? io.now()) - 1000;
  if (config.brokerUrl === null) {
    const url = preferredBroker(advertised);
    if (!url) throw new BrokerRefusal(`the API at ${config.apiUrl} lists no MQTT broker address (GET /v1): give --broker`);
    io.log(`broker ${url}, as the API at ${config.apiUrl} serves (GET /v1)`);
    return { url, check: config.token ? 'stored' : 'address', advertised, listed: true, runStartedMs };
  }
  const listed = await isAdvertised(config.brokerUrl, advertised);
  if (!config.token) {
    if (!listed) {
      throw new BrokerRefusal(
        `--broker ${config.brokerUrl} is not the broker of the API at ${config.apiUrl}, which serves ${advertised.join(', ') || 'no broker'}: ` +
          'leave out --broker to use the API\'s, give --token to let the simulator check by data, or --bare-broker to publish unverified',
      );
    }
    return { url: config.brokerUrl, check: 'address', advertised, listed, runStartedMs };
  }
  if (!listed) io.log(`--broker ${config.brokerUrl} is not among the addresses the API lists (${advertised.join(', ')}); checking that it delivers to the API`);
  return { url: config.brokerUrl, check: 'stored', advertised, listed, runStartedMs };
}

/** Live mode: publishes each interval when it ends on the simulated clock, until a stop condition. */
async function runLiveClock(
  devices: SimulatedDevice[],
  config: SimulatorConfig,
  io: SimulationIo,
  clock: SimulatedClock,
  halt: AbortSignal,
  on: { waiting(intervalEnd: number, wallClockMs: number): void; completed(intervalEnd: number): void },
): Promise<void> {
  if (config.mode.kind !== 'live') return;
  const { stopAtMs, durationMs } = config.mode;
  const intervalMs = config.intervalSeconds * 1000;
  const stopped = new AbortController();
  const stop = () => stopped.abort();
  const durationTimer = durationMs === null ? null : setTimeout(stop, durationMs);
  io.stop.addEventListener('abort', stop, { once: true });
  io.abort.addEventListener('abort', stop, { once: true });
  halt.addEventListener('abort', stop, { once: true });
  try {
    for (let intervalStart = alignDown(clock.startMs, config.intervalSeconds); ; intervalStart += intervalMs) {
      const intervalEnd = intervalStart + intervalMs;
      if (stopAtMs !== null && intervalEnd > stopAtMs) return;
      const delay = clock.realDelayUntil(intervalEnd);
      on.waiting(intervalEnd, io.now() + delay);
      try {
        await sleep(delay, undefined, { signal: stopped.signal });
      } catch {
        return; // stopped
      }
      collectInterval(devices, intervalStart);
      on.completed(intervalEnd);
    }
  } finally {
    if (durationTimer) clearTimeout(durationTimer);
    io.stop.removeEventListener('abort', stop);
    io.abort.removeEventListener('abort', stop);
    halt.removeEventListener('abort', stop);
  }
}

function sessionEvents(
  config: SimulatorConfig,
  brokerUrl: string,
  stats: RunStats,
  ledger: Ledger,
  io: SimulationIo,
  onValidReading: ((reading: Reading, deviceId: string) => boolean) | null,
): SessionEvents {
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
      if (onValidReading) {
        const reading = message.items.find((item) => item.reading !== null && item.kind === 'reading')?.reading;
        if (reading) onValidReading(reading, message.topic.split('/')[1]!);
      }
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
      if (connectErrorsLogged++ < 5) io.log(`${device.id}: cannot connect to ${brokerUrl}: ${error.message}`);
      else if (connectErrorsLogged === 6) io.log('(further connection errors are counted, not logged)');
    },
  };
}

/**
 * Accounts bill by local calendar: a backfill that starts at some other hour gives the first cycle a few
 * hours only. A bare date (`--from 2026-10-01`) is local midnight; an explicit instant is kept as given.
 */
function warnAboutLocalTime(config: SimulatorConfig, io: SimulationIo): void {
  if (config.mode.kind !== 'backfill') return;
  const local = DateTime.fromMillis(config.mode.fromMs, { zone: config.timezone });
  if (+local === +local.startOf('day')) return;
  const day = local.plus({ days: 1 }).toISODate();
  io.log(
    `note: --from ${isoUtc(config.mode.fromMs)} is ${local.toFormat('yyyy-MM-dd HH:mm')} in ${config.timezone}, not local midnight: ` +
      `the accounts' first cycle starts with ${formatDuration(+local.plus({ days: 1 }).startOf('day') - +local)} of data; --from ${day} starts at local midnight`,
  );
}

/** `14 min 32 s`, `3 h 5 min`, `850 ms`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  return `${Math.floor(s / 3600)} h${Math.floor((s % 3600) / 60) ? ` ${Math.floor((s % 3600) / 60)} min` : ''}`;
}

function warnAboutFutureReadings(config: SimulatorConfig, io: SimulationIo, liveStartMs: number): void {
  const horizon = io.now() + FUTURE_TOLERANCE_MS;
  const mode = config.mode;
  if (mode.kind === 'backfill' && mode.toMs > horizon) {
    io.log(`warning: --to is in the future; the gateway quarantines readings starting after ${isoUtc(horizon)} as "future"`);
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
