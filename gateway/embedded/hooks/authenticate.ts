/**
 * Step 2, CONNECT: the username names a device and the password is its secret (device-auth.ts); the client
 * id is the device's own (`<id>` or `<id>:<suffix>`, client-text.ts); a device reconnecting in a loop is
 * refused. Failures (unknown device, wrong secret, a client id of another device) are charged to the remote
 * address only: the per-device bucket counts only connections that proved the device's secret, so nobody
 * can lock a device out by failing in its name.
 */
import type { AuthenticateError } from 'aedes';
import { clientIdBelongsTo, clip, isDeviceIdText } from '../../client-text.js';
import type { DeviceClient, HookContext } from './context.js';

function authError(message: string, returnCode: number): AuthenticateError {
  const err = new Error(message) as AuthenticateError;
  err.returnCode = returnCode;
  return err;
}

export function authenticate(ctx: HookContext) {
  const { log, metrics, limits, auth } = ctx;
  return function authenticate(client: DeviceClient, username: string | undefined, password: Buffer | undefined, callback: (err: AuthenticateError | null, ok: boolean) => void): void {
    const refuse = (reason: string, returnCode: 4 | 5, message: string) => {
      client.limitedAddress = null; // a failure: the address stays charged
      metrics?.mqttRefused.inc({ reason });
      log.warn({ deviceId: clip(username), clientId: clip(client.id), reason }, 'MQTT connection refused');
      callback(authError(message, returnCode), false);
    };
    // A username that is not a device id (control characters, NUL, invalid UTF-8 decoded to U+FFFD, too
    // long) names no device: refused like an unknown one, without asking the database.
    if (!isDeviceIdText(username)) return refuse('unknown_device', 4, 'bad username or password');
    auth.authenticate(username, password).then(
      (result) => {
        if (!result.ok && result.reason === 'unavailable') {
          // The database not answering is not the device's fault: the address is not charged.
          limits.releaseAddress(client);
          metrics?.mqttRefused.inc({ reason: result.reason });
          log.warn({ deviceId: username, clientId: clip(client.id) }, 'MQTT connection refused: device lookup unavailable');
          return callback(authError('server unavailable', 3), false);
        }
        if (!result.ok) return refuse(result.reason, 4, 'bad username or password');
        if (!clientIdBelongsTo(client.id, result.device.id, client.serverAssignedId)) return refuse('client_id', 5, 'not authorized');
        if (limits.deviceAttempts && !limits.deviceAttempts.take(result.device.id)) {
          // A device reconnecting in a loop: CONNACK 3 "server unavailable" (MQTT 3.1.1 has no "rate
          // exceeded"; clients retry later). Not given back to the address either.
          client.limitedAddress = null;
          metrics?.mqttRefused.inc({ reason: 'connect_rate' });
          log.warn({ deviceId: username, clientId: clip(client.id) }, 'MQTT connection refused: too many connections for this device');
          return callback(authError('server unavailable', 3), false);
        }
        limits.releaseAddress(client);
        client.device = result.device;
        callback(null, true);
      },
      (err) => {
        limits.releaseAddress(client);
        log.error({ err }, 'authentication failed');
        callback(authError('server unavailable', 3), false);
      },
    );
  };
}
