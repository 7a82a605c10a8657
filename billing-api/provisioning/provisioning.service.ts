/**
 * Provisioning: accounts, meters, concentrators, device secrets, API tokens. The rules (what refers to
 * what, which ids are taken, which secret is generated) live here and the SQL in the repository; problems
 * are domain errors naming the input they concern.
 */
import type { z } from 'zod';
import {
  generateApiToken, generateDeviceSecret, hashGeneratedSecret, hashSecret, mosquittoPasswordHash, randomId,
  MOSQUITTO_ITERATIONS_CHOSEN, MOSQUITTO_ITERATIONS_GENERATED,
} from '../../common/secrets.js';
import { Conflict, InvalidInput, NotFound, type Problem } from '../domain-errors.js';
import type { AuditEvent, AuditEventFilter, AuditEventsRepository } from './audit-events.repository.js';
import {
  DeviceIdTaken, type AccountChanges, type AccountRow, type BillRef, type ConcentratorRow, type MeterChanges, type MeterFilter, type MeterRow,
  type ProvisioningRepository, type Role, type SecretHashes, type TokenRow,
} from './provisioning.repository.js';
import type { accountCreateSchema, concentratorCreateSchema, meterCreateSchema, tokenCreateSchema } from './provisioning.schemas.js';

export type { AccountRow, MeterRow, MeterFilter, TokenRow } from './provisioning.repository.js';

const billNamed = (b: BillRef) => `bill "${b.billId}" (cycle ${b.cycleStart} to ${b.cycleEnd})`;

/** What an account's or meter's state is in an event: its configuration, without derived fields. */
const meterState = (m: MeterRow) => ({ timezone: m.timezone, intervalSeconds: m.intervalSeconds, maxPowerKw: m.maxPowerKw });
const accountState = (a: AccountRow) => ({ name: a.name, timezone: a.timezone, billingDay: a.billingDay });

const deviceIdTaken = (id: string) => new Conflict(`device id "${id}" is already in use`);

export class ProvisioningService {
  constructor(
    private readonly repo: ProvisioningRepository,
    private readonly scryptN: number,
    private readonly audit: AuditEventsRepository,
  ) {}

  /**
   * Returns the stored hash, the Mosquitto password-file hash of the same secret (for an external Mosquitto,
   * gateway/mosquitto-auth.ts) and, when the system generated the secret, the secret to show once.
   */
  private async secretHash(provided: string | undefined): Promise<SecretHashes & { generated?: string }> {
    if (provided !== undefined) {
      const [hash, mosquittoHash] = await Promise.all([
        hashSecret(provided, this.scryptN),
        mosquittoPasswordHash(provided, MOSQUITTO_ITERATIONS_CHOSEN),
      ]);
      return { hash, mosquittoHash };
    }
    const generated = generateDeviceSecret();
    return { hash: hashGeneratedSecret(generated), mosquittoHash: await mosquittoPasswordHash(generated, MOSQUITTO_ITERATIONS_GENERATED), generated };
  }

  async createAccount(input: z.output<typeof accountCreateSchema>): Promise<AccountRow> {
    const zone = await this.repo.zoneProblem(input.timezone);
    if (zone) throw new InvalidInput([{ field: 'timezone', message: zone }]);
    const stored = await this.repo.insertAccount(input);
    if (!stored) throw new Conflict(`account "${input.id}" already exists`);
    return { ...input, createdAt: stored.createdAt };
  }

  getAccount(id: string): Promise<AccountRow | null> {
    return this.repo.getAccount(id);
  }

  listAccounts(limit: number, after: string | undefined): Promise<AccountRow[]> {
    return this.repo.listAccounts(limit, after);
  }

  async createMeter(input: z.output<typeof meterCreateSchema>): Promise<MeterRow> {
    const problems: Problem[] = [];
    const zone = await this.repo.zoneProblem(input.timezone);
    if (zone) problems.push({ field: 'timezone', message: zone });
    const refs = await this.repo.meterReferences(input.accountId, input.tariffId ?? null, input.id);
    if (refs.taken) throw deviceIdTaken(input.id);
    if (!refs.account) problems.push({ field: 'accountId', message: `account "${input.accountId}" does not exist` });
    if (!refs.tariff) problems.push({ field: 'tariffId', message: `tariff "${input.tariffId}" does not exist` });
    if (problems.length) throw new InvalidInput(problems);

    const secret = await this.secretHash(input.mqttPassword);
    await this.repo
      .insertMeter(
        { id: input.id, accountId: input.accountId, timezone: input.timezone, intervalSeconds: input.intervalSeconds, maxPowerKw: input.maxPowerKw ?? null, tariffId: input.tariffId ?? null },
        secret,
      )
      .catch((err) => {
        throw err instanceof DeviceIdTaken ? deviceIdTaken(input.id) : err;
      });
    const meter = (await this.getMeter(input.id))!;
    return secret.generated ? { ...meter, mqttPassword: secret.generated } : meter;
  }

