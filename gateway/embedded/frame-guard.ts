/**
 * Bounds the size of MQTT packets before they are buffered. mqtt-packet (inside Aedes) would accumulate a
 * packet of any announced length; this transform reads only the fixed headers (MQTT 3.1.1 section 2.2:
 * one type byte, then the Remaining Length as 1-4 base-128 digits) and passes bytes through untouched. A
 * packet announcing more than `maxPacketBytes` closes the connection before its body arrives.
 */
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
 * Guards a TCP (or TLS) socket for Aedes in place: every chunk the socket receives passes through the
 * tracker on its way into the socket's read buffer (net.Socket hands received data to `push()`), so the
 * socket itself is given to Aedes, with no extra stream or buffer per connection (10,000 connected meters
 * must stay small). `onTooLarge` is told before the connection is destroyed.
 */
export function guardSocket<S extends Socket>(socket: S, maxPacketBytes: number, onTooLarge: (err: PacketTooLargeError) => void): S {
  const tracker = new FrameSizeTracker(maxPacketBytes);
  const push = socket.push;
  socket.push = function guardedPush(this: S, chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk !== null && chunk !== undefined) {
      try {
        tracker.feed(chunk as Buffer);
      } catch (err) {
        socket.push = push;
        onTooLarge(err as PacketTooLargeError);
        socket.destroy();
        return false;
      }
    }
    return push.call(this, chunk, encoding);
  };
  return socket;
}
