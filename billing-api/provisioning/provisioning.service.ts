/**
 * Provisioning: accounts, meters, concentrators, device secrets, API tokens. Business rules and
 * transactions live here; routes only decode, call and encode.
 */
import type { z } from 'zod';
import { inTransaction, type Pool } from '../common/db.js';
import {
  generateApiToken, generateDeviceSecret, hashGeneratedSecret, hashSecret, mosquittoPasswordHash, randomId,
  MOSQUITTO_ITERATIONS_CHOSEN, MOSQUITTO_ITERATIONS_GENERATED,
} from '../common/secrets.js';
import { zoneProblem } from '../common/timezones.js';
import { badRequest, conflict, isUniqueViolation, notFound } from './errors.js';
import { tokenDigester } from './token-digest.js';
import type { accountCreateSchema, concentratorCreateSchema, meterCreateSchema, tokenCreateSchema } from './schemas.js';

export interface AccountRow { id: string; name: string; timezone: string; billingDay: number; createdAt: string }
export interface MeterRow {
  id: string; accountId: string; timezone: string; intervalSeconds: number; maxPowerKw: string | null;
  tariffId: string | null; concentratorIds: string[]; createdAt: string; mqttPassword?: string;
}

const iso = (d: Date) => d.toISOString();

const METER_SELECT = `
SELECT m.id, m.account_id, m.timezone, m.interval_seconds, m.max_power_kw::text AS max_power_kw, m.created_at,
  (SELECT mt.tariff_id FROM meter_tariffs mt WHERE mt.meter_id = m.id AND mt.effective_from <= now()
    ORDER BY mt.effective_from DESC LIMIT 1) AS tariff_id,
  COALESCE((SELECT array_agg(cm.concentrator_id ORDER BY cm.concentrator_id) FROM concentrator_meters cm WHERE cm.meter_id = m.id), '{}') AS concentrator_ids
FROM meters m`;

function meterFromRow(r: Record<string, any>): MeterRow {
  return {
    id: r.id, accountId: r.account_id, timezone: r.timezone, intervalSeconds: r.interval_seconds,
    maxPowerKw: r.max_power_kw, tariffId: r.tariff_id, concentratorIds: r.concentrator_ids, createdAt: iso(r.created_at),
  };
}

export class ProvisioningService {
  constructor(private readonly pool: Pool, private readonly scryptN: number) {}

  /**
   * Returns the stored hash, the Mosquitto password-file hash of the same secret (for an external Mosquitto,
   * gateway/mosquitto-auth.ts) and, when the system generated the secret, the secret to show once.
   */
  private async secretHash(provided: string | undefined): Promise<{ hash: string; mosquittoHash: string; generated?: string }> {
    if (provided !== undefined) {
      const [hash, mosquittoHash] = await Promise.all([
        hashSecret(provided, this.scryptN),
        mosquittoPasswordHash(provided, MOSQUITTO_ITERATIONS_CHOSEN),
      ]);
      return { hash, mosquittoHash };
    }
    const generated = generateDeviceSecret();
    return { hash: hashGeneratedSecret(generated), mosquittoHash: await mosquittoPasswordHash(generated, MOSQUITTO_ITERATIONS_GENERATED), generated };
  }

  async createAccount(input: z.output<typeof accountCreateSchema>): Promise<AccountRow> {
    const zone = await zoneProblem(this.pool, input.timezone);
    if (zone) throw badRequest('invalid body: 1 problem(s)', [{ field: 'body.timezone', message: zone }]);
    try {
      const res = await this.pool.query(
        'INSERT INTO accounts (id, name, timezone, billing_day) VALUES ($1, $2, $3, $4) RETURNING created_at',
        [input.id, input.name, input.timezone, input.billingDay],
      );
      return { ...input, createdAt: iso(res.rows[0].created_at) };
    } catch (err) {
      if (isUniqueViolation(err)) throw conflict(`account "${input.id}" already exists`);
      throw err;
    }
  }

  async getAccount(id: string): Promise<AccountRow | null> {
    const res = await this.pool.query('SELECT id, name, timezone, billing_day, created_at FROM accounts WHERE id = $1', [id]);
    if (!res.rowCount) return null;
    const r = res.rows[0];
    return { id: r.id, name: r.name, timezone: r.timezone, billingDay: r.billing_day, createdAt: iso(r.created_at) };
  }

