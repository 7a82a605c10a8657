/**
 * SQL of billing: account states for a run, late readings, what has been billed, writing bills (with their
 * estimates) and reading them back. Set-based: every call handles a whole batch of accounts or meters in
 * one round trip. Bills are only ever INSERTed (the database refuses UPDATE and DELETE, migrations/004).
 */
import { inTransaction, type Pool, type PoolClient } from '../../common/db.js';
import type { Queryable } from '../queryable.js';
import type { BilledSoFar } from './adjustment-line.js';
import type { BillDocument } from './bill-document.js';
import type { Estimate } from './estimation.js';

export type { BilledSoFar } from './adjustment-line.js';

export interface AccountBillingState {
  accountId: string;
  timezone: string;
  billingDay: number;
  /** the account's latest bill, if any */
  lastBill: { id: string; cycleFrom: number; cycleTo: number; closedAt: number } | null;
  /** start of the account's first billed cycle */
  firstBilledFrom: number | null;
}

export interface BillingMeter {
  id: string;
  accountId: string;
  timezone: string;
  intervalSeconds: number;
  /**
   * The meter's service start: its creation, or its first reading when that is earlier but inside the
   * backfill window (READING_BACKFILL_DAYS before creation; a meter installed before it was provisioned).
   * It is billed from the cycle holding it; a reading outside the window never moves it.
   */
  firstActivity: number;
}

/** A meter's readings committed late into an already billed cycle: the pair to re-rate. */
export interface LateCycle {
  meterId: string;
  billId: string;
  cycleFrom: number;
  cycleTo: number;
}

export interface StoredRun {
  id: string;
  trigger: 'api' | 'schedule';
  asOf: string;
  cutoff: string;
  startedAt: string;
  finishedAt: string | null;
  billsCreated: number;
  skipped: number;
  failures: unknown[];
}

export interface BillSummary {
  id: string;
  accountId: string;
  cycle: BillDocument['cycle'];
  billDate: string;
  closedAt: string;
  currency: string;
  subtotal: string;
  taxes: string;
  adjustmentsTotal: string;
  total: string;
  contentHash: string;
}

const ms = (d: Date) => d.getTime();
const iso = (d: Date) => d.toISOString();

/** An account and its meters, as running charges read them. */
export interface AccountMeters {
  timezone: string;
  billingDay: number;
  meters: { id: string; intervalSeconds: number }[];
}

export class BillingRepository {
  constructor(private readonly pool: Pool) {}

