import { describe, expect, it } from 'vitest';
import mqttPacket from 'mqtt-packet';
import { FrameSizeTracker, PacketTooLargeError } from './frame-guard.js';

const publish = (bytes: number) =>
  mqttPacket.generate({ cmd: 'publish', topic: 'meters/M/readings', payload: Buffer.alloc(bytes, 0x61), qos: 1, messageId: 1, retain: false, dup: false });

describe('FrameSizeTracker', () => {
  it('passes packets under the limit, split at any byte boundary', () => {
    const stream = Buffer.concat([publish(10), publish(300), mqttPacket.generate({ cmd: 'pingreq' }), publish(20_000)]);
    for (const size of [1, 2, 3, 7, 1000, stream.length]) {
      const tracker = new FrameSizeTracker(25_000);
      for (let i = 0; i < stream.length; i += size) tracker.feed(stream.subarray(i, i + size));
    }
  });

  it('stops at the header of a packet over the limit, before its body', () => {
    const tracker = new FrameSizeTracker(1000);
    tracker.feed(publish(500));
    const big = publish(5000);
    expect(() => tracker.feed(big.subarray(0, 3))).toThrow(PacketTooLargeError);
  });

  it('refuses a Remaining Length of more than four bytes', () => {
    const tracker = new FrameSizeTracker(Number.MAX_SAFE_INTEGER);
    expect(() => tracker.feed(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]))).toThrow(PacketTooLargeError);
  });
});
