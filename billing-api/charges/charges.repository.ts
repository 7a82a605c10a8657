/**
 * The inputs of a meter's charges in one round trip: a single prepared statement returns the meter
 * (account, interval length), its tariff assignments with the version numbers of each assigned tariff (the
 * timeline query of the tariffs repository) and the window's intervals packed by PostgreSQL
 * (../readings/packed-intervals.ts), instead of one protocol row (and five parsed strings) per interval.
 */
import type { Pool } from '../../common/db.js';
import type { MeterInterval } from '../../rating/index.js';
import { decodePackedIntervalsBase64, packedIntervalsSql } from '../readings/packed-intervals.js';
import { assignmentTimelineSql, type AssignmentEntry } from '../tariffs/tariffs.repository.js';
import type { Queryable } from '../queryable.js';
import type { HistoryReads } from './rating-history.js';

// A named (prepared) statement: planning over the hypertable's chunks costs as much as running it.
const CHARGES_INPUTS_SQL = `
SELECT m.account_id, m.interval_seconds,
       (SELECT json_agg(json_build_array(a.tariff_id, a.from_ms, a.versions) ORDER BY a.effective_from)
        FROM (${assignmentTimelineSql('mt.meter_id = m.id')}) a) AS tariffs,
       (SELECT ${packedIntervalsSql('r')}
        FROM readings r
        WHERE r.meter_id = $1 AND r.interval_start >= to_timestamp($2::float8 / 1000) AND r.interval_start < to_timestamp($3::float8 / 1000)
          AND ($4::text IS NULL OR m.account_id = $4)) AS d
FROM meters m WHERE m.id = $1`;

export interface ChargesInputs {
  accountId: string;
  intervalSeconds: number;
  /** the meter's assignments in effective order; empty without any */
  assignments: AssignmentEntry[];
  /** the window's intervals, packed (base64), or null when none (or the meter is outside the scope) */
  packed: string | null;
}

export class ChargesRepository implements HistoryReads {
  private readonly history: HistoryReads;

  constructor(private readonly pool: Pool) {
    this.history = historyReadsOn(pool);
  }

  /**
   * The meter, its assignments and its intervals in [from, to); null when there is no such meter. With
   * `scopeAccountId`, intervals are only read when the meter belongs to that account.
   */
  async inputs(meterId: string, from: number, to: number, scopeAccountId: string | null): Promise<ChargesInputs | null> {
    const res = await this.pool.query<{ account_id: string; interval_seconds: number; tariffs: AssignmentEntry[] | null; d: string | null }>({
      name: 'charges-inputs',
      text: CHARGES_INPUTS_SQL,
      values: [meterId, from, to, scopeAccountId],
    });
    if (!res.rowCount) return null;
    const row = res.rows[0];
    return { accountId: row.account_id, intervalSeconds: row.interval_seconds, assignments: row.tariffs ?? [], packed: row.d };
  }

  /** An account's zone and billing day (its billing cycles), or null. */
  async accountCycle(accountId: string, meterId: string): Promise<{ timezone: string; billingDay: number; serviceStart: number | null } | null> {
    // The meter's explicit service start: the later of its own and its account's (a move-in), as the bill
    // close reads it (greatest() ignores a missing one).
    const account = await this.pool.query<{ timezone: string; billing_day: number; service_start: Date | null }>({
      name: 'charges-account-cycle',
      text: `SELECT a.timezone, a.billing_day, greatest(ms.service_start, s.service_start) AS service_start
             FROM accounts a
             LEFT JOIN account_service s ON s.account_id = a.id
             LEFT JOIN meter_service ms ON ms.meter_id = $2
             WHERE a.id = $1`,
      values: [accountId, meterId],
    });
    if (!account.rowCount) return null;
    const row = account.rows[0];
    return { timezone: row.timezone, billingDay: row.billing_day, serviceStart: row.service_start ? row.service_start.getTime() : null };
  }

  /** A meter's stored intervals in [from, to), sorted by start (the history before a window). */
  intervals(meterId: string, intervalSeconds: number, from: number, to: number): Promise<MeterInterval[]> {
    return this.history.intervals(meterId, intervalSeconds, from, to);
  }

  /** The start of a meter's earliest stored interval (epoch ms), or null. */
  firstIntervalStart(meterId: string): Promise<number | null> {
    return this.history.firstIntervalStart(meterId);
  }
}

/**
 * The history reads of ./rating-history.ts on a pool or a transaction's client (a bill's close reads in
 * its transaction): two statements, each on the (meter_id, interval_start) key.
 */
export function historyReadsOn(q: Queryable): HistoryReads {
  return {
    async intervals(meterId, intervalSeconds, from, to) {
      const res = await q.query<{ d: string | null }>({
        name: 'charges-history-intervals',
        text: `SELECT ${packedIntervalsSql('r')} AS d FROM readings r
               WHERE r.meter_id = $1 AND r.interval_start >= to_timestamp($2::float8 / 1000) AND r.interval_start < to_timestamp($3::float8 / 1000)`,
        values: [meterId, from, to],
      });
      return decodePackedIntervalsBase64(res.rows[0]?.d ?? null, intervalSeconds);
    },
    async firstIntervalStart(meterId) {
      const res = await q.query<{ s: number | null }>({
        name: 'charges-first-interval',
        text: 'SELECT (extract(epoch FROM min(interval_start)) * 1000)::float8 AS s FROM meter_readings WHERE meter_key = (SELECT key FROM meters WHERE id = $1)',
        values: [meterId],
      });
      return res.rows[0]?.s ?? null;
    },
  };
}
