/**
 * Tariff documents (versioned, immutable once stored) and meter tariff assignments (effective dates), with
 * the one cache of stored versions and the one query of assignment timelines.
 *
 * A version is identified by (id, version); versions and assignments are append-only in time, so the rating
 * of a past window never changes because of a later edit. A stored version is never changed or deleted, so
 * a cached document can never go stale, in this process or because of another one: which versions exist and
 * which tariffs a meter is assigned are read from the database on every call; only the immutable document
 * body is reused. Handing the rating core the same object every time also lets it validate and compile a
 * tariff once (it caches compiled tariffs by document identity). Bounded by the number of stored versions.
 */
import { inTransaction, type Pool, type PoolClient } from '../../common/db.js';
import { resolveTariffTimeline, type TariffAssignment, type TariffDocument, type TariffTimelineEntry } from '../../rating/index.js';
import type { Queryable } from '../queryable.js';
import type { Assignment, Span } from './assignment-changes.js';

/** A closed bill covering part of a meter's history, as a refusal names it. */
export interface BilledCycle { billId: string; cycleStart: string; cycleEnd: string }

const pgInstant = (t: number) => (t === Number.NEGATIVE_INFINITY ? '-infinity' : t === Number.POSITIVE_INFINITY ? 'infinity' : new Date(t).toISOString());

export interface StoredTariffVersion {
  version: number;
  effectiveFrom: string | null;
  source: 'native' | 'urdb';
  createdAt: string;
  document: TariffDocument;
}

/** A tariff version as bills name it. */
export interface TariffVersionRef {
  tariffId: string;
  version: number;
  /** the version's effectiveFrom (ISO 8601 UTC), null for a version without one */
  effectiveFrom: string | null;
}

export interface MeterTariffs {
  timeline: TariffTimelineEntry[];
  /** identifies the assignments and versions behind the timeline (changes when either changes) */
  key: string;
  /** false when the meter has no tariff assignment */
  hasAssignment: boolean;
}

/**
 * The one query of assignment timelines: per assignment of the meters matching `meterCondition` (an SQL
 * condition on `mt`, the meter_tariffs row), its tariff, its start in epoch ms (NULL for the first
 * assignment, which covers all history) and the version numbers of its tariff; in effective order.
 */
export function assignmentTimelineSql(meterCondition: string): string {
  return `SELECT mt.meter_id, mt.tariff_id, mt.effective_from,
              CASE WHEN mt.effective_from = '-infinity' THEN NULL ELSE (extract(epoch FROM mt.effective_from) * 1000)::float8 END AS from_ms,
              ARRAY(SELECT t.version FROM tariffs t WHERE t.id = mt.tariff_id ORDER BY t.version) AS versions
       FROM meter_tariffs mt WHERE ${meterCondition}
       ORDER BY mt.meter_id, mt.effective_from`;
}

/** One assignment as the timeline query returns it: [tariffId, effectiveFrom ms or null, versions of that tariff]. */
export type AssignmentEntry = [tariffId: string, fromMs: number | null, versions: number[]];

const docKey = (id: string, version: number) => `${id}\u0000${version}`;

export class TariffsRepository {
  private readonly documents = new Map<string, TariffDocument>();
  private readonly refs = new WeakMap<TariffDocument, TariffVersionRef>();

  constructor(private readonly pool: Pool) {}

  /** Timelines of the given meters in one round trip (meters without an assignment get an empty timeline). */
  async forMeters(meterIds: string[], q: Queryable = this.pool): Promise<Map<string, MeterTariffs>> {
    const result = new Map<string, MeterTariffs>();
    if (!meterIds.length) return result;
    const res = await q.query<{ meter_id: string; tariff_id: string; from_ms: number | null; versions: number[] }>({
      name: 'tariff-timelines',
      text: assignmentTimelineSql('mt.meter_id = ANY($1::text[])'),
      values: [meterIds],
    });
    const byMeter = new Map<string, AssignmentEntry[]>();
    for (const r of res.rows) {
      const entries = byMeter.get(r.meter_id) ?? [];
      entries.push([r.tariff_id, r.from_ms, r.versions]);
      byMeter.set(r.meter_id, entries);
    }
    await this.load(res.rows.flatMap((r) => r.versions.map((version) => ({ id: r.tariff_id, version }))), q);
    for (const meterId of meterIds) result.set(meterId, this.timelineOf(byMeter.get(meterId) ?? []));
    return result;
  }

