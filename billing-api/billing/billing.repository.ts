/**
 * SQL of billing: account states for a run, late readings, what has been billed, writing bills (with their
 * estimates) and reading them back. Set-based: every call handles a whole batch of accounts or meters in
 * one round trip. Bills are only ever INSERTed (the database refuses UPDATE and DELETE, migrations/004).
 */
import { inTransaction, type Pool, type PoolClient } from '../../common/db.js';
import { isoUtc } from '../../common/time.js';
import type { Queryable } from '../queryable.js';
import { ServiceLifecycleRepository } from './service-lifecycle.repository.js';
import type { BilledSoFar } from './adjustment-line.js';
import type { BillDocument } from './bill-document.js';
import type { Estimate } from './estimation.js';
import type { MeteringState } from '../../rating/index.js';

export type { BilledSoFar } from './adjustment-line.js';

export interface AccountBillingState {
  accountId: string;
  timezone: string;
  billingDay: number;
  /** the account's latest bill, if any */
  lastBill: { id: string; cycleFrom: number; cycleTo: number; closedAt: number } | null;
  /** start of the account's first billed cycle */
  firstBilledFrom: number | null;
  /** the account's explicit service start (move-in) and end (move-out), when recorded */
  serviceStart: number | null;
  serviceEnd: number | null;
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
  /**
   * The explicit service span, when one is recorded for the meter or its account (the later start and
   * the earlier end of the two): billed from `start` (prorated) and nothing after `end`. Null start: the
   * meter's service starts at `firstActivity` and its first cycle is billed whole.
   */
  service: { start: number | null; end: number | null };
}

/** A meter's readings committed late into an already billed cycle: the pair to re-rate. */
export interface LateCycle {
  meterId: string;
  billId: string;
  cycleFrom: number;
  cycleTo: number;
}

export type RunTrigger = 'api' | 'schedule' | 'void';
export type RunState = 'running' | 'finished' | 'failed';

/** An account a run could not close: the cycle it tried (null when none was chosen) and why. */
export interface RunFailure {
  accountId: string;
  cycle: { from: string; to: string } | null;
  code: string;
  message: string;
  details?: string[];
}

export interface StoredRun {
  id: string;
  trigger: RunTrigger;
  state: RunState;
  asOf: string;
  cutoff: string;
  /** 'YYYY-MM' when the run closes the cycles ending in that month (each account's zone), else null */
  cyclesEndingIn: string | null;
  graceDays: number | null;
  startedAt: string;
  finishedAt: string | null;
  /** finishedAt (or now, while running) minus startedAt */
  durationMs: number;
  progress: { accountsTotal: number | null; accountsDone: number };
  billsCreated: number;
  skipped: number;
  failureCount: number;
  failures: RunFailure[];
  /** why the run itself stopped (state 'failed') */
  error: string | null;
}

export interface BillSummary {
  id: string;
  /** 'bill' (a regular bill or a re-bill) or 'credit_note' */
  kind: 'bill' | 'credit_note';
  /** 0 for the bill a run closed, n for its n-th re-bill */
  revision: number;
  /** 'voided' once a void superseded it (credit notes are always 'issued') */
  status: 'issued' | 'voided';
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
  /** the bill this re-bill supersedes, or the bill this credit note reverses */
  supersedes?: string;
  reverses?: string;
  /** for a voided bill: its credit note and re-bill */
  voidedBy?: { creditNoteId: string; rebillId: string };
}

/** A stored bill or credit note and where it stands. */
export interface StoredBill {
  document: BillDocument;
  contentHash: string;
  kind: 'bill' | 'credit_note';
  revision: number;
  voidedBy: { creditNoteId: string; rebillId: string } | null;
}

const ms = (d: Date) => d.getTime();
const iso = (d: Date) => d.toISOString();

/** An account and its meters, as running charges read them. */
export interface AccountMeters {
  timezone: string;
  billingDay: number;
  /** each meter with its explicit service span, as `meters` reads it (the later start and earlier end of the meter's and the account's) */
  meters: { id: string; intervalSeconds: number; service: { start: number | null; end: number | null } }[];
}

export class BillingRepository {
  constructor(private readonly pool: Pool) {}

  /** The service lifecycle's SQL, on the same pool. */
  serviceLifecycle(): ServiceLifecycleRepository {
    return new ServiceLifecycleRepository(this.pool);
  }

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

