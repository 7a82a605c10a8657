/** SQL of the service lifecycle: account and meter service spans, their events, and what is billed already. */
import { inTransaction, type Pool } from '../../common/db.js';
import { isoUtc } from '../../common/time.js';
import type { Queryable } from '../queryable.js';

export type ServiceEvent = 'move_in' | 'move_out' | 'meter_start' | 'meter_end' | 'meter_exchange';

export interface ServiceState {
  accountId: string;
  /**
   * After a change: the closed bills whose cycle it concerns. They stay as issued; voiding one
   * (POST /v1/bills/{id}/void) re-bills its cycle with the change.
   */
  billsAffected?: string[];
  service: { start: string | null; end: string | null };
  meters: { meterId: string; service: { start: string | null; end: string | null }; replaces: string | null }[];
  events: { event: ServiceEvent; meterId: string | null; effective: string; detail: Record<string, unknown>; recordedBy: string | null; recordedAt: string }[];
}

const iso = (d: Date | null) => (d ? isoUtc(d.getTime()) : null);

export class ServiceLifecycleRepository {
  constructor(private readonly pool: Pool) {}

  transaction<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, fn);
  }

  /** The account of a meter, or null when the meter does not exist. */
  async accountOfMeter(q: Queryable, meterId: string): Promise<string | null> {
    const res = await q.query<{ account_id: string }>('SELECT account_id FROM meters WHERE id = $1', [meterId]);
    return res.rows[0]?.account_id ?? null;
  }

  async accountExists(q: Queryable, accountId: string): Promise<boolean> {
    return (await q.query('SELECT 1 FROM accounts WHERE id = $1', [accountId])).rowCount === 1;
  }

  /** Takes the account's billing lock: no run closes it while its service changes. */
  async lockAccount(q: Queryable, accountId: string): Promise<void> {
    await q.query(`SELECT pg_advisory_xact_lock(hashtextextended('billing-account:' || $1, 0))`, [accountId]);
  }

  /** The account's current bills (not voided) whose cycle ends after `at`: those a change at `at` concerns. */
  async billedAfter(q: Queryable, accountId: string, at: number): Promise<string[]> {
    const res = await q.query<{ id: string }>(
      `SELECT b.id FROM bills b
       WHERE b.account_id = $1 AND b.kind = 'bill' AND b.cycle_end > $2 AND NOT EXISTS (SELECT 1 FROM bills s WHERE s.supersedes = b.id)
       ORDER BY b.cycle_start`,
      [accountId, new Date(at).toISOString()],
    );
    return res.rows.map((r) => r.id);
  }

  async accountSpan(q: Queryable, accountId: string): Promise<{ start: number | null; end: number | null }> {
    const res = await q.query('SELECT service_start, service_end FROM account_service WHERE account_id = $1', [accountId]);
    const r = res.rows[0];
    return { start: r?.service_start?.getTime() ?? null, end: r?.service_end?.getTime() ?? null };
  }

  async meterSpan(q: Queryable, meterId: string): Promise<{ start: number | null; end: number | null }> {
    const res = await q.query('SELECT service_start, service_end FROM meter_service WHERE meter_id = $1', [meterId]);
    const r = res.rows[0];
    return { start: r?.service_start?.getTime() ?? null, end: r?.service_end?.getTime() ?? null };
  }

  async setAccount(q: Queryable, accountId: string, field: 'service_start' | 'service_end', at: number): Promise<void> {
    await q.query(
      `INSERT INTO account_service (account_id, ${field}) VALUES ($1, $2)
       ON CONFLICT (account_id) DO UPDATE SET ${field} = excluded.${field}, updated_at = now()`,
      [accountId, new Date(at).toISOString()],
    );
  }

  async setMeter(q: Queryable, meterId: string, field: 'service_start' | 'service_end', at: number, replaces: string | null = null): Promise<void> {
    await q.query(
      `INSERT INTO meter_service (meter_id, ${field}, replaces) VALUES ($1, $2, $3)
       ON CONFLICT (meter_id) DO UPDATE SET ${field} = excluded.${field}, replaces = COALESCE(excluded.replaces, meter_service.replaces), updated_at = now()`,
      [meterId, new Date(at).toISOString(), replaces],
    );
  }

  async recordEvent(q: Queryable, e: { accountId: string; meterId: string | null; event: ServiceEvent; effective: number; detail?: Record<string, unknown>; recordedBy: string | null }): Promise<void> {
    await q.query(
      'INSERT INTO service_events (account_id, meter_id, event, effective, detail, recorded_by) VALUES ($1, $2, $3, $4, $5, $6)',
      [e.accountId, e.meterId, e.event, new Date(e.effective).toISOString(), JSON.stringify(e.detail ?? {}), e.recordedBy],
    );
  }

  async state(q: Queryable, accountId: string): Promise<ServiceState> {
    // One client: one statement at a time.
    const account = await q.query('SELECT service_start, service_end FROM account_service WHERE account_id = $1', [accountId]);
    const meters = await q.query(
      `SELECT m.id, ms.service_start, ms.service_end, ms.replaces FROM meters m LEFT JOIN meter_service ms ON ms.meter_id = m.id
       WHERE m.account_id = $1 ORDER BY m.id`,
      [accountId],
    );
    const events = await q.query('SELECT * FROM service_events WHERE account_id = $1 ORDER BY id', [accountId]);
    const a = account.rows[0];
    return {
      accountId,
      service: { start: iso(a?.service_start ?? null), end: iso(a?.service_end ?? null) },
      meters: meters.rows.map((r) => ({ meterId: r.id, service: { start: iso(r.service_start), end: iso(r.service_end) }, replaces: r.replaces })),
      events: events.rows.map((r) => ({
        event: r.event,
        meterId: r.meter_id,
        effective: iso(r.effective)!,
        detail: r.detail,
        recordedBy: r.recorded_by,
        recordedAt: iso(r.recorded_at)!,
      })),
    };
  }
}