  /**
   * A meter's timeline from its assignment entries (as the timeline query returns them), with the version
   * documents from the cache: call `versionDocuments` (or `forMeters`) for them first.
   */
  timelineOf(entries: AssignmentEntry[]): MeterTariffs {
    if (!entries.length) return { timeline: [], key: 'none', hasAssignment: false };
    const assignments: TariffAssignment[] = entries.map(([tariffId, fromMs]) => ({ tariffId, effectiveFrom: fromMs === null ? Number.NEGATIVE_INFINITY : Number(fromMs) }));
    const versions = new Map<string, number[]>();
    for (const [tariffId, , numbers] of entries) versions.set(tariffId, numbers);
    const documents = [...versions].flatMap(([id, numbers]) => numbers.flatMap((v) => this.documents.get(docKey(id, v)) ?? []));
    return {
      timeline: resolveTariffTimeline(assignments, documents),
      key: JSON.stringify([assignments.map((a) => [a.tariffId, a.effectiveFrom]), [...versions]]),
      hasAssignment: true,
    };
  }

  /** The documents of the given versions (cached), in the order asked; unknown versions are left out. */
  async versionDocuments(wanted: { id: string; version: number }[], q: Queryable = this.pool): Promise<TariffDocument[]> {
    await this.load(wanted, q);
    return wanted.flatMap((w) => this.documents.get(docKey(w.id, w.version)) ?? []);
  }

  /** The stored version of a document this repository handed out. */
  versionOf(document: TariffDocument): TariffVersionRef {
    const ref = this.refs.get(document);
    if (!ref) throw new Error(`tariff document ${document.id} was not loaded by this repository`);
    return ref;
  }

  private async load(wanted: { id: string; version: number }[], q: Queryable): Promise<void> {
    const missing = wanted.filter((w) => !this.documents.has(docKey(w.id, w.version)));
    if (!missing.length) return;
    const res = await q.query<{ id: string; version: number; effective_from: Date | null; document: TariffDocument }>({
      name: 'tariff-versions-by-number',
      text: `SELECT t.id, t.version, t.effective_from, t.document
             FROM tariffs t JOIN unnest($1::text[], $2::int[]) AS u(id, version) ON u.id = t.id AND u.version = t.version`,
      values: [missing.map((m) => m.id), missing.map((m) => m.version)],
    });
    for (const r of res.rows) {
      const key = docKey(r.id, r.version);
      if (this.documents.has(key)) continue;
      this.documents.set(key, r.document);
      this.refs.set(r.document, { tariffId: r.id, version: r.version, effectiveFrom: r.effective_from ? r.effective_from.toISOString() : null });
    }
  }

  async versions(id: string): Promise<StoredTariffVersion[]> {
    const res = await this.pool.query(
      'SELECT version, effective_from, source, created_at, document FROM tariffs WHERE id = $1 ORDER BY version',
      [id],
    );
    return res.rows.map((r) => ({
      version: r.version,
      effectiveFrom: r.effective_from ? r.effective_from.toISOString() : null,
      source: r.source,
      createdAt: r.created_at.toISOString(),
      document: r.document,
    }));
  }