  /**
   * The account's zone and billing day and its meters (by id) with their explicit service spans (the same
   * rule as `meters`), or null when it does not exist.
   */
  async accountMeters(accountId: string): Promise<AccountMeters | null> {
    const res = await this.pool.query<{
      timezone: string;
      billing_day: number;
      meter_id: string | null;
      interval_seconds: number | null;
      service_start: Date | null;
      service_end: Date | null;
    }>({
      name: 'running-charges-account',
      text: `SELECT a.timezone, a.billing_day, m.id AS meter_id, m.interval_seconds,
                    greatest(ms.service_start, s.service_start) AS service_start, least(ms.service_end, s.service_end) AS service_end
             FROM accounts a
             LEFT JOIN meters m ON m.account_id = a.id
             LEFT JOIN meter_service ms ON ms.meter_id = m.id
             LEFT JOIN account_service s ON s.account_id = a.id
             WHERE a.id = $1 ORDER BY m.id`,
      values: [accountId],
    });
    if (!res.rowCount) return null;
    return {
      timezone: res.rows[0].timezone,
      billingDay: res.rows[0].billing_day,
      meters: res.rows
        .filter((r) => r.meter_id !== null)
        .map((r) => ({
          id: r.meter_id!,
          intervalSeconds: r.interval_seconds!,
          service: { start: r.service_start ? ms(r.service_start) : null, end: r.service_end ? ms(r.service_end) : null },
        })),
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
              (SELECT min(cycle_start) FROM bills fb WHERE fb.account_id = a.id AND fb.kind = 'bill') AS first_from,
              s.service_start AS account_start, s.service_end AS account_end
       FROM accounts a
       LEFT JOIN LATERAL (SELECT id, cycle_start, cycle_end, closed_at FROM bills b
                          WHERE b.account_id = a.id AND b.kind = 'bill' AND b.revision = 0
                          ORDER BY cycle_start DESC LIMIT 1) lb ON true
       LEFT JOIN account_service s ON s.account_id = a.id
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
      serviceStart: r.account_start ? ms(r.account_start) : null,
      serviceEnd: r.account_end ? ms(r.account_end) : null,
    }));
  }

  async meters(client: Queryable, accountIds: string[]): Promise<BillingMeter[]> {
    const res = await client.query(
      `SELECT m.id, m.account_id, m.timezone, m.interval_seconds, least(m.created_at, COALESCE(f.first, m.created_at)) AS first_activity,
              greatest(ms.service_start, s.service_start) AS service_start, least(ms.service_end, s.service_end) AS service_end  -- greatest() and least() skip a missing one
       FROM meters m
       LEFT JOIN meter_service ms ON ms.meter_id = m.id
       LEFT JOIN account_service s ON s.account_id = m.account_id
       LEFT JOIN LATERAL (SELECT interval_start AS first FROM readings r
                          WHERE r.meter_key = m.key
                            AND r.interval_start >= m.created_at - COALESCE((SELECT reading_backfill_days FROM ingest_policy), 1096) * interval '1 day'
                          ORDER BY interval_start LIMIT 1) f ON true
       WHERE m.account_id = ANY($1::text[]) ORDER BY m.account_id, m.id`,
      [accountIds],
    );
    return res.rows.map((r) => {
      const service = { start: r.service_start ? ms(r.service_start) : null, end: r.service_end ? ms(r.service_end) : null };
      // An explicit start is the service start; a reading before it is stored but never billed.
      return { id: r.id, accountId: r.account_id, timezone: r.timezone, intervalSeconds: r.interval_seconds, firstActivity: service.start ?? ms(r.first_activity), service };
    });
  }

  /**
   * (meter, earlier bill) pairs with readings committed after `since` whose interval lies in that bill's
   * cycle, for cycles from `from` to `before`. Estimates a close stored itself (received_at = that bill's
   * closed_at) are not late data. Rows committed more than an hour after their interval come from the
   * partial index meter_readings_late_idx; the others can only lie in the hour before `since`.
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
                   AND b.kind = 'bill' AND NOT EXISTS (SELECT 1 FROM bills s WHERE s.supersedes = b.id)
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

  /**
   * The bills of each (meter, account) whose cycle starts after `after` and before `before` (the cycles a
   * changed carry-over flows through), not superseded, in cycle order.
   */
  async billsBetween(client: Queryable, requests: { meterId: string; accountId: string; after: number; before: number }[]): Promise<LateCycle[]> {
    if (!requests.length) return [];
    const res = await client.query<{ meter_id: string; bill_id: string; cycle_start: Date; cycle_end: Date }>(
      `SELECT u.meter_id, b.id AS bill_id, b.cycle_start, b.cycle_end
       FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[]) AS u(meter_id, account_id, lo, hi)
       JOIN bills b ON b.account_id = u.account_id AND b.cycle_start > u.lo AND b.cycle_start < u.hi
                   AND b.kind = 'bill' AND NOT EXISTS (SELECT 1 FROM bills s WHERE s.supersedes = b.id)
       ORDER BY u.meter_id, b.cycle_start`,
      [
        requests.map((r) => r.meterId),
        requests.map((r) => r.accountId),
        requests.map((r) => new Date(r.after).toISOString()),
        requests.map((r) => new Date(r.before).toISOString()),
      ],
    );
    return res.rows.map((r) => ({ meterId: r.meter_id, billId: r.bill_id, cycleFrom: ms(r.cycle_start), cycleTo: ms(r.cycle_end) }));
  }

  /** What each (bill, meter) pair has been billed so far. */
  async billedSoFar(client: Queryable, pairs: { billId: string; meterId: string }[]): Promise<BilledSoFar[]> {
    if (!pairs.length) return [];
    // The carried-out state as billed so far: the latest adjustment's re-rated one, else the bill's meter section's.
    const res = await client.query<{ i: number; billed: string; currency: string; carried_out: MeteringState | null }>(
      `SELECT u.i::int AS i, b.currency,
              (COALESCE(bm.total, 0) + COALESCE((SELECT sum(a.amount) FROM bill_adjustments a
                                                  WHERE a.corrects_bill_id = u.bill_id AND a.meter_id = u.meter_id), 0))::text AS billed,
              COALESCE(
                (SELECT adj->'carriedOut'->'rerated' FROM bills later, jsonb_array_elements(later.document->'adjustments') adj
                 WHERE later.account_id = b.account_id AND later.cycle_start > b.cycle_start AND later.kind = 'bill'
                   AND adj->>'correctsBillId' = u.bill_id AND adj->>'meterId' = u.meter_id AND adj ? 'carriedOut'
                 ORDER BY later.closed_at DESC LIMIT 1),
                (SELECT m->'metering'->'carriedOut' FROM jsonb_array_elements(b.document->'meters') m WHERE m->>'meterId' = u.meter_id)
              ) AS carried_out
       FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(bill_id, meter_id, i)
       JOIN bills b ON b.id = u.bill_id
       LEFT JOIN bill_meters bm ON bm.bill_id = u.bill_id AND bm.meter_id = u.meter_id`,
      [pairs.map((p) => p.billId), pairs.map((p) => p.meterId)],
    );
    const out = new Array<BilledSoFar>(pairs.length);
    for (const r of res.rows) out[r.i - 1] = { previouslyBilled: r.billed, currency: r.currency, carriedOut: r.carried_out };
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
      `INSERT INTO bills (id, account_id, cycle_start, cycle_end, billing_run_id, closed_at, currency, subtotal, taxes, adjustments, total, document, content_hash,
                          kind, revision, supersedes)
       SELECT b->>'id', b->>'accountId', (b->'cycle'->>'from')::timestamptz, (b->'cycle'->>'to')::timestamptz, $2, $3::timestamptz, b->>'currency',
              (b->>'subtotal')::numeric, (b->>'taxes')::numeric, (b->>'adjustmentsTotal')::numeric, (b->>'total')::numeric, b, h.hash,
              'bill', COALESCE((b->>'revision')::int, 0), b->>'supersedes'
       FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(b, i)
       JOIN unnest($4::text[]) WITH ORDINALITY AS h(hash, i) USING (i)
       ON CONFLICT ON CONSTRAINT bills_one_per_account_cycle DO NOTHING
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

  async createRun(
    id: string,
    trigger: RunTrigger,
    asOf: number,
    cutoff: number,
    opts: { period: string | null; graceDays: number | null; countAccounts: boolean },
    q: Queryable = this.pool,
  ): Promise<StoredRun> {
    const res = await q.query(
      `INSERT INTO billing_runs (id, trigger, as_of, cutoff, period, grace_days, accounts_total, state)
       VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $7::boolean THEN (SELECT count(*) FROM accounts) END, 'running') RETURNING *`,
      [id, trigger, new Date(asOf).toISOString(), new Date(cutoff).toISOString(), opts.period, opts.graceDays, opts.countAccounts],
    );
    return runFromRow(res.rows[0], []);
  }

  /** Adds a committed batch's counts and failures to a running run. */
  async recordProgress(id: string, step: { accountsDone: number; billsCreated: number; skipped: number; failures: RunFailure[] }): Promise<void> {
    await this.pool.query(
      `WITH f AS (
         INSERT INTO billing_run_failures (run_id, account_id, cycle_start, cycle_end, code, message, details)
         SELECT $1, x->>'accountId', (x->'cycle'->>'from')::timestamptz, (x->'cycle'->>'to')::timestamptz, x->>'code', x->>'message', COALESCE(x->'details', '[]')
         FROM jsonb_array_elements($5::jsonb) x
         ON CONFLICT DO NOTHING)
       UPDATE billing_runs SET accounts_done = accounts_done + $2, bills_created = bills_created + $3, skipped = skipped + $4 WHERE id = $1`,
      [id, step.accountsDone, step.billsCreated, step.skipped, JSON.stringify(step.failures)],
    );
  }

  async finishRun(id: string, state: 'finished' | 'failed', error: string | null): Promise<StoredRun> {
    await this.pool.query('UPDATE billing_runs SET finished_at = now(), state = $2, error = $3 WHERE id = $1', [id, state, error]);
    return (await this.getRun(id))!;
  }

  /** A void's run: one account, its re-bill, finished in the void's transaction. */
  async finishVoidRun(q: Queryable, id: string): Promise<void> {
    await q.query(`UPDATE billing_runs SET finished_at = now(), state = 'finished', accounts_total = 1, accounts_done = 1, bills_created = 1 WHERE id = $1`, [id]);
  }

  /** A run with its failures (at most `failureLimit`, by account). */
  async getRun(id: string, failureLimit = 10_000): Promise<StoredRun | null> {
    const res = await this.pool.query(`SELECT *, now() AS now, (SELECT count(*) FROM billing_run_failures f WHERE f.run_id = billing_runs.id)::int AS failure_count FROM billing_runs WHERE id = $1`, [id]);
    if (!res.rowCount) return null;
    return runFromRow(res.rows[0], await this.failuresOf([id], failureLimit));
  }

  /** Runs, latest first, after the cursor (a run id); each with at most `failureLimit` failures. */
  async listRuns(after: string | null, limit: number, state: RunState | null, failureLimit: number): Promise<StoredRun[]> {
    const res = await this.pool.query(
      `SELECT r.*, now() AS now, (SELECT count(*) FROM billing_run_failures f WHERE f.run_id = r.id)::int AS failure_count FROM billing_runs r
       WHERE ($1::text IS NULL OR (r.started_at, r.id) < (SELECT started_at, id FROM billing_runs WHERE id = $1))
         AND ($3::text IS NULL OR r.state = $3)
       ORDER BY r.started_at DESC, r.id DESC LIMIT $2`,
      [after, limit, state],
    );
    const failures = await this.failuresOf(res.rows.map((r) => r.id), failureLimit);
    return res.rows.map((r) => runFromRow(r, failures));
  }

  private async failuresOf(runIds: string[], perRun: number): Promise<(RunFailure & { runId: string })[]> {
    if (!runIds.length) return [];
    const res = await this.pool.query(
      `SELECT f.* FROM unnest($1::text[]) AS u(run_id)
       CROSS JOIN LATERAL (SELECT * FROM billing_run_failures f WHERE f.run_id = u.run_id ORDER BY account_id LIMIT $2) f`,
      [runIds, perRun],
    );
    return res.rows.map((r) => ({
      runId: r.run_id,
      accountId: r.account_id,
      cycle: r.cycle_start ? { from: isoUtc(ms(r.cycle_start)), to: isoUtc(ms(r.cycle_end)) } : null,
      code: r.code,
      message: r.message,
      ...(r.details?.length ? { details: r.details } : {}),
    }));
  }

  /** Ids of the bills a run created (at most `limit`). */
  async billIdsOfRun(runId: string, limit: number): Promise<string[]> {
    const res = await this.pool.query<{ id: string }>('SELECT id FROM bills WHERE billing_run_id = $1 ORDER BY id LIMIT $2', [runId, limit]);
    return res.rows.map((r) => r.id);
  }

  /** Takes the account's billing lock (waits for a run closing it). */
  async lockAccount(client: Queryable, accountId: string): Promise<void> {
    await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('billing-account:' || $1, 0))`, [accountId]);
  }

  /** The adjustments billed later that corrected a bill (by the bill that carried them, then meter). */
  async adjustmentsOf(client: Queryable, billId: string): Promise<{ billId: string; meterId: string; amount: string }[]> {
    const res = await client.query(
      'SELECT bill_id, meter_id, amount::text AS amount FROM bill_adjustments WHERE corrects_bill_id = $1 ORDER BY bill_id, meter_id',
      [billId],
    );
    return res.rows.map((r) => ({ billId: r.bill_id, meterId: r.meter_id, amount: r.amount }));
  }

  /** Stores a credit note (no meter or adjustment rows: it reverses, it charges nothing). */
  async insertCreditNote(client: Queryable, note: { document: import('./bill-document.js').CreditNoteDocument; contentHash: string }, revision: number, runId: string, closedAt: number): Promise<void> {
    const d = note.document;
    await client.query(
      `INSERT INTO bills (id, account_id, cycle_start, cycle_end, billing_run_id, closed_at, currency, subtotal, taxes, adjustments, total, document, content_hash,
                          kind, revision, reverses)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'credit_note', $14, $15)`,
      [d.id, d.accountId, d.cycle.from, d.cycle.to, runId, new Date(closedAt).toISOString(), d.currency, d.subtotal, d.taxes, d.adjustmentsTotal, d.total,
       JSON.stringify(d), note.contentHash, revision, d.reverses],
    );
  }

  async accountExists(id: string): Promise<boolean> {
    return (await this.pool.query('SELECT 1 FROM accounts WHERE id = $1', [id])).rowCount === 1;
  }

  async getBill(id: string): Promise<StoredBill | null> {
    const res = await this.pool.query(
      `SELECT b.document, b.content_hash, b.kind, b.revision, r.id AS rebill_id, c.id AS credit_id
       FROM bills b LEFT JOIN bills r ON r.supersedes = b.id LEFT JOIN bills c ON c.reverses = b.id
       WHERE b.id = $1`,
      [id],
    );
    if (!res.rowCount) return null;
    const r = res.rows[0];
    return { document: r.document, contentHash: r.content_hash, kind: r.kind, revision: r.revision, voidedBy: r.rebill_id ? { creditNoteId: r.credit_id, rebillId: r.rebill_id } : null };
  }

  /**
   * An account's bills and credit notes by cycle start, then id (a bill, its credit note, its re-bill),
   * after the cursor (a cycle start, and optionally the last id listed of that cycle).
   */
  async listBills(accountId: string, after: number | null, afterId: string | null, limit: number): Promise<BillSummary[]> {
    const res = await this.pool.query(
      `SELECT b.id, b.kind, b.revision, b.supersedes, b.reverses, b.account_id, b.document->'cycle' AS cycle, b.document->>'billDate' AS bill_date,
              b.closed_at, b.currency, b.document->>'subtotal' AS subtotal, b.document->>'taxes' AS taxes,
              b.document->>'adjustmentsTotal' AS adjustments_total, b.document->>'total' AS total, b.content_hash,
              r.id AS rebill_id, c.id AS credit_id
       FROM bills b LEFT JOIN bills r ON r.supersedes = b.id LEFT JOIN bills c ON c.reverses = b.id
       WHERE b.account_id = $1
         AND ($2::timestamptz IS NULL OR b.cycle_start > $2::timestamptz OR (b.cycle_start = $2::timestamptz AND $3::text IS NOT NULL AND b.id > $3::text))
       ORDER BY b.cycle_start, b.id LIMIT $4`,
      [accountId, after === null ? null : new Date(after).toISOString(), afterId, limit],
    );
    return res.rows.map((r) => ({
      id: r.id,
      kind: r.kind,
      revision: r.revision,
      status: r.rebill_id ? 'voided' : 'issued',
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
      ...(r.supersedes ? { supersedes: r.supersedes } : {}),
      ...(r.reverses ? { reverses: r.reverses } : {}),
      ...(r.rebill_id ? { voidedBy: { creditNoteId: r.credit_id, rebillId: r.rebill_id } } : {}),
    }));
  }
}

function runFromRow(r: Record<string, any>, failures: (RunFailure & { runId: string })[]): StoredRun {
  const own = failures.filter((f) => f.runId === r.id).map(({ runId: _, ...f }) => f);
  const started = ms(r.started_at);
  const finished = r.finished_at ? ms(r.finished_at) : null;
  return {
    id: r.id,
    trigger: r.trigger,
    state: r.state,
    asOf: iso(r.as_of),
    cutoff: iso(r.cutoff),
    cyclesEndingIn: r.period ?? null,
    graceDays: r.grace_days ?? null,
    startedAt: iso(r.started_at),
    finishedAt: r.finished_at ? iso(r.finished_at) : null,
    durationMs: Math.max(0, (finished ?? (r.now ? ms(r.now) : started)) - started),
    progress: { accountsTotal: r.accounts_total ?? null, accountsDone: r.accounts_done },
    billsCreated: r.bills_created,
    skipped: r.skipped,
    failureCount: r.failure_count ?? own.length,
    failures: own,
    error: r.error ?? null,
  };
}
