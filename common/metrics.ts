/**
 * Prometheus metrics (prom-client). One registry per process; gateway and API register into it and
 * `/metrics` serves it. The names are the operating README's list (app/README.md), so dashboards can be written once.
 */
import { Registry, Counter, Histogram, Gauge, collectDefaultMetrics } from 'prom-client';

export function createMetrics(registry = new Registry()) {
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    readingsIngested: new Counter({ name: 'readings_ingested_total', help: 'Readings committed (stored or replacing an estimate)', registers: [registry] }),
    readingsDuplicate: new Counter({ name: 'readings_duplicate_total', help: 'Readings identical to a stored one (dropped, counted)', registers: [registry] }),
    readingsQuarantined: new Counter({ name: 'readings_quarantined_total', help: 'Quarantine records written, by reason', labelNames: ['reason'], registers: [registry] }),
    ingestBatchSize: new Histogram({ name: 'ingest_batch_size', help: 'Readings per database commit', buckets: [1, 10, 100, 500, 1000, 2500, 5000, 10000, 20000], registers: [registry] }),
    ingestCommitSeconds: new Histogram({ name: 'ingest_commit_seconds', help: 'Duration of one batch commit', buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry] }),
    ingestCommitFailures: new Counter({
      name: 'ingest_commit_failures_total',
      help: 'Failed commit calls, by kind (outage: retried; data: refused readings isolated as commit_rejected)',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    pubackLatency: new Histogram({ name: 'puback_latency_seconds', help: 'From a PUBLISH being handed to the gateway to its acknowledgement being released', buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry] }),
    connectedDevices: new Gauge({ name: 'mqtt_connected_devices', help: 'Authenticated MQTT connections', registers: [registry] }),
    mqttRefused: new Counter({
      name: 'mqtt_refused_total',
      help: 'Refused MQTT connects, publishes and subscribes, by reason (connect_rate and publish_rate: the limits of MQTT_CONNECT_RATE_PER_MINUTE and MQTT_PUBLISH_RATE_PER_SECOND)',
      labelNames: ['reason'],
      registers: [registry],
    }),
    httpRateLimited: new Counter({ name: 'http_rate_limited_total', help: 'API requests refused with 429 (API_RATE_LIMIT_PER_MINUTE per token, or per address without one)', registers: [registry] }),
    billsClosed: new Counter({ name: 'bills_closed_total', help: 'Bills closed (committed) by billing runs, by trigger (api, schedule)', labelNames: ['trigger'], registers: [registry] }),
    ingestPendingReadings: new Gauge({ name: 'ingest_pending_readings', help: 'Readings received and not yet committed', registers: [registry] }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