  /**
   * Runs `fn` in one transaction; `startedAt` is the transaction's start (now()): a bill's closedAt and the
   * received_at of the estimates it stores.
   */
  async transaction<T>(fn: (client: PoolClient, startedAt: number) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, async (client) => {
      const startedAt = (await client.query<{ now: Date }>('SELECT now()')).rows[0].now.getTime();
      return fn(client, startedAt);
    });
  }

  /** The account's zone and billing day and its meters (by id), or null when it does not exist. */
  async accountMeters(accountId: string): Promise<AccountMeters | null> {
    const res = await this.pool.query<{ timezone: string; billing_day: number; meter_id: string | null; interval_seconds: number | null }>({
      name: 'running-charges-account',
      text: `SELECT a.timezone, a.billing_day, m.id AS meter_id, m.interval_seconds
             FROM accounts a LEFT JOIN meters m ON m.account_id = a.id WHERE a.id = $1 ORDER BY m.id`,
      values: [accountId],
    });
    if (!res.rowCount) return null;
    return {
      timezone: res.rows[0].timezone,
      billingDay: res.rows[0].billing_day,
      meters: res.rows.filter((r) => r.meter_id !== null).map((r) => ({ id: r.meter_id!, intervalSeconds: r.interval_seconds! })),
    };
  }

  /** Accounts after `after` (by id), for paging through the fleet. */
  async accountIds(after: string, limit: number): Promise<string[]> {
    const res = await this.pool.query<{ id: string }>('SELECT id FROM accounts WHERE id > $1 ORDER BY id LIMIT $2', [after, limit]);
    return res.rows.map((r) => r.id);
  }

  /**
   * Takes a transaction-scoped advisory lock per account, without waiting; returns the accounts locked.
   * An account locked by another run is being closed there: skipping it keeps two runs from doing the
   * same work (the unique constraint on bills keeps them from billing twice).
   */
  async tryLockAccounts(client: Queryable, accountIds: string[]): Promise<string[]> {
    const res = await client.query<{ id: string }>(
      `SELECT id FROM unnest($1::text[]) AS u(id) WHERE pg_try_advisory_xact_lock(hashtextextended('billing-account:' || id, 0))`,
      [accountIds],
    );
    return res.rows.map((r) => r.id);
  }

  async accountStates(client: Queryable, accountIds: string[]): Promise<AccountBillingState[]> {
    const res = await client.query(
      `SELECT a.id, a.timezone, a.billing_day, lb.id AS last_id, lb.cycle_start, lb.cycle_end, lb.closed_at,
              (SELECT min(cycle_start) FROM bills fb WHERE fb.account_id = a.id) AS first_from
       FROM accounts a
       LEFT JOIN LATERAL (SELECT id, cycle_start, cycle_end, closed_at FROM bills b WHERE b.account_id = a.id
                          ORDER BY cycle_start DESC LIMIT 1) lb ON true
       WHERE a.id = ANY($1::text[])
       ORDER BY a.id`,
      [accountIds],
    );
    return res.rows.map((r) => ({
      accountId: r.id,
      timezone: r.timezone,
      billingDay: r.billing_day,
      lastBill: r.last_id ? { id: r.last_id, cycleFrom: ms(r.cycle_start), cycleTo: ms(r.cycle_end), closedAt: ms(r.closed_at) } : null,
      firstBilledFrom: r.first_from ? ms(r.first_from) : null,
    }));
  }

  async meters(client: Queryable, accountIds: string[]): Promise<BillingMeter[]> {
    const res = await client.query(
      `SELECT m.id, m.account_id, m.timezone, m.interval_seconds, least(m.created_at, COALESCE(f.first, m.created_at)) AS first_activity
       FROM meters m
       LEFT JOIN LATERAL (SELECT interval_start AS first FROM readings r
                          WHERE r.meter_id = m.id
                            AND r.interval_start >= m.created_at - COALESCE((SELECT reading_backfill_days FROM ingest_policy), 1096) * interval '1 day'
                          ORDER BY interval_start LIMIT 1) f ON true
       WHERE m.account_id = ANY($1::text[]) ORDER BY m.account_id, m.id`,
      [accountIds],
    );
    return res.rows.map((r) => ({ id: r.id, accountId: r.account_id, timezone: r.timezone, intervalSeconds: r.interval_seconds, firstActivity: ms(r.first_activity) }));
  }

  /**
   * (meter, earlier bill) pairs with readings committed after `since` whose interval lies in that bill's
   * cycle, for cycles from `from` to `before`. Estimates a close stored itself (received_at = that bill's
   * closed_at) are not late data. Rows committed more than an hour after their interval come from the
   * partial index readings_late_idx; the others can only lie in the hour before `since`.
   */
  async lateCycles(client: Queryable, requests: { meterId: string; accountId: string; since: number; from: number; before: number }[]): Promise<LateCycle[]> {
    if (!requests.length) return [];
    const res = await client.query<{ meter_id: string; bill_id: string; cycle_start: Date; cycle_end: Date }>(
      `SELECT DISTINCT u.meter_id, b.id AS bill_id, b.cycle_start, b.cycle_end
       FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::timestamptz[]) AS u(meter_id, account_id, since, lo, hi)
       JOIN LATERAL (
         SELECT r.interval_start, r.received_at, r.quality FROM readings r
         WHERE r.meter_id = u.meter_id AND r.received_at > u.since AND r.received_at - r.interval_start > interval '1 hour'
           AND r.interval_start >= u.lo AND r.interval_start < u.hi
         UNION ALL
         SELECT r.interval_start, r.received_at, r.quality FROM readings r
         WHERE r.meter_id = u.meter_id AND r.interval_start >= greatest(u.lo, u.since - interval '1 hour') AND r.interval_start < u.hi
           AND r.received_at > u.since AND r.received_at - r.interval_start <= interval '1 hour'
       ) late ON true
       JOIN bills b ON b.account_id = u.account_id AND late.interval_start >= b.cycle_start AND late.interval_start < b.cycle_end
       WHERE NOT (late.quality = 'estimated' AND late.received_at = b.closed_at)`,
      [
        requests.map((r) => r.meterId),
        requests.map((r) => r.accountId),
        requests.map((r) => new Date(r.since).toISOString()),
        requests.map((r) => new Date(r.from).toISOString()),
        requests.map((r) => new Date(r.before).toISOString()),
      ],
    );
    return res.rows.map((r) => ({ meterId: r.meter_id, billId: r.bill_id, cycleFrom: ms(r.cycle_start), cycleTo: ms(r.cycle_end) }));
  }

  /** What each (bill, meter) pair has been billed so far. */
  async billedSoFar(client: Queryable, pairs: { billId: string; meterId: string }[]): Promise<BilledSoFar[]> {
    if (!pairs.length) return [];
    const res = await client.query<{ i: number; billed: string; currency: string }>(
      `SELECT u.i::int AS i, b.currency,
              (COALESCE(bm.total, 0) + COALESCE((SELECT sum(a.amount) FROM bill_adjustments a
                                                  WHERE a.corrects_bill_id = u.bill_id AND a.meter_id = u.meter_id), 0))::text AS billed
       FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(bill_id, meter_id, i)
       JOIN bills b ON b.id = u.bill_id
       LEFT JOIN bill_meters bm ON bm.bill_id = u.bill_id AND bm.meter_id = u.meter_id`,
      [pairs.map((p) => p.billId), pairs.map((p) => p.meterId)],
    );
    const out = new Array<BilledSoFar>(pairs.length);
    for (const r of res.rows) out[r.i - 1] = { previouslyBilled: r.billed, currency: r.currency };
    return out;
  }

  /**
   * Inserts bills (one JSON parameter for all documents); returns the ids actually inserted (an existing
   * bill for the same account and cycle wins). Then derives each bill's meter rows and adjustment rows
   * from its stored document, in SQL, so they cannot differ from it.
   */
  async insertBills(client: Queryable, bills: { document: BillDocument; contentHash: string }[], runId: string, closedAt: number): Promise<Set<string>> {
    if (!bills.length) return new Set();
    const res = await client.query<{ id: string }>(
      `INSERT INTO bills (id, account_id, cycle_start, cycle_end, billing_run_id, closed_at, currency, subtotal, taxes, adjustments, total, document, content_hash)
       SELECT b->>'id', b->>'accountId', (b->'cycle'->>'from')::timestamptz, (b->'cycle'->>'to')::timestamptz, $2, $3::timestamptz, b->>'currency',
              (b->>'subtotal')::numeric, (b->>'taxes')::numeric, (b->>'adjustmentsTotal')::numeric, (b->>'total')::numeric, b, h.hash
       FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(b, i)
       JOIN unnest($4::text[]) WITH ORDINALITY AS h(hash, i) USING (i)
       ON CONFLICT (account_id, cycle_start) DO NOTHING
       RETURNING id`,
      [JSON.stringify(bills.map((b) => b.document)), runId, new Date(closedAt).toISOString(), bills.map((b) => b.contentHash)],
    );
    const inserted = res.rows.map((r) => r.id);
    if (!inserted.length) return new Set();
    await client.query(
      `INSERT INTO bill_meters (bill_id, meter_id, cycle_start, cycle_end, subtotal, taxes, total, coverage, tariff_versions, lines, warnings)
       SELECT b.id, m->>'meterId', b.cycle_start, b.cycle_end, (m->>'subtotal')::numeric, (m->>'taxes')::numeric, (m->>'total')::numeric,
              m->'coverage', m->'tariffVersions', m->'lines', jsonb_build_object('warnings', m->'warnings', 'omitted', m->'warningsOmitted')
       FROM bills b CROSS JOIN LATERAL jsonb_array_elements(b.document->'meters') m
       WHERE b.id = ANY($1::text[])`,
      [inserted],
    );
    await client.query(
      `INSERT INTO bill_adjustments (bill_id, corrects_bill_id, meter_id, period_start, period_end, previously_billed,
                                     rerated_subtotal, rerated_taxes, rerated_total, amount, detail)
       SELECT b.id, a->>'correctsBillId', a->>'meterId', (a->'period'->>'from')::timestamptz, (a->'period'->>'to')::timestamptz,
              (a->>'previouslyBilled')::numeric, (a->'rerated'->>'subtotal')::numeric, (a->'rerated'->>'taxes')::numeric,
              (a->'rerated'->>'total')::numeric, (a->>'amount')::numeric, a
       FROM bills b CROSS JOIN LATERAL jsonb_array_elements(b.document->'adjustments') a
       WHERE b.id = ANY($1::text[])`,
      [inserted],
    );
    return new Set(inserted);
  }

  /**
   * Stores estimates as readings of quality 'estimated', received at the close. A reading stored in the
   * meantime wins (it is never overwritten); the difference then flows as an adjustment on the next bill.
   */
  async insertEstimates(client: Queryable, rows: { meterId: string; intervalSeconds: number; estimate: Estimate }[], receivedAt: number): Promise<void> {
    if (!rows.length) return;
    await client.query(
      `SELECT insert_readings_if_absent($1::text[], $2::bigint[], $3::int[], $4::bigint[], $5::bigint[], 'estimated', $6::timestamptz)`,
      [
        rows.map((r) => r.meterId),
        rows.map((r) => r.estimate.intervalStart),
        rows.map((r) => r.intervalSeconds),
        rows.map((r) => r.estimate.importMwh),
        rows.map((r) => r.estimate.exportMwh),
        new Date(receivedAt).toISOString(),
      ],
    );
  }

  async createRun(id: string, trigger: 'api' | 'schedule', asOf: number, cutoff: number): Promise<StoredRun> {
    const res = await this.pool.query(
      'INSERT INTO billing_runs (id, trigger, as_of, cutoff) VALUES ($1, $2, $3, $4) RETURNING *',
      [id, trigger, new Date(asOf).toISOString(), new Date(cutoff).toISOString()],
    );
    return runFromRow(res.rows[0]);
  }

  async finishRun(id: string, billsCreated: number, skipped: number, failures: unknown[]): Promise<StoredRun> {
    const res = await this.pool.query(
      'UPDATE billing_runs SET finished_at = now(), bills_created = $2, skipped = $3, failures = $4 WHERE id = $1 RETURNING *',
      [id, billsCreated, skipped, JSON.stringify(failures)],
    );
    return runFromRow(res.rows[0]);
  }

  async getRun(id: string): Promise<StoredRun | null> {
    const res = await this.pool.query('SELECT * FROM billing_runs WHERE id = $1', [id]);
    return res.rowCount ? runFromRow(res.rows[0]) : null;
  }

  async accountExists(id: string): Promise<boolean> {
    return (await this.pool.query('SELECT 1 FROM accounts WHERE id = $1', [id])).rowCount === 1;
  }

  async getBill(id: string): Promise<{ document: BillDocument; contentHash: string } | null> {
    const res = await this.pool.query('SELECT document, content_hash FROM bills WHERE id = $1', [id]);
    return res.rowCount ? { document: res.rows[0].document, contentHash: res.rows[0].content_hash } : null;
  }

  /** An account's bills by cycle start, after the cursor (a cycle start). */
  async listBills(accountId: string, after: number | null, limit: number): Promise<BillSummary[]> {
    const res = await this.pool.query(
      `SELECT id, account_id, document->'cycle' AS cycle, document->>'billDate' AS bill_date, closed_at, currency,
              document->>'subtotal' AS subtotal, document->>'taxes' AS taxes, document->>'adjustmentsTotal' AS adjustments_total,
              document->>'total' AS total, content_hash
       FROM bills WHERE account_id = $1 AND cycle_start > COALESCE($2::timestamptz, '-infinity')
       ORDER BY cycle_start LIMIT $3`,
      [accountId, after === null ? null : new Date(after).toISOString(), limit],
    );
    return res.rows.map((r) => ({
      id: r.id,
      accountId: r.account_id,
      cycle: r.cycle,
      billDate: r.bill_date,
      closedAt: iso(r.closed_at),
      currency: r.currency,
      subtotal: r.subtotal,
      taxes: r.taxes,
      adjustmentsTotal: r.adjustments_total,
      total: r.total,
      contentHash: r.content_hash,
    }));
  }
}

function runFromRow(r: Record<string, any>): StoredRun {
  return {
    id: r.id,
    trigger: r.trigger,
    asOf: iso(r.as_of),
    cutoff: iso(r.cutoff),
    startedAt: iso(r.started_at),
    finishedAt: r.finished_at ? iso(r.finished_at) : null,
    billsCreated: r.bills_created,
    skipped: r.skipped,
    failures: r.failures,
  };
}
