/**
 * Opening one MQTT connection for a device: resolves once the broker accepted it (CONNACK 0), rejects
 * on refusal, network error or timeout. Automatic reconnection of mqtt.js is off: the device session
 * decides when to retry (jittered backoff) and what to resend.
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { DeviceIdentity } from './message.js';

export interface ConnectionSettings {
  brokerUrl: string;
  connectTimeoutMs: number;
  keepaliveSeconds: number;
}

/** CONNACK return codes that no retry will change (MQTT 3.1.1: 4, 5; MQTT 5: 134, 135). */
const REFUSED_FOR_GOOD = new Set([4, 5, 134, 135]);

export class ConnectionRefusedError extends Error {
  constructor(
    message: string,
    readonly returnCode: number,
  ) {
    super(message);
  }
}

/** True when the broker refused the credentials: retrying would only repeat the refusal. */
export function isCredentialRefusal(error: unknown): boolean {
  return error instanceof ConnectionRefusedError && REFUSED_FOR_GOOD.has(error.returnCode);
}

/**
 * The MQTT client id of a device: `<deviceId>:sim`. Stable, so the broker sees a reconnection as the same
 * client; the device id, a colon and a suffix, as the gateway requires (a session is its device's own).
 */
export function clientIdOf(deviceId: string): string {
  return `${deviceId}:sim`;
}

export function openConnection(device: DeviceIdentity, settings: ConnectionSettings): Promise<MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(settings.brokerUrl, {
      clientId: clientIdOf(device.id),
      username: device.id,
      password: device.password,
      protocolVersion: 4,
      // The device keeps its own unacknowledged messages and resends them; a publish-only device has
      // nothing in a persistent broker session (see README "Delivery").
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: settings.connectTimeoutMs,
      keepalive: settings.keepaliveSeconds,
      resubscribe: false,
    });
    const settle = (error: Error | null) => {
      client.removeListener('connect', onConnect);
      client.removeListener('error', onError);
      client.removeListener('close', onClose);
      if (error) {
        client.on('error', () => {}); // late errors of a discarded client
        client.end(true);
        reject(error);
      } else {
        resolve(client);
      }
    };
    const onConnect = () => settle(null);
    const onError = (error: Error & { code?: unknown }) =>
      settle(typeof error.code === 'number' ? new ConnectionRefusedError(error.message, error.code) : error);
    const onClose = () => settle(new Error('connection closed before the broker accepted it'));
    client.once('connect', onConnect);
    client.once('error', onError);
    client.once('close', onClose);
  });
}