  async listAccounts(limit: number, after: string | undefined): Promise<AccountRow[]> {
    const res = await this.pool.query(
      'SELECT id, name, timezone, billing_day, created_at FROM accounts WHERE ($1::text IS NULL OR id > $1) ORDER BY id LIMIT $2',
      [after ?? null, limit],
    );
    return res.rows.map((r) => ({ id: r.id, name: r.name, timezone: r.timezone, billingDay: r.billing_day, createdAt: iso(r.created_at) }));
  }

  async createMeter(input: z.output<typeof meterCreateSchema>): Promise<MeterRow> {
    const problems = [];
    const zone = await zoneProblem(this.pool, input.timezone);
    if (zone) problems.push({ field: 'body.timezone', message: zone });
    const refs = await this.pool.query(
      `SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1) AS account,
              ($2::text IS NULL OR EXISTS (SELECT 1 FROM tariffs WHERE id = $2)) AS tariff,
              EXISTS (SELECT 1 FROM devices WHERE id = $3) AS taken`,
      [input.accountId, input.tariffId ?? null, input.id],
    );
    if (refs.rows[0].taken) throw conflict(`device id "${input.id}" is already in use`);
    if (!refs.rows[0].account) problems.push({ field: 'body.accountId', message: `account "${input.accountId}" does not exist` });
    if (!refs.rows[0].tariff) problems.push({ field: 'body.tariffId', message: `tariff "${input.tariffId}" does not exist` });
    if (problems.length) throw badRequest(`invalid body: ${problems.length} problem(s)`, problems);

    const secret = await this.secretHash(input.mqttPassword);
    await inTransaction(this.pool, async (client) => {
      await client.query(`INSERT INTO devices (id, kind, secret_hash, mosquitto_password_hash) VALUES ($1, 'meter', $2, $3)`, [input.id, secret.hash, secret.mosquittoHash]);
      await client.query(
        'INSERT INTO meters (id, account_id, timezone, interval_seconds, max_power_kw) VALUES ($1, $2, $3, $4, $5)',
        [input.id, input.accountId, input.timezone, input.intervalSeconds, input.maxPowerKw ?? null],
      );
      if (input.tariffId) {
        // The first assignment covers the meter's whole history.
        await client.query(`INSERT INTO meter_tariffs (meter_id, effective_from, tariff_id) VALUES ($1, '-infinity', $2)`, [input.id, input.tariffId]);
      }
    }).catch((err) => {
      throw isUniqueViolation(err) ? conflict(`device id "${input.id}" is already in use`) : err;
    });
    const meter = (await this.getMeter(input.id))!;
    return secret.generated ? { ...meter, mqttPassword: secret.generated } : meter;
  }

  /** The meter's account, for access checks on hot read paths (a prepared statement, no joins). */
  async meterAccount(id: string): Promise<string | null> {
    const res = await this.pool.query({ name: 'meter-account', text: 'SELECT account_id FROM meters WHERE id = $1', values: [id] });
    return res.rowCount ? res.rows[0].account_id : null;
  }

  async getMeter(id: string): Promise<MeterRow | null> {
    const res = await this.pool.query(`${METER_SELECT} WHERE m.id = $1`, [id]);
    return res.rowCount ? meterFromRow(res.rows[0]) : null;
  }

  async listMeters(accountId: string | undefined, limit: number, after: string | undefined): Promise<MeterRow[]> {
    const res = await this.pool.query(
      `${METER_SELECT} WHERE ($1::text IS NULL OR m.account_id = $1) AND ($2::text IS NULL OR m.id > $2) ORDER BY m.id LIMIT $3`,
      [accountId ?? null, after ?? null, limit],
    );
    return res.rows.map(meterFromRow);
  }

