/**
 * Bills across accounts, in the order they were closed (GET /v1/bills), paged by (closed_at, id) on the
 * index bills_closed_idx (migration 020). Reads the stored bills only; the bills themselves are billing's.
 */
import type { Pool } from '../../common/db.js';

export interface BillListItem {
  id: string;
  accountId: string;
  cycle: unknown;
  billDate: string | null;
  closedAt: string;
  currency: string;
  subtotal: string | null;
  taxes: string | null;
  adjustmentsTotal: string | null;
  total: string | null;
  contentHash: string;
  billingRunId: string;
}

export interface BillListFilter {
  /** closedAt in [closedFrom, closedTo), epoch ms */
  closedFrom?: number;
  closedTo?: number;
  accountId?: string;
  /** paging cursor: the last item's closedAt and id */
  after?: { closedAt: string; id: string };
  limit: number;
}

export class BillListRepository {
  constructor(private readonly pool: Pool) {}

  /** The page and the cursor after its last item (closed_at to the microsecond, as stored). */
  async list(filter: BillListFilter): Promise<{ items: BillListItem[]; cursor: string | null }> {
    const res = await this.pool.query(
      `SELECT id, account_id, document->'cycle' AS cycle, document->>'billDate' AS bill_date, closed_at, currency,
              document->>'subtotal' AS subtotal, document->>'taxes' AS taxes, document->>'adjustmentsTotal' AS adjustments_total,
              document->>'total' AS total, content_hash, billing_run_id,
              to_char(closed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS closed_at_exact
       FROM bills
       WHERE closed_at >= COALESCE($1::timestamptz, '-infinity') AND closed_at < COALESCE($2::timestamptz, 'infinity')
         AND ($3::text IS NULL OR account_id = $3)
         AND ($4::timestamptz IS NULL OR (closed_at, id) > ($4::timestamptz, $5::text))
       ORDER BY closed_at, id LIMIT $6`,
      [
        filter.closedFrom === undefined ? null : new Date(filter.closedFrom),
        filter.closedTo === undefined ? null : new Date(filter.closedTo),
        filter.accountId ?? null,
        filter.after?.closedAt ?? null,
        filter.after?.id ?? null,
        filter.limit,
      ],
    );
    const items = res.rows.map((r) => ({
      id: r.id,
      accountId: r.account_id,
      cycle: r.cycle,
      billDate: r.bill_date,
      closedAt: (r.closed_at as Date).toISOString(),
      currency: r.currency,
      subtotal: r.subtotal,
      taxes: r.taxes,
      adjustmentsTotal: r.adjustments_total,
      total: r.total,
      contentHash: r.content_hash,
      billingRunId: r.billing_run_id,
    }));
    const last = res.rows[res.rows.length - 1];
    return { items, cursor: last ? `${last.closed_at_exact},${last.id}` : null };
  }
}
