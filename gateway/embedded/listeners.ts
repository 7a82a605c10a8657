/**
 * The sockets of the embedded broker: MQTT over TCP, over TLS (with the TLS files) and over WebSocket
 * (secure with the TLS files). The broker never opens a socket itself; every connection passes the frame
 * guard (frame-guard.ts) and is handed to `broker.handle`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { Aedes } from 'aedes';
import { WebSocketServer, createWebSocketStream, type WebSocket } from 'ws';
import { PortInUseError } from '../../common/errors.js';
import type { Logger } from '../../common/logger.js';
import type { Metrics } from '../../common/metrics.js';
import { TLS_MIN_VERSION, type TlsMaterial } from '../../common/tls.js';
import { guardSocket } from './frame-guard.js';

export interface ListenOptions {
  host: string;
  mqttPort: number;
  /** 0 disables MQTT over WebSocket */
  wsPort: number;
  /** Certificate and key (PEM): MQTT over TLS on `tlsPort`, and the WebSocket listener becomes secure (wss). */
  tls?: TlsMaterial | null;
  /** MQTT over TLS (used only with `tls`) */
  tlsPort?: number;
}

export interface Listeners {
  mqttPort: number;
  wsPort: number | null;
  tlsPort: number | null;
  /** stops accepting; resolves once every server is closed */
  close(): Promise<void>;
  /** ends the WebSocket connections still open (after the broker closed) */
  terminateWebSockets(): void;
}

function listenTcp(host: string, port: number, variable: string, what: string, server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'EADDRINUSE' ? new PortInUseError(what, host, port, variable) : err));
    server.listen(port, host, () => resolve((server.address() as { port: number }).port));
  });
}

export async function openListeners(
  broker: Aedes,
  { host, mqttPort, wsPort, tls, tlsPort }: ListenOptions,
  deps: { log: Logger; metrics?: Metrics; maxPacketBytes: number; remoteOf: WeakMap<object, string | null> },
): Promise<Listeners> {
  const { log, metrics, maxPacketBytes, remoteOf } = deps;
  const servers: { close(cb: () => void): void }[] = [];
  const wsClients = new Set<WebSocket>();
  // MQTT over TCP and over TLS share this path: the frame guard, then the broker.
  const handleSocket = (socket: Socket) => {
    socket.setNoDelay(true);
    const guarded = guardSocket(socket, maxPacketBytes, (err) => {
      metrics?.mqttRefused.inc({ reason: 'packet_too_large' });
      log.warn({ remoteAddress: socket.remoteAddress, announced: err.announced, limit: err.limit }, 'connection closed: MQTT packet too large');
    });
    remoteOf.set(guarded, socket.remoteAddress ?? null);
    broker.handle(guarded as never);
  };
  const closeAll = () => Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r())))).then(() => undefined);
  try {
    const tlsOptions = tls ? { cert: tls.cert, key: tls.key, minVersion: TLS_MIN_VERSION } : null;
    const tcp = createServer(handleSocket);
    const boundMqtt = await listenTcp(host, mqttPort, 'MQTT_PORT', 'MQTT', tcp);
    servers.push(tcp);
    let boundTls: number | null = null;
    if (tlsOptions) {
      const secure = createTlsServer(tlsOptions, handleSocket);
      // A failed handshake (plain MQTT on the TLS port, an old protocol version, a client refusing our
      // certificate) only closes that connection.
      secure.on('tlsClientError', (err, socket) => log.debug({ err: err.message, remoteAddress: socket.remoteAddress }, 'TLS handshake failed'));
      boundTls = await listenTcp(host, tlsPort ?? 8883, 'MQTT_TLS_PORT', 'MQTT over TLS', secure);
      servers.push(secure);
    }
    let boundWs: number | null = null;
    if (wsPort !== 0) {
      const reject426 = (_req: IncomingMessage, res: ServerResponse) => {
        res.writeHead(426).end('MQTT over WebSocket: connect with subprotocol "mqtt"');
      };
      const http = tlsOptions ? createHttpsServer(tlsOptions, reject426) : createHttpServer(reject426);
      if (tlsOptions) http.on('tlsClientError', (err: Error) => log.debug({ err: err.message }, 'TLS handshake failed (WebSocket)'));
      const wss = new WebSocketServer({
        server: http,
        maxPayload: maxPacketBytes,
        handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : protocols.has('mqttv3.1') ? 'mqttv3.1' : false),
      });
      // ws re-emits the HTTP server's errors (EADDRINUSE ...); listenTcp reports them, this keeps them from crashing.
      wss.on('error', () => {});
      wss.on('connection', (ws, req: IncomingMessage) => {
        wsClients.add(ws);
        ws.on('close', () => wsClients.delete(ws));
        const stream = createWebSocketStream(ws);
        remoteOf.set(stream, req.socket.remoteAddress ?? null);
        broker.handle(stream as never, req as never);
      });
      boundWs = await listenTcp(host, wsPort, 'MQTT_WS_PORT', tlsOptions ? 'MQTT over secure WebSocket' : 'MQTT over WebSocket', http as unknown as Server);
      servers.push({ close: (cb) => { wss.close(); http.close(() => cb()); } });
    }
    return {
      mqttPort: boundMqtt,
      wsPort: boundWs,
      tlsPort: boundTls,
      close: closeAll,
      terminateWebSockets: () => {
        for (const ws of wsClients) ws.terminate();
      },
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