  async createConcentrator(input: z.output<typeof concentratorCreateSchema>) {
    const taken = await this.pool.query('SELECT 1 FROM devices WHERE id = $1', [input.id]);
    if (taken.rowCount) throw conflict(`device id "${input.id}" is already in use`);
    await this.checkMeters(input.meterIds);
    const secret = await this.secretHash(input.mqttPassword);
    await inTransaction(this.pool, async (client) => {
      await client.query(`INSERT INTO devices (id, kind, secret_hash, mosquitto_password_hash) VALUES ($1, 'concentrator', $2, $3)`, [input.id, secret.hash, secret.mosquittoHash]);
      await client.query('INSERT INTO concentrators (id) VALUES ($1)', [input.id]);
      await client.query(
        'INSERT INTO concentrator_meters (concentrator_id, meter_id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING',
        [input.id, input.meterIds],
      );
    }).catch((err) => {
      throw isUniqueViolation(err) ? conflict(`device id "${input.id}" is already in use`) : err;
    });
    const created = (await this.getConcentrator(input.id))!;
    return secret.generated ? { ...created, mqttPassword: secret.generated } : created;
  }

  private async checkMeters(meterIds: string[]): Promise<void> {
    if (!meterIds.length) return;
    const res = await this.pool.query<{ id: string }>(
      'SELECT u.id FROM unnest($1::text[]) AS u(id) WHERE NOT EXISTS (SELECT 1 FROM meters m WHERE m.id = u.id)',
      [meterIds],
    );
    if (res.rowCount) {
      throw badRequest(
        `invalid body: ${res.rowCount} unknown meter(s)`,
        res.rows.map((r) => ({ field: 'body.meterIds', message: `meter "${r.id}" does not exist` })),
      );
    }
  }

  async getConcentrator(id: string) {
    const res = await this.pool.query(
      `SELECT c.id, c.created_at, COALESCE((SELECT array_agg(meter_id ORDER BY meter_id) FROM concentrator_meters WHERE concentrator_id = c.id), '{}') AS meter_ids
       FROM concentrators c WHERE c.id = $1`,
      [id],
    );
    if (!res.rowCount) return null;
    const r = res.rows[0];
    return { id: r.id as string, meterIds: r.meter_ids as string[], createdAt: iso(r.created_at) };
  }

  /** Replaces the set of meters a concentrator may send for. */
  async setConcentratorMeters(id: string, meterIds: string[]) {
    if (!(await this.getConcentrator(id))) throw notFound(`concentrator "${id}"`);
    await this.checkMeters(meterIds);
    await inTransaction(this.pool, async (client) => {
      await client.query('DELETE FROM concentrator_meters WHERE concentrator_id = $1 AND NOT (meter_id = ANY($2::text[]))', [id, meterIds]);
      await client.query('INSERT INTO concentrator_meters (concentrator_id, meter_id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING', [id, meterIds]);
    });
    return (await this.getConcentrator(id))!;
  }

  /** Sets a device's MQTT secret (generated and returned once when not given). Gateways drop their cache at once. */
  async rotateSecret(deviceId: string, provided: string | undefined): Promise<{ id: string; mqttPassword?: string }> {
    const secret = await this.secretHash(provided);
    const res = await this.pool.query(
      'UPDATE devices SET secret_hash = $2, mosquitto_password_hash = $3, updated_at = now() WHERE id = $1',
      [deviceId, secret.hash, secret.mosquittoHash],
    );
    if (!res.rowCount) throw notFound(`device "${deviceId}"`);
    return secret.generated ? { id: deviceId, mqttPassword: secret.generated } : { id: deviceId };
  }

  async createToken(input: z.output<typeof tokenCreateSchema>) {
    if (input.accountId && !(await this.getAccount(input.accountId))) {
      throw badRequest('invalid body: 1 problem(s)', [{ field: 'body.accountId', message: `account "${input.accountId}" does not exist` }]);
    }
    const token = generateApiToken();
    const digest = await tokenDigester(this.pool);
    const id = randomId('tok');
    await this.pool.query(
      `INSERT INTO api_tokens (id, token_hash, role, account_id, hash_scheme) VALUES ($1, $2, $3, $4, 'hmac-sha256')`,
      [id, digest(token), input.role, input.accountId ?? null],
    );
    return { id, token, role: input.role, ...(input.accountId ? { accountId: input.accountId } : {}) };
  }

  async revokeToken(id: string): Promise<void> {
    const res = await this.pool.query('UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL', [id]);
    if (!res.rowCount) throw notFound(`token "${id}"`);
  }
}
