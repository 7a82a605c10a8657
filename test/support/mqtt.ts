/** MQTT clients for tests: real mqtt.js over real sockets. */
import mqtt, { type MqttClient, type IClientOptions } from 'mqtt';
import { isoUtc } from '../../common/time.js';

export async function connectDevice(url: string, deviceId: string, password: string, extra: IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(url, { username: deviceId, password, clientId: `${deviceId}:test`, reconnectPeriod: 0, connectTimeout: 5000, ...extra });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => {
      cleanup();
      client.end(true);
      reject(err);
    };
    const onClose = () => onError(new Error('connection closed before CONNACK'));
    const onConnect = () => {
      cleanup();
      resolve();
    };
    // Only the first connection attempt decides; later reconnects are the client's own business.
    const cleanup = () => {
      client.off('connect', onConnect);
      client.off('error', onError);
      client.off('close', onClose);
    };
    client.on('connect', onConnect);
    client.on('error', onError);
    client.on('close', onClose);
  });
  return client;
}

/** Publishes and resolves on PUBACK (QoS 1). */
export function publishAcked(client: MqttClient, topic: string, payload: string | Buffer, qos: 0 | 1 = 1): Promise<void> {
  return new Promise((resolve, reject) => client.publish(topic, payload, { qos }, (err) => (err ? reject(err) : resolve())));
}

/** Resolves with the CONNACK error of a refused connection. */
export async function connectRefused(url: string, username: string, password: string): Promise<Error & { code?: number }> {
  const client = mqtt.connect(url, { username, password, reconnectPeriod: 0, connectTimeout: 5000 });
  return new Promise((resolve, reject) => {
    client.once('connect', () => {
      client.end(true);
      reject(new Error('connection was accepted'));
    });
    client.once('error', (err) => {
      client.end(true);
      resolve(err as Error & { code?: number });
    });
  });
}

/** Ends a client; a client the server already closed is ended at once (mqtt.js would wait for it forever). */
export const endClient = (c: MqttClient) =>
  new Promise<void>((r) => {
    if (!c.connected) {
      c.end(true, {}, () => r());
      return;
    }
    c.end(false, {}, () => r());
  });

export function reading(intervalStart: string, importWh: number, extra: Record<string, unknown> = {}) {
  return { intervalStart, intervalSeconds: 900, importWh, exportWh: 0, ...extra };
}

/** ISO instant of the k-th 15-minute interval after `base`. */
export function slot(base: string, k: number, seconds = 900): string {
  return isoUtc(Date.parse(base) + k * seconds * 1000);
}
