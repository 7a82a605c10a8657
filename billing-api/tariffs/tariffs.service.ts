/**
 * Tariffs: storing versions (native documents and URDB imports), reading them, and assigning tariffs to
 * meters from an instant on. Billed history is never repriced: a new version needs a later effectiveFrom; a
 * new assignment a later start than the meter's latest; a correction (moving, re-pointing or removing an
 * assignment) only where no closed bill covers the time whose tariff it changes. An assignment never starts
 * before its tariff's first version (that time would have no tariff in effect and could never be billed).
 * Every change of assignments is an audit event naming who made it.
 */
import { importUrdb, type TariffDocument, type UrdbImportOptions, type UrdbIssue } from '../../rating/index.js';
import { Conflict, InvalidInput, NotFound } from '../domain-errors.js';
import type { MeterRow } from '../provisioning/provisioning.repository.js';
import type { MeterLookup } from '../readings/readings.service.js';
import type { AuditEventsRepository } from '../provisioning/audit-events.repository.js';
import type { PoolClient } from '../../common/db.js';
import { changedSpans, instantText, type Assignment } from './assignment-changes.js';
import type { StoredTariffVersion, TariffsRepository } from './tariffs.repository.js';

/** A meter's assignments after a correction, and the closed bills to void and re-bill (only with `rebill`). */
export interface Correction {
  assignments: Assignment[];
  rebill: string[];
}

/** An assignment as events and answers show it: effectiveFrom ISO 8601 UTC, null for all earlier history. */
const assignmentState = (a: Assignment) => ({ id: a.id, tariffId: a.tariffId, effectiveFrom: Number.isFinite(a.effectiveFrom) ? new Date(a.effectiveFrom).toISOString() : null });