  /** The meter's account, for access checks on hot read paths (a prepared statement, no joins). */
  meterAccount(id: string): Promise<string | null> {
    return this.repo.meterAccount(id);
  }

  getMeter(id: string): Promise<MeterRow | null> {
    return this.repo.getMeter(id);
  }

  listMeters(filter: MeterFilter): Promise<MeterRow[]> {
    return this.repo.listMeters(filter);
  }

  listConcentrators(limit: number, after: string | undefined): Promise<ConcentratorRow[]> {
    return this.repo.listConcentrators(limit, after);
  }

  listTokens(filter: { role?: Role; accountId?: string; includeRevoked: boolean; after?: string; limit: number }): Promise<TokenRow[]> {
    return this.repo.listTokens(filter);
  }

  events(filter: AuditEventFilter): Promise<AuditEvent[]> {
    return this.audit.list(filter);
  }

  /**
   * Corrects an account. `name`: always. `timezone` and `billingDay` place the account's billing cycles:
   * refused (Conflict naming the latest bill) once a bill is closed, because they would move the boundaries
   * of billed cycles. Recorded as an `account.updated` event with the state before and after.
   */
  async correctAccount(id: string, changes: AccountChanges, actor: string): Promise<AccountRow> {
    if (changes.timezone !== undefined) {
      const zone = await this.repo.zoneProblem(changes.timezone);
      if (zone) throw new InvalidInput([{ field: 'timezone', message: zone }]);
    }
    return this.repo.transaction(async (tx) => {
      const before = await this.repo.getAccount(id, tx, true);
      if (!before) throw new NotFound(`account "${id}"`);
      const moves = (['timezone', 'billingDay'] as const).filter((f) => changes[f] !== undefined && changes[f] !== before[f]);
      if (moves.length) {
        const bill = await this.repo.latestBillOfAccount(tx, id);
        if (bill) {
          throw new Conflict(
            `${moves.join(' and ')} of account "${id}" cannot change: they place its billing cycles, and ${billNamed(bill)} is closed; ` +
              'create a new account for a different cycle or zone',
          );
        }
      }
      await this.repo.updateAccount(tx, id, changes);
      const after = (await this.repo.getAccount(id, tx))!;
      await this.audit.record(tx, { actor, action: 'account.updated', subjectType: 'account', subjectId: id, accountId: id, before: accountState(before), after: accountState(after) });
      return after;
    });
  }

  /**
   * Corrects a meter. `maxPowerKw`: always (it judges readings still to come; null removes the limit).
   * `timezone` (the meter's local time: estimation grid, consumption buckets): refused once a bill with this
   * meter is closed. `intervalSeconds`: refused once the meter has a stored reading (stored intervals keep
   * their length, and a bill rates them on the meter's grid). Gateways pick up the change at once. Recorded
   * as a `meter.updated` event.
   */
  async correctMeter(id: string, changes: MeterChanges, actor: string): Promise<MeterRow> {
    if (changes.timezone !== undefined) {
      const zone = await this.repo.zoneProblem(changes.timezone);
      if (zone) throw new InvalidInput([{ field: 'timezone', message: zone }]);
    }
    return this.repo.transaction(async (tx) => {
      if (!(await this.repo.lockMeter(tx, id))) throw new NotFound(`meter "${id}"`);
      const before = (await this.repo.getMeter(id, tx))!;
      const blocked: string[] = [];
      if (changes.timezone !== undefined && changes.timezone !== before.timezone) {
        const bill = await this.repo.latestBillOfMeter(tx, id);
        if (bill) blocked.push(`timezone cannot change: ${billNamed(bill)} rated this meter in ${before.timezone}`);
      }
      if (changes.intervalSeconds !== undefined && changes.intervalSeconds !== before.intervalSeconds) {
        const last = await this.repo.lastIntervalStart(tx, id);
        if (last) blocked.push(`intervalSeconds cannot change: the meter has stored ${before.intervalSeconds}-second intervals (the latest starts ${last}); give the meter a new id for a new interval`);
      }
      if (blocked.length) throw new Conflict(`meter "${id}": ${blocked.join('; ')}`);
      await this.repo.updateMeter(tx, id, changes);
      const after = (await this.repo.getMeter(id, tx))!;
      await this.audit.record(tx, { actor, action: 'meter.updated', subjectType: 'meter', subjectId: id, accountId: before.accountId, before: meterState(before), after: meterState(after) });
      return after;
    });
  }

