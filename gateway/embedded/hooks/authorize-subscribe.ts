/** Step 3a, SUBSCRIBE: a device may subscribe within its own topic tree only (topics.ts). */
import type { Subscription } from 'aedes';
import { clip } from '../../client-text.js';
import { maySubscribe } from '../../topics.js';
import type { DeviceClient, HookContext } from './context.js';

export function authorizeSubscribe(ctx: HookContext) {
  const { log, metrics } = ctx;
  return function authorizeSubscribe(client: DeviceClient, subscription: Subscription, callback: (err: Error | null, subscription?: Subscription | null) => void): void {
    if (client.device && maySubscribe(client.device, subscription.topic)) return callback(null, subscription);
    metrics?.mqttRefused.inc({ reason: 'subscribe' });
    log.warn({ deviceId: client.device?.id, topic: clip(subscription.topic) }, 'subscribe refused');
    // A null subscription is a refusal: SUBACK return code 0x80 [MQTT-3.9.3], the connection stays up.
    callback(null, null);
  };
}
