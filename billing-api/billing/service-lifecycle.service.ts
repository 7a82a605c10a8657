/**
 * Service lifecycle: move-in and move-out of an account, service start and end of a meter, and the meter
 * exchange (the old meter's service ends and the new one's starts at the same instant, on the same account,
 * so the account's cycle simply continues with the new meter). Billing reads the spans (the bill run bills
 * nothing outside them and prorates the cycles they cut, ./service-span.ts).
 *
 * Rules: a service end must follow its start. A change may take effect inside a cycle already billed: the
 * closed bill never changes, the answer names it (`billsAffected`), and voiding it re-bills the cycle with
 * the change (POST /v1/bills/{id}/void). Every change is an event naming who made it.
 */
import { InvalidInput, NotFound } from '../domain-errors.js';
import { isoUtc } from '../../common/time.js';
import type { Queryable } from '../queryable.js';
import type { ServiceLifecycleRepository, ServiceState } from './service-lifecycle.repository.js';

export class ServiceLifecycleService {
  constructor(private readonly repo: ServiceLifecycleRepository) {}

  /** The account's service span, its meters' spans and the lifecycle events; null when the account does not exist. */
  async state(accountId: string): Promise<ServiceState | null> {
    return this.repo.transaction(async (q) => ((await this.repo.accountExists(q, accountId)) ? this.repo.state(q, accountId) : null));
  }

  /** Move-in: the account is in service from `at`; nothing before it is billed. */
  moveIn(accountId: string, at: number, by: string | null): Promise<ServiceState> {
    return this.forAccount(accountId, async (q) => {
            const span = await this.repo.accountSpan(q, accountId);
      if (span.end !== null && span.end <= at) throw new InvalidInput([{ field: 'at', message: `must be before the account's service end (${isoUtc(span.end)})` }]);
      await this.repo.setAccount(q, accountId, 'service_start', at);
      await this.repo.recordEvent(q, { accountId, meterId: null, event: 'move_in', effective: at, recordedBy: by });
      return at;
    });
  }

  /** Move-out: the account's service ends at `at`; the cycle holding it is its last, prorated. */
  moveOut(accountId: string, at: number, by: string | null): Promise<ServiceState> {
    return this.forAccount(accountId, async (q) => {
            const span = await this.repo.accountSpan(q, accountId);
      if (span.start !== null && at <= span.start) throw new InvalidInput([{ field: 'at', message: `must be after the account's service start (${isoUtc(span.start)})` }]);
      await this.repo.setAccount(q, accountId, 'service_end', at);
      await this.repo.recordEvent(q, { accountId, meterId: null, event: 'move_out', effective: at, recordedBy: by });
      return at;
    });
  }

  /** A meter's service start (installation): billed from `at`, prorated. */
  meterStart(meterId: string, at: number, by: string | null): Promise<ServiceState> {
    return this.forMeter(meterId, async (q, accountId) => {
            const span = await this.repo.meterSpan(q, meterId);
      if (span.end !== null && span.end <= at) throw new InvalidInput([{ field: 'at', message: `must be before the meter's service end (${isoUtc(span.end)})` }]);
      await this.repo.setMeter(q, meterId, 'service_start', at);
      await this.repo.recordEvent(q, { accountId, meterId, event: 'meter_start', effective: at, recordedBy: by });
      return at;
    });
  }

  /** A meter's service end (removal): nothing after `at` is billed for it. */
  meterEnd(meterId: string, at: number, by: string | null): Promise<ServiceState> {
    return this.forMeter(meterId, async (q, accountId) => {
            const span = await this.repo.meterSpan(q, meterId);
      if (span.start !== null && at <= span.start) throw new InvalidInput([{ field: 'at', message: `must be after the meter's service start (${isoUtc(span.start)})` }]);
      await this.repo.setMeter(q, meterId, 'service_end', at);
      await this.repo.recordEvent(q, { accountId, meterId, event: 'meter_end', effective: at, recordedBy: by });
      return at;
    });
  }

  /** Meter exchange: `meterId` ends and `newMeterId` (a meter of the same account) starts at `at`. */
  exchange(meterId: string, newMeterId: string, at: number, by: string | null): Promise<ServiceState> {
    return this.forMeter(meterId, async (q, accountId) => {
      if (newMeterId === meterId) throw new InvalidInput([{ field: 'newMeterId', message: 'must be another meter' }]);
      const newAccount = await this.repo.accountOfMeter(q, newMeterId);
      if (newAccount === null) throw new InvalidInput([{ field: 'newMeterId', message: `meter "${newMeterId}" does not exist (create it with POST /v1/meters first)` }]);
      if (newAccount !== accountId) throw new InvalidInput([{ field: 'newMeterId', message: `meter "${newMeterId}" belongs to account "${newAccount}", not "${accountId}"` }]);
            const [old, next] = [await this.repo.meterSpan(q, meterId), await this.repo.meterSpan(q, newMeterId)];
      if (old.start !== null && at <= old.start) throw new InvalidInput([{ field: 'at', message: `must be after the meter's service start (${isoUtc(old.start)})` }]);
      if (next.end !== null && next.end <= at) throw new InvalidInput([{ field: 'at', message: `must be before the new meter's service end (${isoUtc(next.end)})` }]);
      await this.repo.setMeter(q, meterId, 'service_end', at);
      await this.repo.setMeter(q, newMeterId, 'service_start', at, meterId);
      await this.repo.recordEvent(q, { accountId, meterId, event: 'meter_exchange', effective: at, detail: { newMeterId }, recordedBy: by });
      return at;
    });
  }

  private forAccount(accountId: string, change: (q: Queryable) => Promise<number>): Promise<ServiceState> {
    return this.repo.transaction(async (q) => {
      if (!(await this.repo.accountExists(q, accountId))) throw new NotFound(`account "${accountId}"`);
      await this.repo.lockAccount(q, accountId);
      const at = await change(q);
      return { ...(await this.repo.state(q, accountId)), billsAffected: await this.repo.billedAfter(q, accountId, at) };
    });
  }

  private forMeter(meterId: string, change: (q: Queryable, accountId: string) => Promise<number>): Promise<ServiceState> {
    return this.repo.transaction(async (q) => {
      const accountId = await this.repo.accountOfMeter(q, meterId);
      if (accountId === null) throw new NotFound(`meter "${meterId}"`);
      await this.repo.lockAccount(q, accountId);
      const at = await change(q, accountId);
      return { ...(await this.repo.state(q, accountId)), billsAffected: await this.repo.billedAfter(q, accountId, at) };
    });
  }
}