  /**
   * Appends a version. Returns a conflict when a version with the same effectiveFrom exists, or one with a
   * later (or absent) effectiveFrom: history is never rewritten.
   */
  async insertVersion(document: TariffDocument, source: 'native' | 'urdb', sourceDocument: unknown): Promise<StoredTariffVersion | { conflict: string }> {
    return inTransaction(this.pool, async (client) => {
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`tariff:${document.id}`]);
      const latest = await client.query(
        'SELECT version, effective_from FROM tariffs WHERE id = $1 ORDER BY version DESC LIMIT 1',
        [document.id],
      );
      const effectiveFrom = document.effectiveFrom ? new Date(Date.parse(document.effectiveFrom)) : null;
      if (latest.rowCount) {
        const previous: Date | null = latest.rows[0].effective_from;
        if (!effectiveFrom || !previous || effectiveFrom <= previous) {
          return {
            conflict: `tariff "${document.id}" exists; a new version needs an effectiveFrom later than ${previous ? previous.toISOString() : 'the first version (which has none)'}`,
          };
        }
      }
      const version = latest.rowCount ? latest.rows[0].version + 1 : 1;
      const res = await client.query(
        `INSERT INTO tariffs (id, version, effective_from, source, document, source_document)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING created_at`,
        [document.id, version, effectiveFrom, source, JSON.stringify(document), sourceDocument === undefined ? null : JSON.stringify(sourceDocument)],
      );
      return { version, effectiveFrom: effectiveFrom?.toISOString() ?? null, source, createdAt: res.rows[0].created_at.toISOString(), document };
    });
  }

  async list(limit: number, after: string | undefined) {
    const res = await this.pool.query(
      `SELECT DISTINCT ON (id) id, version, effective_from, source, document->>'name' AS name, document->>'timeZone' AS time_zone
       FROM tariffs WHERE ($1::text IS NULL OR id > $1) ORDER BY id, version DESC LIMIT $2`,
      [after ?? null, limit],
    );
    return res.rows.map((r) => ({
      id: r.id as string,
      name: r.name as string,
      timeZone: r.time_zone as string,
      latestVersion: r.version as number,
      effectiveFrom: r.effective_from ? (r.effective_from as Date).toISOString() : null,
      source: r.source as string,
    }));
  }

  /** A meter's assignments in effective order (the timeline query). */
  async assignments(meterId: string): Promise<TariffAssignment[]> {
    const res = await this.pool.query<{ tariff_id: string; from_ms: number | null }>({
      name: 'tariff-assignments-of-meter',
      text: assignmentTimelineSql('mt.meter_id = $1'),
      values: [meterId],
    });
    return res.rows.map((r) => ({ tariffId: r.tariff_id, effectiveFrom: r.from_ms === null ? Number.NEGATIVE_INFINITY : Number(r.from_ms) }));
  }

  /**
   * Runs `fn` in one transaction holding the meter's assignment lock (corrections of one meter run one at a
   * time) and then its account's billing lock, the one a close takes: a correction waits for a close of the
   * account in progress (and then sees its bill), and a close skips the account while a correction holds it,
   * so no bill is priced with an assignment that a correction is replacing.
   */
  meterAssignmentsTransaction<T>(meterId: string, fn: (tx: PoolClient) => Promise<T>): Promise<T> {
    return inTransaction(this.pool, async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`meter-tariff:${meterId}`]);
      await tx.query(`SELECT pg_advisory_xact_lock(hashtextextended('billing-account:' || account_id, 0)) FROM meters WHERE id = $1`, [meterId]);
      return fn(tx);
    });
  }

  /** A meter's assignments with their ids, in effective order. */
  async assignmentRows(meterId: string, q: Queryable = this.pool): Promise<Assignment[]> {
    const res = await q.query<{ id: string; tariff_id: string; from_ms: number | null }>(
      `SELECT id::text, tariff_id, CASE WHEN effective_from = '-infinity' THEN NULL ELSE (extract(epoch FROM effective_from) * 1000)::float8 END AS from_ms
       FROM meter_tariffs WHERE meter_id = $1 ORDER BY effective_from`,
      [meterId],
    );
    return res.rows.map((r) => ({ id: r.id, tariffId: r.tariff_id, effectiveFrom: r.from_ms === null ? Number.NEGATIVE_INFINITY : Number(r.from_ms) }));
  }

  /** When the tariff's first version takes effect (-Infinity: from the beginning), or null when the tariff does not exist. */
  async firstVersionStart(tariffId: string, q: Queryable = this.pool): Promise<number | null> {
    const res = await q.query<{ from_ms: number | null }>(
      `SELECT (extract(epoch FROM effective_from) * 1000)::float8 AS from_ms FROM tariffs WHERE id = $1 ORDER BY version LIMIT 1`,
      [tariffId],
    );
    if (!res.rowCount) return null;
    const fromMs = res.rows[0].from_ms;
    return fromMs === null ? Number.NEGATIVE_INFINITY : Number(fromMs);
  }

  /**
   * Current closed bills (not voided, not credit notes) whose part for this meter covers any of the spans
   * (bill_meters by meter), oldest first.
   */
  async billedCycles(meterId: string, spans: Span[], q: Queryable = this.pool): Promise<BilledCycle[]> {
    if (!spans.length) return [];
    const res = await q.query(
      `SELECT DISTINCT bm.bill_id, bm.cycle_start, bm.cycle_end
       FROM bill_meters bm JOIN unnest($2::timestamptz[], $3::timestamptz[]) AS s(f, t) ON bm.cycle_start < s.t AND bm.cycle_end > s.f
         JOIN bills b ON b.id = bm.bill_id
       WHERE bm.meter_id = $1 AND b.kind = 'bill' AND NOT EXISTS (SELECT 1 FROM bills v WHERE v.supersedes = b.id)
       ORDER BY bm.cycle_start`,
      [meterId, spans.map((s) => pgInstant(s.from)), spans.map((s) => pgInstant(s.to))],
    );
    return res.rows.map((r) => ({ billId: r.bill_id, cycleStart: (r.cycle_start as Date).toISOString(), cycleEnd: (r.cycle_end as Date).toISOString() }));
  }

  /** Inserts an assignment; its id. */
  async insertAssignment(q: Queryable, meterId: string, tariffId: string, effectiveFrom: number): Promise<string> {
    const res = await q.query('INSERT INTO meter_tariffs (meter_id, effective_from, tariff_id) VALUES ($1, $2, $3) RETURNING id::text', [meterId, pgInstant(effectiveFrom), tariffId]);
    return res.rows[0].id;
  }

  async updateAssignment(q: Queryable, id: string, tariffId: string, effectiveFrom: number): Promise<void> {
    await q.query('UPDATE meter_tariffs SET tariff_id = $2, effective_from = $3 WHERE id = $1', [id, tariffId, pgInstant(effectiveFrom)]);
  }

  async deleteAssignment(q: Queryable, id: string): Promise<void> {
    await q.query('DELETE FROM meter_tariffs WHERE id = $1', [id]);
  }
}
