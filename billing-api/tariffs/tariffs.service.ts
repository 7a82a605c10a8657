/**
 * Tariffs: storing versions (native documents and URDB imports), reading them, and assigning tariffs to
 * meters from an instant on. History is never rewritten: a new version needs a later effectiveFrom, a new
 * assignment a later start than the meter's latest.
 */
import { importUrdb, type TariffAssignment, type TariffDocument, type UrdbImportOptions, type UrdbIssue } from '../../rating/index.js';
import { Conflict, InvalidInput, NotFound } from '../domain-errors.js';
import type { MeterRow } from '../provisioning/provisioning.repository.js';
import type { MeterLookup } from '../readings/readings.service.js';
import type { StoredTariffVersion, TariffsRepository } from './tariffs.repository.js';

export class TariffsService {
  constructor(
    private readonly repo: TariffsRepository,
    private readonly meters: MeterLookup,
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

  /** Assigns a tariff to a meter from `effectiveFrom` on; answers the meter's assignments. */
  async assign(meterId: string, tariffId: string, effectiveFrom: number): Promise<TariffAssignment[]> {
    await this.meter(meterId);
    if (!(await this.repo.versions(tariffId)).length) throw new InvalidInput([{ field: 'tariffId', message: `tariff "${tariffId}" does not exist` }]);
    const refusal = await this.repo.assign(meterId, tariffId, effectiveFrom);
    if (refusal) throw new Conflict(refusal);
    return this.repo.assignments(meterId);
  }

  assignments(meterId: string): Promise<TariffAssignment[]> {
    return this.repo.assignments(meterId);
  }
}
