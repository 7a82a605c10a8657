/**
 * Command-line options: commander declares and documents them, one zod schema validates them all at
 * once (every problem listed), and the result is a typed `SimulatorConfig` passed down.
 */
import { Command, Option } from 'commander';
import { DateTime } from 'luxon';
import { z } from 'zod';
import { INTERVAL_SECONDS, MAX_READINGS_PER_MESSAGE, parseInstant, type IntervalSeconds } from '../common/reading.js';
import { FLEET_PROFILES, alignDown, parseFaultSpec, FaultSpecError, type FaultSpec, type FleetProfile } from './generator/index.js';
import { wallClock } from './generator/wall-clock.js';
import { MAX_PAYLOAD_BYTES } from './delivery/message.js';

/** Backfill: every interval of [fromMs, toMs), as fast as acknowledgements allow, then exit. */
export interface BackfillMode {
  kind: 'backfill';
  fromMs: number;
  toMs: number;
}

/** Live: each interval published when it ends on a simulated clock running `speed` times real time. */
export interface LiveMode {
  kind: 'live';
  /** Simulated time at start, epoch ms; null: the wall clock at start. */
  startMs: number | null;
  speed: number;
  /** Stop once the simulated clock reaches this instant; null: no limit. */
  stopAtMs: number | null;
  /** Stop after this much wall-clock time, ms; null: no limit. */
  durationMs: number | null;
}

export interface SimulatorConfig {
  /** The broker given with --broker; null: the one the API serves (GET /v1). */
  brokerUrl: string | null;
  /** --bare-broker: no API at all; acknowledgements are the broker's alone, nothing is verified. */
  bareBroker: boolean;
  apiUrl: string;
  /** Admin bearer token for provisioning. */
  token: string | null;
  provision: boolean;
  /** Existing tariff given to the meters at provisioning; null: the simulator creates its own. */
  tariffId: string | null;
  /**
   * The simulator's net-metering tariff (`sim-nem-residential-v1`) instead of its net-billing one: given at
   * --provision, and --reconcile then also checks the kWh banks of every billing window. Default: on for
   * --profile residential-solar. False with --tariff.
   */
  netMetering: boolean;
  /** Every meter registers reactive energy (reactive import from its power factor). Default: on for --profile commercial. */
  reactive: boolean;
  /** HMAC key of the device secrets; null: derived from the seed. */
  secretKey: string | null;
  meters: number;
  concentrators: number;
  intervalSeconds: IntervalSeconds;
  /** Readings per message. */
  batch: number;
  qos: 0 | 1;
  /** Messages per second for the whole process; null: no cap. */
  rate: number | null;
  /** Simultaneous MQTT connections; devices beyond wait for a free one. */
  connections: number;
  /** Unacknowledged messages per device. */
  inflight: number;
  mode: BackfillMode | LiveMode;
  profile: FleetProfile;
  seed: string;
  timezone: string;
  latitude: number | undefined;
  longitude: number | undefined;
  idPrefix: string;
  faults: FaultSpec;
  ledgerPath: string | null;
  /** At the end, compare the ledger with what the API stored; any difference exits 4. */
  reconcile: boolean;
  json: boolean;
  giveUpAfterMs: number;
  /** QoS 1: reconnect and resend when an acknowledgement takes longer than this, ms. */
  ackTimeoutMs: number;
  maxPayloadBytes: number;
}

