/**
 * Text a client chose (MQTT client ids, usernames, topics): the rule binding a client id to its device,
 * and the bound on what of it reaches a log line.
 */
import { DEVICE_ID_PATTERN } from '../common/reading.js';

/** Characters of client-sent text a log line keeps. */
export const LOGGED_TEXT_CHARS = 128;

/**
 * At most LOGGED_TEXT_CHARS characters of text a client sent, with a marker saying how much was cut;
 * control characters are escaped so one field cannot forge or break a log line.
 */
export function clip(text: string | null | undefined): string | undefined {
  if (text === undefined || text === null) return undefined;
  const escape = (s: string) => s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (text.length <= LOGGED_TEXT_CHARS) return escape(text);
  return `${escape(text.slice(0, LOGGED_TEXT_CHARS))}...[${text.length - LOGGED_TEXT_CHARS} more chars]`;
}

/** A CONNECT username that can name a device: a device id (contract section 2), nothing else. */
export function isDeviceIdText(username: string | undefined): username is string {
  return typeof username === 'string' && DEVICE_ID_PATTERN.test(username);
}

/** What may follow `<deviceId>:` in a client id. */
const CLIENT_ID_SUFFIX = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * The MQTT client id rule: a device's client id is its device id, or its device id, a colon and a suffix
 * of 1 to 64 characters from [A-Za-z0-9._:-] (several connections of one device: `MTR-1:a`, `MTR-1:b`).
 * Device ids never contain a colon, so a client id names exactly one device and no device can choose
 * another device's session. `serverAssigned`: the client sent an empty client id and the broker chose a
 * fresh unique one (a clean session no one else can name), which is accepted as well.
 */
export function clientIdBelongsTo(clientId: string, deviceId: string, serverAssigned = false): boolean {
  if (serverAssigned) return true;
  if (clientId === deviceId) return true;
  return clientId.startsWith(`${deviceId}:`) && CLIENT_ID_SUFFIX.test(clientId.slice(deviceId.length + 1));
}
