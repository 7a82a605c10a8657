/**
 * Topic rules of contract section 2. A device publishes only to its own readings topic and subscribes only
 * under its own tree.
 */
import { DEVICE_ID_PATTERN } from '../common/reading.js';

export type DeviceKind = 'meter' | 'concentrator';

export interface Device {
  id: string;
  kind: DeviceKind;
}

export interface ReadingsTopic {
  kind: DeviceKind;
  deviceId: string;
}

const PREFIX: Record<string, DeviceKind> = { meters: 'meter', concentrators: 'concentrator' };
const TREE: Record<DeviceKind, string> = { meter: 'meters', concentrator: 'concentrators' };

/** `meters/{meterId}/readings` or `concentrators/{concentratorId}/readings`; anything else is null. */
export function parseReadingsTopic(topic: string): ReadingsTopic | null {
  const parts = topic.split('/');
  if (parts.length !== 3 || parts[2] !== 'readings') return null;
  const kind = PREFIX[parts[0]];
  if (!kind || !DEVICE_ID_PATTERN.test(parts[1])) return null;
  return { kind, deviceId: parts[1] };
}

export function readingsTopicOf(device: Device): string {
  return `${TREE[device.kind]}/${device.id}/readings`;
}

/** Why `device` may not publish on `topic`, or null when it may. */
export function publishRefusal(device: Device, topic: string): string | null {
  const parsed = parseReadingsTopic(topic);
  if (!parsed) return 'not a readings topic';
  if (parsed.kind !== device.kind || parsed.deviceId !== device.id) return "another device's topic";
  return null;
}

/** A device may subscribe only under `meters/{ownId}/#` or `concentrators/{ownId}/#`. */
export function maySubscribe(device: Device, filter: string): boolean {
  const own = `${TREE[device.kind]}/${device.id}`;
  return filter === `${own}/#` || (filter.startsWith(`${own}/`) && !filter.startsWith('$'));
}
