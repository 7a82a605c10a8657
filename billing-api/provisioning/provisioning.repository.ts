/**
 * The SQL of provisioning: accounts, meters (with their current tariff and concentrators), concentrators,
 * device secrets and API tokens. Each method is one statement or one transaction; the rules (what may be
 * created, what a conflict is) live in the service.
 */
import { inTransaction, type Pool, type PoolClient } from '../../common/db.js';
import { zoneProblem } from '../../common/timezones.js';
import type { Queryable } from '../queryable.js';
import { tokenDigester } from './token-digest.js';

export interface AccountRow { id: string; name: string; timezone: string; billingDay: number; createdAt: string }
export interface MeterRow {
  id: string; accountId: string; timezone: string; intervalSeconds: number; maxPowerKw: string | null;
  tariffId: string | null; concentratorIds: string[]; createdAt: string; mqttPassword?: string;
  /** start of the latest stored interval, null when none */
  lastIntervalStart: string | null;
  /** when the latest stored interval was committed */
  lastReceivedAt: string | null;
  /** the latest of lastReceivedAt, the meter's latest quarantine record and its last connection or disconnection: the last time the gateway heard from it */
  lastSeenAt: string | null;
  /** when the meter last connected to the embedded gateway (null: never, or only through a concentrator or an external broker) */
  lastConnectedAt: string | null;
  lastDisconnectedAt: string | null;
}

/** Which meters a list holds, in which order. */
export interface MeterFilter {
  accountId?: string;
  concentratorId?: string;
  /** only meters whose latest stored interval ended at or before this instant (epoch ms), or that have none */
  silentSince?: number;
  /** id (default), or staleness: the oldest latest interval first (meters without one first), then id */
  sort: 'id' | 'staleness';
  /** paging cursor: an id (sort id), or `<end of latest interval, ISO or -infinity>,<id>` (sort staleness) */
  after?: { id: string; lastEnd?: string };
  limit: number;
}
export interface ConcentratorRow { id: string; meterIds: string[]; createdAt: string; lastConnectedAt: string | null; lastDisconnectedAt: string | null }

const CONCENTRATOR_SELECT = `
SELECT c.id, c.created_at, COALESCE((SELECT array_agg(meter_id ORDER BY meter_id) FROM concentrator_meters WHERE concentrator_id = c.id), '{}') AS meter_ids,
  dc.connected_at, dc.disconnected_at
FROM concentrators c LEFT JOIN device_connections dc ON dc.device_id = c.id`;

const concentratorFromRow = (r: Record<string, any>): ConcentratorRow => ({
  id: r.id, meterIds: r.meter_ids, createdAt: new Date(r.created_at).toISOString(),
  lastConnectedAt: r.connected_at ? new Date(r.connected_at).toISOString() : null,
  lastDisconnectedAt: r.disconnected_at ? new Date(r.disconnected_at).toISOString() : null,
});
export interface TokenRow { id: string; role: Role; accountId: string | null; createdAt: string; revokedAt: string | null }

/** The fields of an account a correction may change. */
export interface AccountChanges { name?: string; timezone?: string; billingDay?: number }
/** The fields of a meter a correction may change (maxPowerKw null: no limit). */
export interface MeterChanges { timezone?: string; intervalSeconds?: number; maxPowerKw?: number | null }

/** A closed bill, as a refusal names it. */
export interface BillRef { billId: string; cycleStart: string; cycleEnd: string }

export type Role = 'admin' | 'reader' | 'customer';

/** Who a bearer token is. */
export interface Principal {
  tokenId: string;
  role: Role;
  accountId: string | null;
}

/** A device's stored secret: the gateway's hash and the Mosquitto password-file hash of the same secret. */
export interface SecretHashes { hash: string; mosquittoHash: string }

const iso = (d: Date) => d.toISOString();

/**
 * A meter with its current tariff, its concentrators and what shows whether it still reports: its latest
 * stored interval (one backward step of the meter_readings key, never a scan of its history) with that
 * row's commit time, the latest quarantine record it sent (the (device_id, received_at) index), and when it
 * last connected to and disconnected from the embedded gateway (device_connections).
 */