export function buildProgram(): Command {
  return new Command('simulate')
    .description('Simulate a fleet of smart meters publishing interval readings over MQTT (see simulator/README.md).')
    .option('--broker <url>', 'MQTT broker (mqtt://, mqtts://, ws://); default: the broker the API serves (GET /v1)')
    .option('--api <url>', 'billing REST API: where the broker is learned, and what is provisioned and verified', 'http://localhost:3000')
    .option('--bare-broker', 'no billing API: publish to --broker and trust its acknowledgements (nothing verified)', false)
    .addOption(new Option('--token <token>', 'admin bearer token for --provision').env('BILLING_ADMIN_TOKEN'))
    .option('--provision', 'create tariff, accounts, meters and concentrators first (idempotent)', false)
    .option('--tariff <id>', 'existing tariff to give the meters at --provision (default: create the simulator tariff)')
    .option('--net-metering', "the simulator's net-metering tariff (kWh bank, true-up in December); default for --profile residential-solar")
    .option('--no-net-metering', "the simulator's net-billing tariff, also for --profile residential-solar")
    .option('--reactive', 'every meter sends reactive energy from its power factor (0.85-0.98); default for --profile commercial')
    .option('--no-reactive', 'no reactive energy, also for --profile commercial')
    .option('--secret-key <key>', 'HMAC key deriving each device secret (default: derived from --seed)')
    .option('--meters <n>', 'number of meters', '10')
    .option('--concentrators <k>', '0: each meter connects itself; K: meters spread over K concentrators', '0')
    .option('--interval <seconds>', `interval length (${INTERVAL_SECONDS.join(', ')})`, '900')
    .option('--batch <b>', 'readings per message (default: 1 for meters, 100 for concentrators)')
    .addOption(new Option('--qos <qos>', 'MQTT QoS of readings').choices(['0', '1']).default('1'))
    .option('--rate <r>', 'cap on messages per second for the whole process')
    .option('--connections <c>', 'simultaneous MQTT connections (default: one per device)')
    .option('--inflight <n>', 'unacknowledged messages per device', '8')
    .option('--from <iso>', 'backfill from this instant (with offset), or date (local midnight in --timezone), inclusive')
    .option('--to <iso>', 'backfill: until this instant or date, exclusive (default now); live: stop there')
    .option('--start <iso>', 'live: simulated clock at start, instant or date (default now)')
    .option('--speed <x>', 'live: simulated seconds per real second', '1')
    .option('--duration <seconds>', 'live: stop after this many wall-clock seconds')
    .addOption(new Option('--profile <profile>', 'load profile').choices([...FLEET_PROFILES]).default('mixed'))
    .option('--seed <seed>', 'same seed, same fleet, readings and faults', '1')
    .option('--timezone <iana>', 'time zone of the meters', 'America/New_York')
    .option('--latitude <deg>', 'site latitude, for daylight and seasons (default 40.7)')
    .option('--longitude <deg>', 'site longitude (default: centre of the time zone)')
    .option('--id-prefix <prefix>', 'prefix of every id (meters <prefix>MTR-000001)', '')
    .option('--faults <spec>', 'duplicate=p,reorder=p,invalid=p,gap=p,late=p,conflict=p', '')
    .option('--ledger <file>', 'write what was acknowledged as valid to this JSON file')
    .option('--reconcile', 'at the end, compare the ledger with the readings the API stored; exit 4 on any difference', false)
    .option('--json', 'print the final summary as one JSON line', false)
    .option('--give-up <seconds>', 'a device unable to connect for this long gives up', '120')
    .option('--ack-timeout <seconds>', 'QoS 1: reconnect and resend when a PUBACK takes longer', '30')
    .option('--max-payload-bytes <n>', 'payload size cap', String(MAX_PAYLOAD_BYTES))
    .showHelpAfterError();
}

const integer = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number({ message: 'must be a number' }).int('must be an integer').min(min).max(max);
const positive = z.coerce.number({ message: 'must be a number' }).positive('must be > 0').finite();
/** An instant with Z or an offset, or a bare date (`2026-10-01`): midnight of that day in `zone`. */
const instant = z.string().refine((text) => BARE_DATE.test(text) || parseInstant(text) !== null, {
  error: (issue) => `"${String(issue.input)}" is neither an ISO 8601 instant with Z or an offset nor a date YYYY-MM-DD`,
});
const BARE_DATE = /^\d{4}-\d{2}-\d{2}$/;

/** Epoch ms of an instant, or of local midnight in `zone` for a bare date; null when the date does not exist. */
export function instantIn(text: string, zone: string): number | null {
  if (!BARE_DATE.test(text)) return parseInstant(text);
  const local = DateTime.fromISO(text, { zone });
  return local.isValid ? local.toMillis() : null;
}

