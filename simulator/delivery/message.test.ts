import { describe, expect, it } from 'vitest';
import { readingSchema } from '../../common/reading.js';
import { createFleet, FaultInjector, fleetReadings, NO_FAULTS, parseFaultSpec, type OutgoingItem } from '../generator/index.js';
import { MessagePacker, readingsTopic, type OutboundMessage } from './message.js';

const fleet = createFleet({ meters: 5, seed: 'pack' });
const from = Date.parse('2025-05-01T00:00:00Z');

function items(spec = NO_FAULTS, hours = 24): OutgoingItem[] {
  const injector = new FaultInjector(spec, 'pack');
  for (const reading of fleetReadings(fleet.meters, from, from + hours * 3_600_000)) injector.push(reading);
  injector.end();
  const out: OutgoingItem[] = [];
  for (let item = injector.take(); item; item = injector.take()) out.push(item);
  return out;
}

function pack(packer: MessagePacker, all: OutgoingItem[]): OutboundMessage[] {
  const messages = all.flatMap((item) => packer.offer(item));
  const last = packer.flush();
  return last ? [...messages, last] : messages;
}

describe('MessagePacker', () => {
  it('names the contract topics', () => {
    expect(readingsTopic({ kind: 'meter', id: 'MTR-000001' })).toBe('meters/MTR-000001/readings');
    expect(readingsTopic({ kind: 'concentrator', id: 'DCU-0001' })).toBe('concentrators/DCU-0001/readings');
  });

  it('packs up to `batch` readings as {"readings": [...]}, every reading valid and in order', () => {
    const all = items();
    const messages = pack(new MessagePacker('concentrators/DCU-0001/readings', { batch: 7, maxPayloadBytes: 262_144, bareSingleReading: false }), all);
    expect(messages.map((m) => m.items.length)).toEqual([...Array(Math.floor(all.length / 7)).fill(7), ...(all.length % 7 ? [all.length % 7] : [])]);
    const sent = messages.flatMap((m) => (JSON.parse(m.payload.toString()) as { readings: unknown[] }).readings);
    expect(sent.map((r) => readingSchema.parse(r).intervalStart)).toEqual(all.map((i) => JSON.parse(i.json!).intervalStart));
    expect(messages.map((m) => m.seq)).toEqual(messages.map((_, i) => i));
  });

  it('keeps payloads under the byte cap', () => {
    const messages = pack(new MessagePacker('t', { batch: 10_000, maxPayloadBytes: 2_000, bareSingleReading: false }), items());
    expect(messages.length).toBeGreaterThan(10);
    for (const message of messages) expect(message.payload.length).toBeLessThanOrEqual(2_000);
  });

  it('sends a lone reading as a bare object on a meter topic with batch 1', () => {
    const [message] = pack(new MessagePacker('meters/MTR-000001/readings', { batch: 1, maxPayloadBytes: 262_144, bareSingleReading: true }), items().slice(0, 1));
    expect(readingSchema.parse(JSON.parse(message.payload.toString())).meterId).toBe('MTR-000001');
  });

  it('sends an invalid_json item as a message of its own', () => {
    const all = items(parseFaultSpec('invalid=0.5'), 48);
    const messages = pack(new MessagePacker('t', { batch: 50, maxPayloadBytes: 262_144, bareSingleReading: false }), all);
    const broken = messages.filter((m) => m.items.some((i) => i.invalidKind === 'invalid_json'));
    expect(broken.length).toBeGreaterThan(0);
    for (const message of broken) {
      expect(message.items.length).toBe(1);
      expect(() => JSON.parse(message.payload.toString())).toThrow();
    }
    expect(messages.reduce((n, m) => n + m.items.length, 0)).toBe(all.length);
  });
});
