/**
 * The devices of a run: one per meter (`--concentrators 0`) or one per concentrator, each with its
 * reading source, fault injector, message packer and MQTT session.
 */
import type { SimulatorConfig } from '../config.js';
import { DeviceFeed, IteratorSource, QueueSource, type ReadingSource } from '../delivery/device-feed.js';
import { MessagePacker, readingsTopic, type DeviceIdentity } from '../delivery/message.js';
import { DeviceSession, type SessionOptions } from '../delivery/device-session.js';
import {
  emptyFaultCounts,
  FaultInjector,
  fleetReadings,
  readingAt,
  type FaultCounts,
  type Fleet,
  type MeterSpec,
} from '../generator/index.js';
import { deviceSecret } from '../provision/secrets.js';
import type { Reading } from '../../common/reading.js';

export interface SimulatedDevice {
  identity: DeviceIdentity;
  meters: MeterSpec[];
  injector: FaultInjector;
  feed: DeviceFeed;
  session: DeviceSession;
  /** Live mode: where the readings of each ended interval are appended. Null in backfill. */
  liveSource: QueueSource | null;
}

export function createDevices(
  fleet: Fleet,
  config: SimulatorConfig,
  secretKey: string,
  sessionOptions: SessionOptions,
): SimulatedDevice[] {
  const metersById = new Map(fleet.meters.map((meter) => [meter.id, meter]));
  const groups: Array<{ identity: DeviceIdentity; meters: MeterSpec[] }> =
    config.concentrators > 0
      ? fleet.concentrators.map((concentrator) => ({
          identity: { kind: 'concentrator', id: concentrator.id, password: deviceSecret(secretKey, concentrator.id) },
          meters: concentrator.meterIds.map((id) => metersById.get(id)!),
        }))
      : fleet.meters.map((meter) => ({
          identity: { kind: 'meter', id: meter.id, password: deviceSecret(secretKey, meter.id) },
          meters: [meter],
        }));

  return groups.map(({ identity, meters }) => {
    let source: ReadingSource;
    let liveSource: QueueSource | null = null;
    if (config.mode.kind === 'backfill') {
      source = new IteratorSource(fleetReadings(meters, config.mode.fromMs, config.mode.toMs));
    } else {
      liveSource = new QueueSource();
      source = liveSource;
    }
    const injector = new FaultInjector(config.faults, config.seed);
    const packer = new MessagePacker(readingsTopic(identity), {
      batch: config.batch,
      maxPayloadBytes: config.maxPayloadBytes,
      bareSingleReading: identity.kind === 'meter' && config.batch === 1,
    });
    const feed = new DeviceFeed(source, injector, packer);
    const session = new DeviceSession(identity, feed, sessionOptions);
    return { identity, meters, injector, feed, session, liveSource };
  });
}

/** Live mode: the interval starting at `intervalStart` has ended; every device collects its readings. */
export function collectInterval(devices: readonly SimulatedDevice[], intervalStart: number): void {
  for (const device of devices) {
    const readings: Reading[] = device.meters.map((meter) => readingAt(meter, intervalStart));
    device.liveSource!.append(readings);
    device.session.notify();
  }
}

/** Live mode: no more intervals; devices deliver what they hold (late readings included), then finish. */
export function endLiveSources(devices: readonly SimulatedDevice[]): void {
  for (const device of devices) {
    device.liveSource?.end();
    device.session.notify();
  }
}

/** What the fault injectors of all devices did. */
export function totalFaultCounts(devices: readonly SimulatedDevice[]): FaultCounts {
  const total = emptyFaultCounts();
  for (const device of devices) {
    for (const key of Object.keys(total) as Array<keyof FaultCounts>) total[key] += device.injector.counts[key];
  }
  return total;
}
