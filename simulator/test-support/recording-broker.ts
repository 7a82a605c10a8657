/**
 * A bare Aedes broker for tests: no database, no authentication; `authorizePublish` records every PUBLISH
 * before the broker acknowledges it, which is what a test reconciles a ledger against.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { Aedes } from 'aedes';

export interface RecordedPublish {
  clientId: string;
  topic: string;
  payload: string;
}

export interface RecordingBroker {
  port: number;
  /** Publishes in the order the broker received them. */
  received: RecordedPublish[];
  /** Publishes swallowed without a record or an acknowledgement (see `stallAfter`). */
  readonly stalled: number;
  /** Stops stalling: later publishes are recorded and acknowledged again (stalled ones never are). */
  resume(): void;
  /** Drops every connection and stops listening. */
  close(): Promise<void>;
}

export interface RecordingBrokerOptions {
  /**
   * Once `received` holds this many publishes, further ones are neither recorded nor acknowledged: a
   * broker that hangs before committing, whose devices must resend after reconnecting elsewhere.
   */
  stallAfter?: number;
  /** Accepts a CONNECT (username = device id); default: everyone. Refusals answer "bad username or password". */
  credentials?: (username: string, password: string) => boolean;
}

/** Starts a broker on `port` (0: a free port); `received` may be shared between successive brokers. */
export async function startRecordingBroker(
  port = 0,
  received: RecordedPublish[] = [],
  options: RecordingBrokerOptions = {},
): Promise<RecordingBroker> {
  let stalled = 0;
  let stalling = options.stallAfter !== undefined;
  const broker = await Aedes.createBroker({
    authenticate(_client, username, password, done) {
      if (!options.credentials || options.credentials(username ?? '', password?.toString('utf8') ?? '')) return done(null, true);
      done(Object.assign(new Error('bad username or password'), { returnCode: 4 as const }), false);
    },
    authorizePublish(client, packet, callback) {
      if (stalling && received.length >= options.stallAfter!) {
        stalled++;
        return; // no record, no PUBACK
      }
      received.push({ clientId: client?.id ?? '', topic: packet.topic, payload: packet.payload.toString('utf8') });
      callback(null);
    },
  });
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    broker.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    received,
    get stalled() {
      return stalled;
    },
    resume: () => {
      stalling = false;
    },
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      await new Promise<void>((resolve) => broker.close(() => resolve()));
    },
  };
}