const METER_SELECT = `
SELECT m.id, m.account_id, m.timezone, m.interval_seconds, m.max_power_kw::text AS max_power_kw, m.created_at,
  (SELECT mt.tariff_id FROM meter_tariffs mt WHERE mt.meter_id = m.id AND mt.effective_from <= now()
    ORDER BY mt.effective_from DESC LIMIT 1) AS tariff_id,
  COALESCE((SELECT array_agg(cm.concentrator_id ORDER BY cm.concentrator_id) FROM concentrator_meters cm WHERE cm.meter_id = m.id), '{}') AS concentrator_ids,
  last.interval_start AS last_interval_start, last.received_at AS last_received_at, lq.received_at AS last_quarantined_at,
  dc.connected_at AS last_connected_at, dc.disconnected_at AS last_disconnected_at
FROM meters m
LEFT JOIN device_connections dc ON dc.device_id = m.id
LEFT JOIN LATERAL (
  SELECT r.interval_start, reading_received_at(r.interval_start, r.received_after, r.received_at) AS received_at
  FROM meter_readings r WHERE r.meter_key = m.key ORDER BY r.interval_start DESC LIMIT 1) last ON true
LEFT JOIN LATERAL (
  SELECT q.received_at FROM quarantine q WHERE q.device_id = m.id ORDER BY q.received_at DESC LIMIT 1) lq ON true`;

/** The end of the meter's latest stored interval (-infinity without one): what staleness is measured by. */
const LAST_END = `COALESCE(last.interval_start + m.interval_seconds * interval '1 second', '-infinity')`;

const latest = (a: Date | string | null, b: Date | string | null) => {
  const [x, y] = [a === null ? null : new Date(a), b === null ? null : new Date(b)];
  return x && y ? iso(x > y ? x : y) : x ? iso(x) : y ? iso(y) : null;
};

const billRef = (r: Record<string, any>): BillRef => ({ billId: r.id, cycleStart: iso(r.cycle_start), cycleEnd: iso(r.cycle_end) });

function meterFromRow(r: Record<string, any>): MeterRow {
  return {
    id: r.id, accountId: r.account_id, timezone: r.timezone, intervalSeconds: r.interval_seconds,
    maxPowerKw: r.max_power_kw, tariffId: r.tariff_id, concentratorIds: r.concentrator_ids, createdAt: iso(r.created_at),
    lastIntervalStart: r.last_interval_start ? iso(r.last_interval_start) : null,
    lastReceivedAt: r.last_received_at ? iso(r.last_received_at) : null,
    lastSeenAt: latest(latest(r.last_received_at, r.last_quarantined_at), latest(r.last_connected_at, r.last_disconnected_at)),
    lastConnectedAt: r.last_connected_at ? iso(r.last_connected_at) : null,
    lastDisconnectedAt: r.last_disconnected_at ? iso(r.last_disconnected_at) : null,
  };
}

/** PostgreSQL's unique violation (23505). */
const isUniqueViolation = (err: unknown) => (err as { code?: string })?.code === '23505';

/** A unique violation while inserting a device: its id is in use. */
export class DeviceIdTaken extends Error {}

export class ProvisioningRepository {
  constructor(private readonly pool: Pool) {}

  /** Why PostgreSQL or luxon would not accept the zone, or null (common/timezones.ts). */
  zoneProblem(zone: string): Promise<string | null> {
    return zoneProblem(this.pool, zone);
  }

  /** Inserts an account; null when the id exists. */
  async insertAccount(account: Omit<AccountRow, 'createdAt'>): Promise<{ createdAt: string } | null> {
    try {
      const res = await this.pool.query(
        'INSERT INTO accounts (id, name, timezone, billing_day) VALUES ($1, $2, $3, $4) RETURNING created_at',
        [account.id, account.name, account.timezone, account.billingDay],
      );
      return { createdAt: iso(res.rows[0].created_at) };
    } catch (err) {
      if (isUniqueViolation(err)) return null;
      throw err;
    }
  }

