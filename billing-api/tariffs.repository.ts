/**
 * Tariff documents (versioned, immutable once stored) and meter tariff assignments (effective dates).
 * A version is identified by (id, effectiveFrom); versions and assignments are append-only in time, so
 * the rating of a past window never changes because of a later edit.
 */
import { inTransaction, type Pool } from '../common/db.js';
import type { TariffAssignment, TariffDocument } from '../rating/index.js';

export interface StoredTariffVersion {
  version: number;
  effectiveFrom: string | null;
  source: 'native' | 'urdb';
  createdAt: string;
  document: TariffDocument;
}

export class TariffsRepository {
  /**
   * Documents by (id, version). A stored version is never changed or deleted (versions are only appended,
   * see insertVersion), so an entry can never go stale, in this process or because of another one: which
   * versions exist, and which tariffs a meter is assigned, are read from the database on every request;
   * only the immutable document body is reused. Handing the rating core the same object every time also
   * lets it validate and compile a tariff once (it caches compiled tariffs by document identity). Bounded
   * by the number of stored tariff versions.
   */
  private readonly versionCache = new Map<string, TariffDocument>();

  constructor(private readonly pool: Pool) {}

  /** The documents of the given versions (cached, see versionCache), in the order asked; unknown versions are left out. */
  async versionDocuments(wanted: { id: string; version: number }[]): Promise<TariffDocument[]> {
    const missing = wanted.filter((w) => !this.versionCache.has(versionKey(w.id, w.version)));
    if (missing.length) {
      const res = await this.pool.query<{ id: string; version: number; document: TariffDocument }>({
        name: 'tariff-version-documents',
        text: `SELECT t.id, t.version, t.document FROM tariffs t JOIN unnest($1::text[], $2::int[]) AS u(id, version) ON u.id = t.id AND u.version = t.version`,
        values: [missing.map((m) => m.id), missing.map((m) => m.version)],
      });
      for (const r of res.rows) if (!this.versionCache.has(versionKey(r.id, r.version))) this.versionCache.set(versionKey(r.id, r.version), r.document);
    }
    return wanted.flatMap((w) => this.versionCache.get(versionKey(w.id, w.version)) ?? []);
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

  /** Every version of every tariff named, for a meter's timeline. */
  async documents(ids: string[]): Promise<TariffDocument[]> {
    if (!ids.length) return [];
    const res = await this.pool.query({ name: 'tariff-documents', text: 'SELECT document FROM tariffs WHERE id = ANY($1::text[]) ORDER BY id, version', values: [ids] });
    return res.rows.map((r) => r.document);
  }

  /**
   * Appends a version. Returns null when a version with the same effectiveFrom exists, or one with a later
   * (or absent) effectiveFrom — history is never rewritten.
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

  async assignments(meterId: string): Promise<TariffAssignment[]> {
    const res = await this.pool.query({
      name: 'tariff-assignments',
      text: `SELECT tariff_id, CASE WHEN effective_from = '-infinity' THEN NULL ELSE (extract(epoch FROM effective_from) * 1000)::float8 END AS from_ms
             FROM meter_tariffs WHERE meter_id = $1 ORDER BY effective_from`,
      values: [meterId],
    });
    return res.rows.map((r) => ({ tariffId: r.tariff_id, effectiveFrom: r.from_ms === null ? Number.NEGATIVE_INFINITY : Number(r.from_ms) }));
  }

  /** Adds an assignment; refused (returns a reason) unless it is later than the meter's latest one. */
  async assign(meterId: string, tariffId: string, effectiveFrom: number): Promise<string | null> {
    return inTransaction(this.pool, async (client) => {
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`meter-tariff:${meterId}`]);
      const latest = await client.query(
        `SELECT max(effective_from)::text AS latest, COALESCE(max(effective_from) >= $2, false) AS blocked FROM meter_tariffs WHERE meter_id = $1`,
        [meterId, new Date(effectiveFrom)],
      );
      if (latest.rows[0].blocked) {
        return `effectiveFrom must be later than the meter's latest assignment (${latest.rows[0].latest}): history is never repriced`;
      }
      await client.query('INSERT INTO meter_tariffs (meter_id, effective_from, tariff_id) VALUES ($1, $2, $3)', [meterId, new Date(effectiveFrom), tariffId]);
      return null;
    });
  }
}

const versionKey = (id: string, version: number) => `${id}\u0000${version}`;