  async createConcentrator(input: z.output<typeof concentratorCreateSchema>) {
    if (await this.repo.deviceExists(input.id)) throw deviceIdTaken(input.id);
    await this.checkMeters(input.meterIds);
    const secret = await this.secretHash(input.mqttPassword);
    await this.repo.insertConcentrator(input.id, input.meterIds, secret).catch((err) => {
      throw err instanceof DeviceIdTaken ? deviceIdTaken(input.id) : err;
    });
    const created = (await this.getConcentrator(input.id))!;
    return secret.generated ? { ...created, mqttPassword: secret.generated } : created;
  }

  private async checkMeters(meterIds: string[]): Promise<void> {
    const unknown = await this.repo.unknownMeters(meterIds);
    if (unknown.length) {
      throw new InvalidInput(
        unknown.map((id) => ({ field: 'meterIds', message: `meter "${id}" does not exist` })),
        `${unknown.length} unknown meter(s)`,
      );
    }
  }

  getConcentrator(id: string): Promise<ConcentratorRow | null> {
    return this.repo.getConcentrator(id);
  }

  /** Replaces the set of meters a concentrator may send for; a `concentrator.meters_replaced` event. */
  async setConcentratorMeters(id: string, meterIds: string[], actor: string): Promise<ConcentratorRow> {
    if (!(await this.getConcentrator(id))) throw new NotFound(`concentrator "${id}"`);
    await this.checkMeters(meterIds);
    return this.repo.transaction(async (tx) => {
      const before = (await this.repo.getConcentrator(id, tx))!;
      await this.repo.replaceConcentratorMeters(tx, id, meterIds);
      const after = (await this.repo.getConcentrator(id, tx))!;
      await this.audit.record(tx, { actor, action: 'concentrator.meters_replaced', subjectType: 'concentrator', subjectId: id, accountId: null, before: { meterIds: before.meterIds }, after: { meterIds: after.meterIds } });
      return after;
    });
  }

  /**
   * Sets a device's MQTT secret (generated and returned once when not given). Gateways drop their cache at
   * once. A `device.secret_rotated` event (never the secret).
   */
  async rotateSecret(deviceId: string, provided: string | undefined, actor: string): Promise<{ id: string; mqttPassword?: string }> {
    const secret = await this.secretHash(provided);
    await this.repo.transaction(async (tx) => {
      const device = await this.repo.updateDeviceSecret(tx, deviceId, secret);
      if (!device) throw new NotFound(`device "${deviceId}"`);
      await this.audit.record(tx, { actor, action: 'device.secret_rotated', subjectType: 'device', subjectId: deviceId, accountId: device.accountId, before: null, after: { kind: device.kind, generated: Boolean(secret.generated) } });
    });
    return secret.generated ? { id: deviceId, mqttPassword: secret.generated } : { id: deviceId };
  }

  /** Creates a token (shown this once); a `token.created` event (never the token). */
  async createToken(input: z.output<typeof tokenCreateSchema>, actor: string) {
    if (input.accountId && !(await this.getAccount(input.accountId))) {
      throw new InvalidInput([{ field: 'accountId', message: `account "${input.accountId}" does not exist` }]);
    }
    const token = generateApiToken();
    const id = randomId('tok');
    await this.repo.transaction(async (tx) => {
      await this.repo.insertToken(tx, id, token, input.role, input.accountId ?? null);
      await this.audit.record(tx, { actor, action: 'token.created', subjectType: 'token', subjectId: id, accountId: input.accountId ?? null, before: null, after: { role: input.role, accountId: input.accountId ?? null } });
    });
    return { id, token, role: input.role, ...(input.accountId ? { accountId: input.accountId } : {}) };
  }

  /** Revokes a token; a `token.revoked` event. */
  async revokeToken(id: string, actor: string): Promise<void> {
    await this.repo.transaction(async (tx) => {
      const before = await this.repo.getToken(tx, id);
      if (!before || !(await this.repo.revokeToken(tx, id))) throw new NotFound(`token "${id}"`);
      const after = (await this.repo.getToken(tx, id))!;
      await this.audit.record(tx, { actor, action: 'token.revoked', subjectType: 'token', subjectId: id, accountId: before.accountId, before, after });
    });
  }
}