  /** Runs `fn` in one transaction. */
  transaction<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, fn);
  }

  async getAccount(id: string, q: Queryable = this.pool, forUpdate = false): Promise<AccountRow | null> {
    const res = await q.query(`SELECT id, name, timezone, billing_day, created_at FROM accounts WHERE id = $1${forUpdate ? ' FOR UPDATE' : ''}`, [id]);
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

  /** The account's latest closed bill, or null. */
  async latestBillOfAccount(q: Queryable, accountId: string): Promise<BillRef | null> {
    const res = await q.query('SELECT id, cycle_start, cycle_end FROM bills WHERE account_id = $1 ORDER BY cycle_start DESC LIMIT 1', [accountId]);
    return res.rowCount ? billRef(res.rows[0]) : null;
  }

  /** The latest closed bill with a part for this meter, or null. */
  async latestBillOfMeter(q: Queryable, meterId: string): Promise<BillRef | null> {
    const res = await q.query('SELECT bill_id AS id, cycle_start, cycle_end FROM bill_meters WHERE meter_id = $1 ORDER BY cycle_start DESC LIMIT 1', [meterId]);
    return res.rowCount ? billRef(res.rows[0]) : null;
  }

  /** The start of the meter's latest stored interval (one backward step of the readings key), or null. */
  async lastIntervalStart(q: Queryable, meterId: string): Promise<string | null> {
    const res = await q.query(
      `SELECT r.interval_start FROM meter_readings r WHERE r.meter_key = (SELECT key FROM meters WHERE id = $1) ORDER BY r.interval_start DESC LIMIT 1`,
      [meterId],
    );
    return res.rowCount ? iso(res.rows[0].interval_start) : null;
  }

  async updateAccount(q: Queryable, id: string, changes: AccountChanges): Promise<void> {
    await q.query(
      `UPDATE accounts SET name = COALESCE($2, name), timezone = COALESCE($3, timezone), billing_day = COALESCE($4, billing_day) WHERE id = $1`,
      [id, changes.name ?? null, changes.timezone ?? null, changes.billingDay ?? null],
    );
  }

  /** Locks the meter's row for a correction; null when it does not exist. */
  async lockMeter(q: Queryable, id: string): Promise<boolean> {
    return Boolean((await q.query('SELECT 1 FROM meters WHERE id = $1 FOR UPDATE', [id])).rowCount);
  }

  /**
   * Changes a meter's configuration and touches its device row, whose trigger tells every gateway to drop
   * what it cached of the device (its interval and maximum power apply to the next reading).
   */
  async updateMeter(q: Queryable, id: string, changes: MeterChanges): Promise<void> {
    await q.query(
      `UPDATE meters SET timezone = COALESCE($2, timezone), interval_seconds = COALESCE($3, interval_seconds),
              max_power_kw = CASE WHEN $4 THEN $5::numeric ELSE max_power_kw END
       WHERE id = $1`,
      [id, changes.timezone ?? null, changes.intervalSeconds ?? null, changes.maxPowerKw !== undefined, changes.maxPowerKw ?? null],
    );
    await q.query('UPDATE devices SET updated_at = now() WHERE id = $1', [id]);
  }

  /** What a new meter refers to: does its account exist, its tariff (when named), is its id taken by a device. */
  async meterReferences(accountId: string, tariffId: string | null, deviceId: string): Promise<{ account: boolean; tariff: boolean; taken: boolean }> {
    const refs = await this.pool.query(
      `SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1) AS account,
              ($2::text IS NULL OR EXISTS (SELECT 1 FROM tariffs WHERE id = $2)) AS tariff,
              EXISTS (SELECT 1 FROM devices WHERE id = $3) AS taken`,
      [accountId, tariffId, deviceId],
    );
    return refs.rows[0];
  }

  /**
   * Inserts a meter, its device and (when named) its first tariff assignment, which covers the meter's whole
   * history; one transaction. Throws DeviceIdTaken when the id is in use.
   */
  async insertMeter(
    meter: { id: string; accountId: string; timezone: string; intervalSeconds: number; maxPowerKw: number | null; tariffId: string | null },
    secret: SecretHashes,
  ): Promise<void> {
    await inTransaction(this.pool, async (client) => {
      await client.query(`INSERT INTO devices (id, kind, secret_hash, mosquitto_password_hash) VALUES ($1, 'meter', $2, $3)`, [meter.id, secret.hash, secret.mosquittoHash]);
      await client.query(
        'INSERT INTO meters (id, account_id, timezone, interval_seconds, max_power_kw) VALUES ($1, $2, $3, $4, $5)',
        [meter.id, meter.accountId, meter.timezone, meter.intervalSeconds, meter.maxPowerKw],
      );
      if (meter.tariffId) {
        await client.query(`INSERT INTO meter_tariffs (meter_id, effective_from, tariff_id) VALUES ($1, '-infinity', $2)`, [meter.id, meter.tariffId]);
      }
    }).catch((err) => {
      throw isUniqueViolation(err) ? new DeviceIdTaken(meter.id) : err;
    });
  }

  /** The meter's account, for access checks on hot read paths (a prepared statement, no joins). */
  async meterAccount(id: string): Promise<string | null> {
    const res = await this.pool.query({ name: 'meter-account', text: 'SELECT account_id FROM meters WHERE id = $1', values: [id] });
    return res.rowCount ? res.rows[0].account_id : null;
  }

  async getMeter(id: string, q: Queryable = this.pool): Promise<MeterRow | null> {
    const res = await q.query(`${METER_SELECT} WHERE m.id = $1`, [id]);
    return res.rowCount ? meterFromRow(res.rows[0]) : null;
  }

  async listMeters(filter: MeterFilter): Promise<MeterRow[]> {
    const conditions = [
      '($1::text IS NULL OR m.account_id = $1)',
      '($2::text IS NULL OR EXISTS (SELECT 1 FROM concentrator_meters cm WHERE cm.meter_id = m.id AND cm.concentrator_id = $2))',
      `($3::timestamptz IS NULL OR ${LAST_END} <= $3)`,
    ];
    const values: unknown[] = [filter.accountId ?? null, filter.concentratorId ?? null, filter.silentSince === undefined ? null : new Date(filter.silentSince)];
    let order = 'm.id';
    if (filter.sort === 'staleness') {
      order = `${LAST_END}, m.id`;
      if (filter.after) {
        values.push(filter.after.lastEnd ?? '-infinity', filter.after.id);
        conditions.push(`(${LAST_END}, m.id) > ($4::timestamptz, $5::text)`);
      }
    } else if (filter.after) {
      values.push(filter.after.id);
      conditions.push('m.id > $4');
    }
    values.push(filter.limit);
    const res = await this.pool.query(`${METER_SELECT} WHERE ${conditions.join(' AND ')} ORDER BY ${order} LIMIT $${values.length}`, values);
    return res.rows.map(meterFromRow);
  }

  async deviceExists(id: string): Promise<boolean> {
    return Boolean((await this.pool.query('SELECT 1 FROM devices WHERE id = $1', [id])).rowCount);
  }

  /** The ids among `meterIds` that name no meter. */
  async unknownMeters(meterIds: string[]): Promise<string[]> {
    if (!meterIds.length) return [];
    const res = await this.pool.query<{ id: string }>(
      'SELECT u.id FROM unnest($1::text[]) AS u(id) WHERE NOT EXISTS (SELECT 1 FROM meters m WHERE m.id = u.id)',
      [meterIds],
    );
    return res.rows.map((r) => r.id);
  }

  /** Inserts a concentrator, its device and the meters it may send for; one transaction. Throws DeviceIdTaken. */
  async insertConcentrator(id: string, meterIds: string[], secret: SecretHashes): Promise<void> {
    await inTransaction(this.pool, async (client) => {
      await client.query(`INSERT INTO devices (id, kind, secret_hash, mosquitto_password_hash) VALUES ($1, 'concentrator', $2, $3)`, [id, secret.hash, secret.mosquittoHash]);
      await client.query('INSERT INTO concentrators (id) VALUES ($1)', [id]);
      await client.query(
        'INSERT INTO concentrator_meters (concentrator_id, meter_id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING',
        [id, meterIds],
      );
    }).catch((err) => {
      throw isUniqueViolation(err) ? new DeviceIdTaken(id) : err;
    });
  }

  async getConcentrator(id: string, q: Queryable = this.pool): Promise<ConcentratorRow | null> {
    const res = await q.query(`${CONCENTRATOR_SELECT} WHERE c.id = $1`, [id]);
    return res.rowCount ? concentratorFromRow(res.rows[0]) : null;
  }

  async listConcentrators(limit: number, after: string | undefined): Promise<ConcentratorRow[]> {
    const res = await this.pool.query(`${CONCENTRATOR_SELECT} WHERE ($1::text IS NULL OR c.id > $1) ORDER BY c.id LIMIT $2`, [after ?? null, limit]);
    return res.rows.map(concentratorFromRow);
  }

  /** Tokens without their digests, by id; revoked ones only when asked. */
  async listTokens(filter: { role?: Role; accountId?: string; includeRevoked: boolean; after?: string; limit: number }): Promise<TokenRow[]> {
    const res = await this.pool.query(
      `SELECT id, role, account_id, created_at, revoked_at FROM api_tokens
       WHERE ($1::text IS NULL OR role = $1) AND ($2::text IS NULL OR account_id = $2) AND ($3 OR revoked_at IS NULL)
         AND ($4::text IS NULL OR id > $4)
       ORDER BY id LIMIT $5`,
      [filter.role ?? null, filter.accountId ?? null, filter.includeRevoked, filter.after ?? null, filter.limit],
    );
    return res.rows.map((r) => ({ id: r.id, role: r.role, accountId: r.account_id, createdAt: iso(r.created_at), revokedAt: r.revoked_at ? iso(r.revoked_at) : null }));
  }

  async getToken(q: Queryable, id: string): Promise<TokenRow | null> {
    const res = await q.query('SELECT id, role, account_id, created_at, revoked_at FROM api_tokens WHERE id = $1', [id]);
    if (!res.rowCount) return null;
    const r = res.rows[0];
    return { id: r.id, role: r.role, accountId: r.account_id, createdAt: iso(r.created_at), revokedAt: r.revoked_at ? iso(r.revoked_at) : null };
  }

  /** Replaces the set of meters a concentrator may send for (run it in a transaction). */
  async replaceConcentratorMeters(client: Queryable, id: string, meterIds: string[]): Promise<void> {
    await client.query('DELETE FROM concentrator_meters WHERE concentrator_id = $1 AND NOT (meter_id = ANY($2::text[]))', [id, meterIds]);
    await client.query('INSERT INTO concentrator_meters (concentrator_id, meter_id) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING', [id, meterIds]);
  }

  /** Sets a device's secret; false when there is no such device. */
  async updateDeviceSecret(q: Queryable, deviceId: string, secret: SecretHashes): Promise<{ kind: string; accountId: string | null } | null> {
    const res = await q.query(
      `UPDATE devices d SET secret_hash = $2, mosquitto_password_hash = $3, updated_at = now() WHERE id = $1
       RETURNING kind, (SELECT account_id FROM meters m WHERE m.id = d.id) AS account_id`,
      [deviceId, secret.hash, secret.mosquittoHash],
    );
    return res.rowCount ? { kind: res.rows[0].kind, accountId: res.rows[0].account_id } : null;
  }

  /** Stores a token as its keyed digest (token-digest.ts). */
  async insertToken(q: Queryable, id: string, token: string, role: Role, accountId: string | null): Promise<void> {
    const digest = await tokenDigester(this.pool);
    await q.query(
      `INSERT INTO api_tokens (id, token_hash, role, account_id, hash_scheme) VALUES ($1, $2, $3, $4, 'hmac-sha256')`,
      [id, digest(token), role, accountId],
    );
  }

  /** Revokes a token; false when there is no such token, or it is revoked already. */
  async revokeToken(q: Queryable, id: string): Promise<boolean> {
    const res = await q.query('UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL', [id]);
    return Boolean(res.rowCount);
  }

  /** Who the token is, or null when it is unknown or revoked (one indexed lookup of its keyed digest). */
  async principalOf(token: string): Promise<Principal | null> {
    const res = await this.pool.query<{ id: string; role: Role; account_id: string | null }>({
      name: 'auth-token',
      text: 'SELECT id, role, account_id FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL',
      values: [(await tokenDigester(this.pool))(token)],
    });
    if (res.rowCount === 0) return null;
    const row = res.rows[0];
    return { tokenId: row.id, role: row.role, accountId: row.account_id };
  }
}
