/**
 * MQTT messages of the contract (section 2): topics, and payloads packed from outgoing items.
 */
import { MAX_READINGS_PER_MESSAGE } from '../../common/reading.js';
import type { OutgoingItem } from '../generator/index.js';

/** Default payload cap of the gateway: 256 KiB. */
export const MAX_PAYLOAD_BYTES = 256 * 1024;

export type DeviceKind = 'meter' | 'concentrator';

/** A device that publishes: a meter connecting itself or a concentrator. */
export interface DeviceIdentity {
  kind: DeviceKind;
  id: string;
  /** Its MQTT password (the secret it was provisioned with). */
  password: string;
}

export function readingsTopic(device: Pick<DeviceIdentity, 'kind' | 'id'>): string {
  return device.kind === 'meter' ? `meters/${device.id}/readings` : `concentrators/${device.id}/readings`;
}

/** One PUBLISH and what it carries. */
export interface OutboundMessage {
  /** Order of creation within its device: resends go out in this order. */
  seq: number;
  topic: string;
  payload: Buffer;
  items: OutgoingItem[];
  /** Publishes so far (1 after the first, more after reconnections). */
  attempts: number;
  /** `performance.now()` of the latest publish, for the acknowledgement latency. */
  publishedAt: number;
}

export interface PackingRules {
  /** Readings per message (1 to 10,000). */
  batch: number;
  /** A payload never exceeds this many bytes (unless one item alone does). */
  maxPayloadBytes: number;
  /** Publish a lone reading as a bare object (meter topic with `--batch 1`), else `{"readings":[...]}`. */
  bareSingleReading: boolean;
}

/**
 * Collects items into messages under the batch and size caps. An `invalid_json` item is always a message
 * of its own. Items arrive one at a time (`offer`); a full message comes out of `offer` or `flush`.
 */
export class MessagePacker {
  private items: OutgoingItem[] = [];
  private texts: string[] = [];
  private bytes = 0;
  private seq = 0;

  constructor(
    private readonly topic: string,
    private readonly rules: PackingRules,
  ) {
    if (rules.batch < 1 || rules.batch > MAX_READINGS_PER_MESSAGE) {
      throw new RangeError(`batch must be between 1 and ${MAX_READINGS_PER_MESSAGE}`);
    }
  }

  /** Adds an item; returns the messages it completed (0 to 2). */
  offer(item: OutgoingItem): OutboundMessage[] {
    const done: OutboundMessage[] = [];
    if (item.rawPayload !== null) {
      const previous = this.flush();
      if (previous) done.push(previous);
      done.push(this.message([item], Buffer.from(item.rawPayload, 'utf8')));
      return done;
    }
    const text = item.json!;
    const wrapperBytes = 16; // {"readings":[ ... ]} and a comma
    if (this.items.length > 0 && this.bytes + text.length + wrapperBytes > this.rules.maxPayloadBytes) {
      done.push(this.flush()!);
    }
    this.items.push(item);
    this.texts.push(text);
    this.bytes += text.length + 1;
    if (this.items.length >= this.rules.batch) done.push(this.flush()!);
    return done;
  }

  /** The message being filled, if it has any item. */
  flush(): OutboundMessage | null {
    if (this.items.length === 0) return null;
    const body =
      this.items.length === 1 && this.rules.bareSingleReading ? this.texts[0] : `{"readings":[${this.texts.join(',')}]}`;
    const message = this.message(this.items, Buffer.from(body, 'utf8'));
    this.items = [];
    this.texts = [];
    this.bytes = 0;
    return message;
  }

  get pendingItems(): number {
    return this.items.length;
  }

  private message(items: OutgoingItem[], payload: Buffer): OutboundMessage {
    return { seq: this.seq++, topic: this.topic, payload, items, attempts: 0, publishedAt: 0 };
  }
}
