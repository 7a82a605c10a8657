/**
 * The trail of corrections (table audit_events, migration 020): one row per change made through the API to
 * what is provisioned, written with the change in the same transaction, never changed afterwards. An event
 * names who made it (the API token's id), what (an action on a subject), the subject's state before and
 * after, and when.
 */
import type { Pool } from '../../common/db.js';
import type { Queryable } from '../queryable.js';

export type SubjectType = 'account' | 'meter' | 'tariff_assignment' | 'concentrator' | 'device' | 'token';

export interface AuditEventInput {
  /** the API token's id (`bootstrap-admin` for the bootstrap token) */
  actor: string;
  /** `<subject>.<verb>`: account.created, account.updated, meter.updated, tariff_assignment.deleted ... */
  action: string;
  subjectType: SubjectType;
  subjectId: string;
  /** the account the subject belongs to; null for installation-wide subjects */
  accountId: string | null;
  before: unknown;
  after: unknown;
}

export interface AuditEvent extends AuditEventInput {
  id: string;
  at: string;
}

export interface AuditEventFilter {
  accountId?: string;
  subjectType?: SubjectType;
  subjectId?: string;
  /** paging cursor: the id of the last event of the previous page */
  after?: string;
  limit: number;
}

export class AuditEventsRepository {
  constructor(private readonly pool: Pool) {}

  /** Records an event on `q` (the change's transaction). */
  async record(q: Queryable, event: AuditEventInput): Promise<void> {
    await q.query(
      `INSERT INTO audit_events (actor, action, subject_type, subject_id, account_id, before, after) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [event.actor, event.action, event.subjectType, event.subjectId, event.accountId, jsonOrNull(event.before), jsonOrNull(event.after)],
    );
  }

  /** Events in the order they were recorded (by id), after the cursor; each filter is served by an index. */
  async list(filter: AuditEventFilter): Promise<AuditEvent[]> {
    const res = await this.pool.query(
      `SELECT id::text, at, actor, action, subject_type, subject_id, account_id, before, after
       FROM audit_events
       WHERE ($1::text IS NULL OR account_id = $1) AND ($2::text IS NULL OR subject_type = $2) AND ($3::text IS NULL OR subject_id = $3)
         AND id > COALESCE($4::bigint, 0)
       ORDER BY audit_events.id LIMIT $5`,
      [filter.accountId ?? null, filter.subjectType ?? null, filter.subjectId ?? null, filter.after ?? null, filter.limit],
    );
    return res.rows.map((r) => ({
      id: r.id,
      at: (r.at as Date).toISOString(),
      actor: r.actor,
      action: r.action,
      subjectType: r.subject_type,
      subjectId: r.subject_id,
      accountId: r.account_id,
      before: r.before,
      after: r.after,
    }));
  }
}

const jsonOrNull = (v: unknown) => (v === undefined || v === null ? null : JSON.stringify(v));
