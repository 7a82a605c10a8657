/**
 * Secrets at rest. Device secrets (MQTT passwords, possibly chosen by a person) are hashed with scrypt,
 * asynchronously (libuv thread pool), never on the publish path. API tokens are stored as a keyed digest
 * (billing-api/token-digest.ts).
 */
import { createHash, pbkdf2, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

const KEY_LENGTH = 32;

function scryptAsync(secret: Buffer | string, salt: Buffer, N: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(secret, salt, KEY_LENGTH, { N, r: 8, p: 1, maxmem: 256 * N * 8 + 1024 * 1024 }, (err, key) =>
      err ? reject(err) : resolve(key),
    ),
  );
}

/** `scrypt$N$r$p$saltB64$hashB64` */
export async function hashSecret(secret: string, N = 16384): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(secret, salt, N);
  return `scrypt$${N}$8$1$${salt.toString('base64')}$${key.toString('base64')}`;
}

/**
 * `sha256$saltB64$hashB64`: for secrets this system generated itself (192 random bits), where a slow KDF
 * adds nothing (no dictionary to search) and would only make provisioning and reconnect storms slow.
 */
export function hashGeneratedSecret(secret: string): string {
  const salt = randomBytes(16);
  return `sha256$${salt.toString('base64')}$${sha256(Buffer.concat([salt, Buffer.from(secret)])).toString('base64')}`;
}

export async function verifySecret(secret: Buffer | string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length === 3 && parts[0] === 'sha256') {
    const expected = Buffer.from(parts[2], 'base64');
    const actual = sha256(Buffer.concat([Buffer.from(parts[1], 'base64'), Buffer.isBuffer(secret) ? secret : Buffer.from(secret)]));
    return actual.length === expected.length && timingSafeEqual(actual, expected);
  }
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const N = Number(parts[1]);
  const salt = Buffer.from(parts[4], 'base64');
  const expected = Buffer.from(parts[5], 'base64');
  const key = await scryptAsync(secret, salt, N);
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/**
 * PBKDF2-HMAC-SHA512 iterations of the Mosquitto hash (MQTT_MODE=external with Mosquitto, see
 * gateway/README.md). A secret this system generated has 192 random bits, so no iteration count changes
 * how guessable it is; 1,000 (ten times mosquitto_passwd's 101) keeps the broker's cost per CONNECT under
 * a millisecond. A secret chosen by a person gets 20,000 to slow guessing should the column leak: about
 * 11 ms of broker CPU per CONNECT (Mosquitto verifies on its single thread, at every connection, so more
 * would stall a broker during reconnect storms) and about as much again at provisioning. It stays weaker
 * than that secret's scrypt hash.
 */
export const MOSQUITTO_ITERATIONS_GENERATED = 1_000;
export const MOSQUITTO_ITERATIONS_CHOSEN = 20_000;

const MOSQUITTO_SALT_BYTES = 12;
const MOSQUITTO_HASH_BYTES = 64;

/**
 * A Mosquitto 2 password-file hash of `secret`: `$7$<iterations>$<base64 salt>$<base64 hash>`, the format
 * mosquitto_passwd 2.0 writes (12-byte salt, 64-byte PBKDF2-HMAC-SHA512), so a password-file line is
 * `<username>:<this>`. Computed off the event loop.
 */
export async function mosquittoPasswordHash(secret: string, iterations: number): Promise<string> {
  if (!Number.isInteger(iterations) || iterations < 1) throw new RangeError('iterations must be a positive integer');
  const salt = randomBytes(MOSQUITTO_SALT_BYTES);
  const key = await new Promise<Buffer>((resolve, reject) =>
    pbkdf2(secret, salt, iterations, MOSQUITTO_HASH_BYTES, 'sha512', (err, k) => (err ? reject(err) : resolve(k))),
  );
  return `$7$${iterations}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** The shape of a Mosquitto 2 PBKDF2 hash, as the password file and the database column accept it. */
export const MOSQUITTO_HASH_PATTERN = /^\$7\$[1-9][0-9]{0,9}\$[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}$/;

/** A new random device secret (URL-safe, 32 characters). */
export function generateDeviceSecret(): string {
  return randomBytes(24).toString('base64url');
}

export function sha256(data: Buffer | string): Buffer {
  return createHash('sha256').update(data).digest();
}

/** A new API bearer token (256 random bits); stored as billing-api/token-digest.ts says. */
export function generateApiToken(): string {
  return `smbg_${randomBytes(32).toString('base64url')}`;
}

export function randomId(prefix: string): string {
  return `${prefix}_${randomBytes(9).toString('base64url')}`;
}
