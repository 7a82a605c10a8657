/**
 * `npm start`: the gateway and the billing API in one process against one database, the API's running
 * charges fed by this gateway's commits (RUNNING_CHARGES_SOURCE=auto).
 */
import type { Config } from '../common/config.js';
import type { Logger } from '../common/logger.js';
import { createMetrics, type Metrics } from '../common/metrics.js';
import { readTlsFiles } from '../common/tls.js';
import { describeDatabase, openDatabase, type Database } from './database.js';
import { stopInReverse, type RunningProcess } from './process.js';
import { readinessChecks } from './readiness.js';
import { createBillingServices, describeBillingApi, startBillingApi, type BillingApiServices, type WiredBillingApi } from './wire-billing-api.js';
import { describeGateway, startGateway, type WiredGateway } from './wire-gateway.js';

export interface AllInOne extends RunningProcess {
  database: Database;
  metrics: Metrics;
  gateway: WiredGateway;
  services: BillingApiServices;
  api: WiredBillingApi;
}

export async function startAllInOne(config: Config, log: Logger): Promise<AllInOne> {
  // Read before anything slow starts: an unreadable TLS file is one start-up line (TlsFileError).
  const tls = readTlsFiles(config);
  const database = await openDatabase(config, log);
  const metrics = createMetrics();
  const stops: (() => Promise<void>)[] = [database.close];
  const stop = () => stopInReverse(stops, log);
  try {
    const live = config.RUNNING_CHARGES_SOURCE === 'auto';
    const services = createBillingServices(config, database, log, metrics, { live });
    if (live && config.MQTT_MODE === 'external') {
      log.child({ component: 'gateway' }).warn(
        { shareGroup: config.MQTT_SHARE_GROUP },
        'running charges come from memory fed by this instance alone; with other gateway instances in the share group set RUNNING_CHARGES_SOURCE=database',
      );
    }
    const onCommitted = live ? (readings: Parameters<typeof services.store.onCommitted>[0]) => services.store.onCommitted(readings) : undefined;
    const gateway = await startGateway(config, { database, log, metrics, tls, onCommitted });
    const closeGateway = () => gateway.close();
    stops.push(closeGateway);
    const api = await startBillingApi(config, { database, log, metrics, services, tls, readiness: readinessChecks(database.pool, gateway, { migrations: true }) });
    // Stopped in reverse: the scheduled run, then the gateway (committing what is in flight), then the API.
    stops.splice(stops.indexOf(closeGateway), 0, api.close);
    stops.push(api.stopBillingJob);
    return {
      database,
      metrics,
      gateway,
      services,
      api,
      summary: () => {
        const apiLines = describeBillingApi(api, config);
        return [...describeGateway(gateway, config), ...apiLines.endpoints, describeDatabase(database, config), ...apiLines.adminToken];
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
