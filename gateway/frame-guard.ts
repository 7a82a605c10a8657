/**
 * Bounds the size of MQTT packets before they are buffered. mqtt-packet (inside Aedes) would accumulate a
 * packet of any announced length; this transform reads only the fixed headers (MQTT 3.1.1 section 2.2:
 * one type byte, then the Remaining Length as 1-4 base-128 digits) and passes bytes through untouched. A
 * packet announcing more than `maxPacketBytes` closes the connection before its body arrives.
 */
import { Duplex, Transform, type TransformCallback } from 'node:stream';
import type { Socket } from 'node:net';

export class PacketTooLargeError extends Error {
  constructor(readonly announced: number, readonly limit: number) {
    super(`MQTT packet of ${announced} bytes exceeds the limit of ${limit}`);
    this.name = 'PacketTooLargeError';
  }
}

/** Tracks packet boundaries across chunks; pure state machine, no buffering. */
export class FrameSizeTracker {
  private state: 'type' | 'length' | 'body' = 'type';
  private length = 0;
  private multiplier = 1;
  private remaining = 0;

  constructor(private readonly maxPacketBytes: number) {}

  /** Throws PacketTooLargeError as soon as a header announces an oversized packet. */
  feed(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === 'type') {
        i++;
        this.state = 'length';
        this.length = 0;
        this.multiplier = 1;
      } else if (this.state === 'length') {
        const byte = chunk[i++];
        this.length += (byte & 0x7f) * this.multiplier;
        this.multiplier *= 128;
        if (this.length > this.maxPacketBytes) throw new PacketTooLargeError(this.length, this.maxPacketBytes);
        if ((byte & 0x80) === 0) {
          if (this.length === 0) this.state = 'type';
          else {
            this.state = 'body';
            this.remaining = this.length;
          }
        } else if (this.multiplier >= 128 ** 4) {
          throw new PacketTooLargeError(Infinity, this.maxPacketBytes); // malformed: more than 4 length bytes
        }
      } else {
        const step = Math.min(this.remaining, chunk.length - i);
        i += step;
        this.remaining -= step;
        if (this.remaining === 0) this.state = 'type';
      }
    }
  }
}

/**
 * Wraps a TCP socket for Aedes: reads pass through the tracker, writes go straight to the socket.
 * `onTooLarge` is told before the connection is destroyed.
 */
export function guardSocket(socket: Socket, maxPacketBytes: number, onTooLarge: (err: PacketTooLargeError) => void): Duplex {
  const tracker = new FrameSizeTracker(maxPacketBytes);
  const inbound = new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      try {
        tracker.feed(chunk);
        callback(null, chunk);
      } catch (err) {
        onTooLarge(err as PacketTooLargeError);
        socket.destroy();
        callback();
      }
    },
  });
  socket.pipe(inbound);
  const duplex = Duplex.from({ readable: inbound, writable: socket });
  socket.on('close', () => duplex.destroy());
  socket.on('error', () => duplex.destroy());
  duplex.on('close', () => socket.destroy());
  return duplex;
}