export class TariffsService {
  constructor(
    private readonly repo: TariffsRepository,
    private readonly meters: MeterLookup,
    private readonly audit: AuditEventsRepository,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Stores a document as the tariff's next version; Conflict when its effectiveFrom is not later than the latest. */
  async store(document: TariffDocument, source: 'native' | 'urdb', sourceDocument: unknown): Promise<{ id: string } & StoredTariffVersion> {
    const stored = await this.repo.insertVersion(document, source, sourceDocument);
    if ('conflict' in stored) throw new Conflict(stored.conflict);
    return { id: document.id, ...stored };
  }

  /**
   * Imports one URDB rate and stores it; throws the rating core's UrdbImportError (every unsupported feature,
   * each naming its field) and answers the warnings of data that looks wrong but can be rated as stated.
   */
  async importUrdb(rate: unknown, options: Omit<UrdbImportOptions, 'asOf'>): Promise<{ id: string } & StoredTariffVersion & { warnings: UrdbIssue[] }> {
    const { tariff, warnings } = importUrdb(rate, { ...options, asOf: this.clock() });
    return { ...(await this.store(tariff, 'urdb', rate)), warnings };
  }

  list(limit: number, after: string | undefined) {
    return this.repo.list(limit, after);
  }

  /** Every version of a tariff, oldest first; NotFound when there is none. */
  async versions(id: string): Promise<StoredTariffVersion[]> {
    const versions = await this.repo.versions(id);
    if (!versions.length) throw new NotFound(`tariff "${id}"`);
    return versions;
  }

  /** The meter whose assignments are asked for; NotFound when it does not exist. */
  async meter(id: string): Promise<MeterRow> {
    const meter = await this.meters.getMeter(id);
    if (!meter) throw new NotFound(`meter "${id}"`);
    return meter;
  }

  /**
   * Assigns a tariff to a meter from `effectiveFrom` on (later than the meter's latest assignment); answers
   * the meter's assignments.
   */
  async assign(meterId: string, tariffId: string, effectiveFrom: number, actor: string): Promise<Assignment[]> {
    const done = await this.correct(meterId, actor, 'tariff_assignment.created', false, async (tx, before) => {
      const latest = before[before.length - 1];
      if (latest && latest.effectiveFrom >= effectiveFrom) {
        throw new Conflict(
          `effectiveFrom must be later than the meter's latest assignment (${instantText(latest.effectiveFrom)}, id ${latest.id}); ` +
            `to change that one, PATCH /v1/meters/${meterId}/tariff-assignments/${latest.id}`,
        );
      }
      const id = await this.repo.insertAssignment(tx, meterId, tariffId, effectiveFrom);
      const created = { id, tariffId, effectiveFrom };
      return { after: [...before, created], subject: created };
    });
    return done.assignments;
  }

  /**
   * Moves an assignment, points it at another tariff, or both. With `rebill`, closed bills covering the time
   * it reprices do not refuse it: they are answered, to be voided and re-billed (`BillingService.voidBill`).
   */
  async correctAssignment(meterId: string, assignmentId: string, changes: { tariffId?: string; effectiveFrom?: number }, actor: string, rebill = false): Promise<Correction> {
    return this.correct(meterId, actor, 'tariff_assignment.updated', rebill, async (tx, before) => {
      const current = this.assignmentOf(meterId, before, assignmentId);
      const moved = { ...current, tariffId: changes.tariffId ?? current.tariffId, effectiveFrom: changes.effectiveFrom ?? current.effectiveFrom };
      const clash = before.find((a) => a.id !== assignmentId && a.effectiveFrom === moved.effectiveFrom);
      if (clash) throw new Conflict(`assignment ${clash.id} of meter "${meterId}" already starts at ${instantText(clash.effectiveFrom)}`);
      await this.repo.updateAssignment(tx, assignmentId, moved.tariffId, moved.effectiveFrom);
      const after = before.map((a) => (a.id === assignmentId ? moved : a)).sort((a, b) => a.effectiveFrom - b.effectiveFrom);
      return { after, subject: moved, previous: current };
    });
  }

  /** Removes an assignment: the one before it (if any) then covers its time. `rebill` as for a correction. */
  async removeAssignment(meterId: string, assignmentId: string, actor: string, rebill = false): Promise<Correction> {
    return this.correct(meterId, actor, 'tariff_assignment.deleted', rebill, async (tx, before) => {
      const current = this.assignmentOf(meterId, before, assignmentId);
      await this.repo.deleteAssignment(tx, assignmentId);
      return { after: before.filter((a) => a.id !== assignmentId), subject: null, previous: current };
    });
  }

  assignments(meterId: string): Promise<Assignment[]> {
    return this.repo.assignmentRows(meterId);
  }

  private assignmentOf(meterId: string, assignments: Assignment[], id: string): Assignment {
    const found = assignments.find((a) => a.id === id);
    if (!found) throw new NotFound(`tariff assignment ${id} of meter "${meterId}"`);
    return found;
  }

  /**
   * One change of a meter's assignments, in one transaction under the meter's assignment lock: `change`
   * writes it and tells the assignments after it; then the rules are checked (a failed check rolls the write
   * back) and the event is recorded.
   */
  private async correct(
    meterId: string,
    actor: string,
    action: string,
    rebill: boolean,
    change: (tx: PoolClient, before: Assignment[]) => Promise<{ after: Assignment[]; subject: Assignment | null; previous?: Assignment }>,
  ): Promise<Correction> {
    const meter = await this.meter(meterId);
    return this.repo.meterAssignmentsTransaction(meterId, async (tx) => {
      const before = await this.repo.assignmentRows(meterId, tx);
      const { after, subject, previous } = await change(tx, before);
      if (subject && (subject.tariffId !== previous?.tariffId || subject.effectiveFrom !== previous?.effectiveFrom)) {
        await this.checkTariffInEffect(subject, tx);
      }
      const spans = changedSpans(before, after);
      const billed = await this.repo.billedCycles(meterId, spans, tx);
      if (billed.length && !rebill) {
        const changed = spans.map((s) => `${instantText(s.from)} to ${instantText(s.to)}`).join(', ');
        const bills = billed.map((b) => `bill "${b.billId}" (cycle ${b.cycleStart} to ${b.cycleEnd})`).join(', ');
        throw new Conflict(
          `this changes the tariff of meter "${meterId}" from ${changed}, which closed bills cover: ${bills}; billed history is never repriced ` +
            `(an assignment may start at or after ${billed[billed.length - 1].cycleEnd}; or ask for rebill=true to void and re-bill those bills)`,
        );
      }
      const id = subject?.id ?? previous!.id;
      await this.audit.record(tx, {
        actor, action, subjectType: 'tariff_assignment', subjectId: id, accountId: meter.accountId,
        before: previous ? { meterId, ...assignmentState(previous) } : null,
        after: subject ? { meterId, ...assignmentState(subject), ...(billed.length ? { rebill: billed.map((b) => b.billId) } : {}) } : billed.length ? { meterId, rebill: billed.map((b) => b.billId) } : null,
      });
      return { assignments: after, rebill: billed.map((b) => b.billId) };
    });
  }

  /** The tariff exists and has a version in effect from the assignment's start (the first assignment covers earlier history as its first version). */
  private async checkTariffInEffect(a: Assignment, tx: PoolClient): Promise<void> {
    const first = await this.repo.firstVersionStart(a.tariffId, tx);
    if (first === null) throw new InvalidInput([{ field: 'tariffId', message: `tariff "${a.tariffId}" does not exist` }]);
    if (Number.isFinite(a.effectiveFrom) && a.effectiveFrom < first) {
      throw new InvalidInput([
        {
          field: 'effectiveFrom',
          message: `tariff "${a.tariffId}" has no version in effect before ${instantText(first)} (its first version); an assignment from ${instantText(a.effectiveFrom)} would leave the time between without a tariff: start it at or after ${instantText(first)}`,
        },
      ]);
    }
  }
}
