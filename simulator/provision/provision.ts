/**
 * `--provision`: registers the fleet through the REST API (CONTRACT.md section 3), idempotently. Order:
 * tariff, accounts, meters (with their tariff, interval, maximum power and derived secret), concentrators
 * (with their meters and secret). 201 is "created", 409 is "already there"; a second run changes nothing
 * and does not fail. What already exists is not updated (the contract has no update for secrets).
 */
import type { Fleet } from '../generator/index.js';
import { ApiClient, ApiError } from './api-client.js';
import { deviceSecret } from './secrets.js';
import { simulatorTariffId, simulatorTariffRequest, type TariffPlan } from './simulator-tariff.js';

export interface ProvisionOptions {
  apiUrl: string;
  token: string;
  /** Existing tariff to give the meters; null: create (or reuse) the simulator tariff of `tariffPlan`. */
  tariffId: string | null;
  /** Which simulator tariff to create when `tariffId` is null: net billing per interval (default) or net metering. */
  tariffPlan?: TariffPlan;
  timezone: string;
  /** HMAC key of device secrets (see secrets.ts). */
  secretKey: string;
  /** Parallel requests. */
  concurrency?: number;
  log: (line: string) => void;
}

export interface ProvisionReport {
  /** The tariff given to the meters, or null when none could be created. */
  tariffId: string | null;
  created: Record<'tariffs' | 'accounts' | 'meters' | 'concentrators', number>;
  existing: Record<'tariffs' | 'accounts' | 'meters' | 'concentrators', number>;
}

export async function provisionFleet(fleet: Fleet, options: ProvisionOptions): Promise<ProvisionReport> {
  const api = new ApiClient(options.apiUrl, options.token);
  const report: ProvisionReport = {
    tariffId: options.tariffId,
    created: { tariffs: 0, accounts: 0, meters: 0, concentrators: 0 },
    existing: { tariffs: 0, accounts: 0, meters: 0, concentrators: 0 },
  };
  const create = async (kind: keyof ProvisionReport['created'], path: string, body: unknown): Promise<void> => {
    const answer = await api.post(path, body);
    if (answer.status === 201 || answer.status === 200) report.created[kind]++;
    else if (answer.status === 409) report.existing[kind]++;
    else throw new ApiError('POST', path, answer.status, answer.body);
  };

  if (options.tariffId === null) report.tariffId = await createSimulatorTariff(api, options, report);

  const meters = fleet.meters;
  // Meters behind concentrators never connect themselves: they get no secret of ours (the API then
  // generates one it never shows again), which spares the API a slow password hash per meter.
  const metersConnect = fleet.concentrators.length === 0;
  await forEachLimited(meters, options.concurrency ?? 8, (meter) =>
    create('accounts', '/v1/accounts', {
      id: meter.accountId,
      name: `Simulated ${meter.profile} customer ${meter.index + 1}`,
      timezone: meter.timezone,
      billingDay: 1,
    }),
  );
  await forEachLimited(meters, options.concurrency ?? 8, (meter) =>
    create('meters', '/v1/meters', {
      id: meter.id,
      accountId: meter.accountId,
      timezone: meter.timezone,
      intervalSeconds: meter.intervalSeconds,
      ...(report.tariffId ? { tariffId: report.tariffId } : {}),
      maxPowerKw: meter.maxPowerKw,
      ...(metersConnect ? { mqttPassword: deviceSecret(options.secretKey, meter.id) } : {}),
    }),
  );
  await forEachLimited(fleet.concentrators, options.concurrency ?? 8, (concentrator) =>
    create('concentrators', '/v1/concentrators', {
      id: concentrator.id,
      meterIds: concentrator.meterIds,
      mqttPassword: deviceSecret(options.secretKey, concentrator.id),
    }),
  );
  options.log(
    `provisioned: created ${formatCounts(report.created)}; already there ${formatCounts(report.existing)}` +
      (report.tariffId ? `; tariff ${report.tariffId}` : '; no tariff'),
  );
  return report;
}

/** Creates the simulator tariff; a 404 (no tariff import endpoint yet) means "continue without". */
async function createSimulatorTariff(api: ApiClient, options: ProvisionOptions, report: ProvisionReport): Promise<string | null> {
  const plan = options.tariffPlan ?? 'tou';
  const answer = await api.post('/v1/tariffs/urdb', simulatorTariffRequest(options.timezone, plan));
  if (answer.status === 201 || answer.status === 200) {
    report.created.tariffs++;
    return simulatorTariffId(plan);
  }
  if (answer.status === 409) {
    report.existing.tariffs++;
    return simulatorTariffId(plan);
  }
  if (answer.status === 404 || answer.status === 405) {
    options.log(
      `POST /v1/tariffs/urdb answered ${answer.status}: the API cannot import tariffs yet; meters are created without a tariff`,
    );
    return null;
  }
  throw new ApiError('POST', '/v1/tariffs/urdb', answer.status, answer.body);
}

/** Runs `task` over `items`, at most `limit` at a time; the first failure stops the rest and is thrown. */
async function forEachLimited<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: unknown = null;
  const worker = async () => {
    while (failure === null && next < items.length) {
      const item = items[next++];
      try {
        await task(item);
      } catch (error) {
        failure ??= error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== null) throw failure;
}

function formatCounts(counts: ProvisionReport['created']): string {
  return Object.entries(counts)
    .map(([kind, count]) => `${count} ${kind}`)
    .join(', ');
}
