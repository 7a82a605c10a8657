/**
 * Devices straight into the database, for tests of the gateway that run no API: an account and meters
 * with generated secrets (scrypt with a small cost, as the API stores them with DEVICE_SECRET_SCRYPT_N=1024).
 */
import type { Pool } from '../../common/db.js';
import { generateDeviceSecret, hashSecret } from '../../common/secrets.js';

/** Creates the account and its meters; resolves with each meter's MQTT password. */
export async function provisionMeters(
  pool: Pool,
  opts: { accountId: string; accountName: string; meterIds: string[]; timezone?: string; intervalSeconds?: number },
): Promise<Record<string, string>> {
  const timezone = opts.timezone ?? 'UTC';
  await pool.query('INSERT INTO accounts (id, name, timezone, billing_day) VALUES ($1, $2, $3, 1)', [opts.accountId, opts.accountName, timezone]);
  const secrets: Record<string, string> = {};
  for (const id of opts.meterIds) {
    const secret = generateDeviceSecret();
    await pool.query(`INSERT INTO devices (id, kind, secret_hash) VALUES ($1, 'meter', $2)`, [id, await hashSecret(secret, 1024)]);
    await pool.query('INSERT INTO meters (id, account_id, timezone, interval_seconds) VALUES ($1, $2, $3, $4)', [id, opts.accountId, timezone, opts.intervalSeconds ?? 900]);
    secrets[id] = secret;
  }
  return secrets;
}
