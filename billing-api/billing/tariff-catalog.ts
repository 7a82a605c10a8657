/**
 * The tariff timelines of many meters in one round trip (assignments and the versions of their tariffs),
 * with the version documents cached by (id, version): a stored version never changes, so the cache never
 * goes stale, and the same document object is handed to the rating core every time (it compiles a tariff
 * once per object). New versions and new assignments are seen at once: they are read on every call.
 */
import type { Pool } from '../../common/db.js';
import type { Queryable } from '../queryable.js';
import { resolveTariffTimeline, type TariffAssignment, type TariffDocument, type TariffTimelineEntry } from '../../rating/index.js';

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

export class TariffCatalog {
  private readonly documents = new Map<string, TariffDocument>();
  private readonly refs = new WeakMap<TariffDocument, TariffVersionRef>();

  constructor(private readonly pool: Pool) {}

  /** Timelines of the given meters (meters without an assignment get an empty timeline). */
  async forMeters(meterIds: string[], q: Queryable = this.pool): Promise<Map<string, MeterTariffs>> {
    const result = new Map<string, MeterTariffs>();
    if (!meterIds.length) return result;
    const res = await q.query<{ meter_id: string; tariff_id: string; from_ms: number | null; versions: number[] }>({
      name: 'tariff-timelines',
      text: `SELECT mt.meter_id, mt.tariff_id,
              CASE WHEN mt.effective_from = '-infinity' THEN NULL ELSE (extract(epoch FROM mt.effective_from) * 1000)::float8 END AS from_ms,
              ARRAY(SELECT t.version FROM tariffs t WHERE t.id = mt.tariff_id ORDER BY t.version) AS versions
       FROM meter_tariffs mt WHERE mt.meter_id = ANY($1::text[])
       ORDER BY mt.meter_id, mt.effective_from`,
      values: [meterIds],
    });
    await this.load(res.rows.flatMap((r) => r.versions.map((v) => ({ id: r.tariff_id, version: v }))), q);
    const byMeter = new Map<string, { assignments: TariffAssignment[]; versions: Map<string, number[]> }>();
    for (const r of res.rows) {
      let entry = byMeter.get(r.meter_id);
      if (!entry) byMeter.set(r.meter_id, (entry = { assignments: [], versions: new Map() }));
      entry.assignments.push({ tariffId: r.tariff_id, effectiveFrom: r.from_ms === null ? Number.NEGATIVE_INFINITY : Number(r.from_ms) });
      entry.versions.set(r.tariff_id, r.versions);
    }
    for (const meterId of meterIds) {
      const entry = byMeter.get(meterId);
      if (!entry) {
        result.set(meterId, { timeline: [], key: 'none', hasAssignment: false });
        continue;
      }
      const documents = [...entry.versions].flatMap(([id, versions]) => versions.map((v) => this.documents.get(docKey(id, v))!));
      result.set(meterId, {
        timeline: resolveTariffTimeline(entry.assignments, documents),
        key: JSON.stringify([entry.assignments.map((a) => [a.tariffId, a.effectiveFrom]), [...entry.versions]]),
        hasAssignment: true,
      });
    }
    return result;
  }

  /** The stored version of a document this catalog handed out. */
  versionOf(document: TariffDocument): TariffVersionRef {
    const ref = this.refs.get(document);
    if (!ref) throw new Error(`tariff document ${document.id} was not loaded by this catalog`);
    return ref;
  }

  private async load(wanted: { id: string; version: number }[], q: Queryable): Promise<void> {
    const missing = wanted.filter((w) => !this.documents.has(docKey(w.id, w.version)));
    if (!missing.length) return;
    const res = await q.query<{ id: string; version: number; effective_from: Date | null; document: TariffDocument }>(
      `SELECT t.id, t.version, t.effective_from, t.document
       FROM tariffs t JOIN unnest($1::text[], $2::int[]) AS u(id, version) ON u.id = t.id AND u.version = t.version`,
      [missing.map((m) => m.id), missing.map((m) => m.version)],
    );
    for (const r of res.rows) {
      const key = docKey(r.id, r.version);
      if (this.documents.has(key)) continue;
      this.documents.set(key, r.document);
      this.refs.set(r.document, { tariffId: r.id, version: r.version, effectiveFrom: r.effective_from ? r.effective_from.toISOString() : null });
    }
  }
}

const docKey = (id: string, version: number) => `${id}\u0000${version}`;