const rawSchema = z.object({
  broker: z.string().regex(/^(mqtts?|wss?|tcp):\/\//, 'must be an mqtt://, mqtts://, ws:// or wss:// URL').optional(),
  bareBroker: z.boolean(),
  api: z.url('must be a URL'),
  token: z.string().optional().transform((token) => token || undefined), // an empty variable is no token
  provision: z.boolean(),
  tariff: z.string().min(1).optional(),
  netMetering: z.boolean().optional(),
  reactive: z.boolean().optional(),
  secretKey: z.string().min(1).optional(),
  meters: integer(1, 1_000_000),
  concentrators: integer(0, 100_000),
  interval: z.coerce
    .number()
    .refine((v) => (INTERVAL_SECONDS as readonly number[]).includes(v), `must be one of ${INTERVAL_SECONDS.join(', ')}`),
  batch: integer(1, MAX_READINGS_PER_MESSAGE).optional(),
  qos: z.enum(['0', '1']),
  rate: positive.optional(),
  connections: integer(1).optional(),
  inflight: integer(1, 65_535),
  from: instant.optional(),
  to: instant.optional(),
  start: instant.optional(),
  speed: positive,
  duration: positive.optional(),
  profile: z.enum(FLEET_PROFILES),
  seed: z.string().min(1),
  timezone: z.string().refine(isZone, 'unknown IANA time zone'),
  latitude: z.coerce.number().min(-89).max(89).optional(),
  longitude: z.coerce.number().min(-180).max(180).optional(),
  idPrefix: z.string().regex(/^[A-Za-z0-9._-]{0,40}$/, 'letters, digits, ".", "_", "-" only (at most 40)'),
  faults: z.string(),
  ledger: z.string().min(1).optional(),
  reconcile: z.boolean(),
  json: z.boolean(),
  giveUp: positive,
  ackTimeout: positive,
  maxPayloadBytes: integer(1024),
});

export type ParseResult = { config: SimulatorConfig } | { errors: string[] };

/** Validates commander's option values; `now` is the wall clock for a default `--to`. */
export function toConfig(options: Record<string, unknown>, now = Date.now()): ParseResult {
  const parsed = rawSchema.safeParse(options);
  const errors: string[] = parsed.success
    ? []
    : parsed.error.issues.map((issue) => `--${kebab(String(issue.path[0]))}: ${issue.message}`);
  let faults: FaultSpec | null = null;
  try {
    faults = parseFaultSpec(String(options.faults ?? ''));
  } catch (error) {
    if (!(error instanceof FaultSpecError)) throw error;
    errors.push(...error.problems.map((problem) => `--faults: ${problem}`));
  }
  if (!parsed.success || !faults) return { errors };
  const o = parsed.data;
  const intervalSeconds = o.interval as IntervalSeconds;

  if (o.provision && !o.token) errors.push('--provision needs --token (or BILLING_ADMIN_TOKEN)');
  if (o.tariff && !o.provision) errors.push('--tariff is only used with --provision');
  if (o.tariff && o.netMetering) errors.push("--net-metering chooses the simulator's own tariff; it cannot be combined with --tariff");
  if (o.bareBroker) {
    if (!o.broker) errors.push('--bare-broker needs --broker');
    if (o.provision) errors.push('--bare-broker cannot be combined with --provision (it uses no API)');
    if (o.reconcile) errors.push('--bare-broker cannot be combined with --reconcile (it uses no API)');
  }
  if (o.reconcile && !o.token) errors.push('--reconcile needs --token (or BILLING_ADMIN_TOKEN) to read the stored readings');
  if (o.reconcile && o.qos !== '1') errors.push('--reconcile needs --qos 1: at QoS 0 nothing proves what the gateway received');
  const at = (option: 'from' | 'to' | 'start'): number | undefined => {
    const text = o[option];
    if (text === undefined) return undefined;
    const ms = instantIn(text, o.timezone);
    if (ms === null) errors.push(`--${option}: "${text}" does not exist in ${o.timezone}`);
    return ms ?? 0;
  };
  const times = { from: at('from'), to: at('to'), start: at('start') };
  let mode: BackfillMode | LiveMode;
  if (times.from !== undefined) {
    for (const liveOnly of ['start', 'duration'] as const) {
      if (o[liveOnly] !== undefined) errors.push(`--${liveOnly} is for live mode; it cannot be combined with --from`);
    }
    if (options.speed !== '1' && options.speed !== undefined) {
      errors.push('--speed is for live mode; it cannot be combined with --from');
    }
    const toMs = times.to ?? alignDown(now, intervalSeconds);
    if (toMs <= times.from) errors.push('--to must be after --from');
    mode = { kind: 'backfill', fromMs: times.from, toMs };
  } else {
    if (times.to !== undefined && times.start !== undefined && times.to <= times.start) errors.push('--to must be after --start');
    mode = {
      kind: 'live',
      startMs: times.start ?? null,
      speed: o.speed,
      stopAtMs: times.to ?? null,
      durationMs: o.duration === undefined ? null : o.duration * 1000,
    };
  }
  if (o.concentrators > o.meters) errors.push('--concentrators cannot exceed --meters');
  if (errors.length > 0) return { errors };

  const devices = o.concentrators > 0 ? o.concentrators : o.meters;
  return {
    config: {
      brokerUrl: o.broker ?? null,
      bareBroker: o.bareBroker,
      apiUrl: o.api.replace(/\/+$/, ''),
      token: o.token ?? null,
      provision: o.provision,
      tariffId: o.tariff ?? null,
      netMetering: o.tariff ? false : (o.netMetering ?? o.profile === 'residential-solar'),
      reactive: o.reactive ?? o.profile === 'commercial',
      secretKey: o.secretKey ?? null,
      meters: o.meters,
      concentrators: o.concentrators,
      intervalSeconds,
      batch: o.batch ?? (o.concentrators > 0 ? 100 : 1),
      qos: o.qos === '1' ? 1 : 0,
      rate: o.rate ?? null,
      connections: Math.min(o.connections ?? devices, devices),
      inflight: o.inflight,
      mode,
      profile: o.profile,
      seed: o.seed,
      timezone: o.timezone,
      latitude: o.latitude,
      longitude: o.longitude,
      idPrefix: o.idPrefix,
      faults,
      ledgerPath: o.ledger ?? null,
      reconcile: o.reconcile,
      json: o.json,
      giveUpAfterMs: o.giveUp * 1000,
      ackTimeoutMs: o.ackTimeout * 1000,
      maxPayloadBytes: o.maxPayloadBytes,
    },
  };
}

/** Parses a full argv (`process.argv`). Commander itself exits on unknown options and on --help. */
export function parseArguments(argv: readonly string[], now = Date.now()): ParseResult {
  const program = buildProgram();
  program.parse(argv as string[]);
  return toConfig(program.opts(), now);
}

function isZone(name: string): boolean {
  try {
    wallClock(name);
    return true;
  } catch {
    return false;
  }
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
