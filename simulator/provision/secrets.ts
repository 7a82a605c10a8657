/**
 * Device secrets derived, not stored: HMAC-SHA256(key, deviceId), so that a later run with the same seed
 * (or `--secret-key`) connects with the secrets an earlier `--provision` registered.
 *
 * With the default key (derived from the seed) anyone who knows the seed knows the secrets: fine for a
 * test fleet, not for anything else. Pass `--secret-key` for a fleet on a shared gateway.
 */
import { createHmac } from 'node:crypto';

export function secretKeyFor(seed: string, secretKey: string | null): string {
  return secretKey ?? `smart-meter-simulator:${seed}`;
}

/** The MQTT password of a device: 32 URL-safe characters (192 bits). */
export function deviceSecret(key: string, deviceId: string): string {
  return createHmac('sha256', key).update(deviceId).digest('base64url').slice(0, 32);
}
