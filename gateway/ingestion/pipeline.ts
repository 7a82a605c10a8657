/**
 * The ingestion pipeline both transports feed (embedded Aedes: embedded/, external broker: external/):
 *   decode + validate (decode.ts) -> batch (batcher.ts) -> commit (readings-writer.ts) -> outcome.
 * The transport acknowledges the message once `ingest` resolves: every reading of it is then stored or
 * quarantined with its reason.
 *
 * One policy for the unexpected: `decodeMessage` handles every input, so an exception from it is a bug.
 * The message is then kept in the quarantine (`schema`, the error as detail) and acknowledged, never
 * withheld: a device or a broker would deliver it again and again, and the evidence would be nowhere.
 */
import type { Pool } from '../../common/db.js';
import type { Logger } from '../../common/logger.js';
import type { Metrics } from '../../common/metrics.js';
import { clip } from '../client-text.js';
import type { Device } from '../topics.js';
import { IngestBatcher, type CommitHealth, type MessageOutcome } from './batcher.js';
import { decodeMessage, type CandidateReading, type DecodedMessage, type DecodeOptions } from './decode.js';
import { quarantineMessage } from './quarantine.js';
import { ReadingsWriter } from './readings-writer.js';

export interface IngestionOptions {
  pool: Pool;
  log: Logger;
  metrics?: Metrics;
  maxPayloadBytes: number;
  futureToleranceSeconds: number;
  maxBatchRows: number;
  maxInflightBatches: number;
  /** the gateway's clock (epoch ms); injectable for tests */
  now?: () => number;
  /** called after each committed batch with the readings that were stored or replaced */
  onCommitted?: (readings: CandidateReading[]) => void;
}

export interface IngestionPipeline {
  readonly batcher: IngestBatcher;
  /** Decodes the message of `device` and resolves with its outcome once everything of it is committed. */
  ingest(device: Device, topic: string, payload: Buffer): Promise<MessageOutcome>;
  /** Commits a message refused before decoding (e.g. on a topic that names no device). */
  submit(decoded: DecodedMessage, deviceId: string, topic: string): Promise<MessageOutcome>;
  /** whether commits are going through (readiness) */
  health(now?: number): CommitHealth;
}

export function createIngestionPipeline(opts: IngestionOptions): IngestionPipeline {
  const now = opts.now ?? Date.now;
  const batcher = new IngestBatcher({
    store: new ReadingsWriter(opts.pool),
    log: opts.log,
    metrics: opts.metrics,
    maxBatchRows: opts.maxBatchRows,
    maxInflightBatches: opts.maxInflightBatches,
    onCommitted: opts.onCommitted,
  });
  return {
    batcher,
    ingest(device, topic, payload) {
      const limits = { maxPayloadBytes: opts.maxPayloadBytes, nowMs: now(), futureToleranceMs: opts.futureToleranceSeconds * 1000 };
      return batcher.submit(decodeOrQuarantine(decodeMessage, device, topic, payload, limits, opts.log), device.id, topic);
    },
    submit: (decoded, deviceId, topic) => batcher.submit(decoded, deviceId, topic),
    health: (at?: number) => batcher.health(at),
  };
}

/** `decode`, or on an exception (a bug) the whole message quarantined as `schema` with the error. */
export function decodeOrQuarantine(
  decode: (device: Device, topic: string, payload: Buffer, opts: DecodeOptions) => DecodedMessage,
  device: Device,
  topic: string,
  payload: Buffer,
  opts: DecodeOptions,
  log: Logger,
): DecodedMessage {
  try {
    return decode(device, topic, payload, opts);
  } catch (err) {
    log.error({ err, deviceId: device.id, topic: clip(topic) }, 'decoding failed unexpectedly; message quarantined');
    const detail = `internal decoding error: ${(err as Error).message}`;
    return { readings: [], quarantined: [quarantineMessage({ deviceId: device.id, topic }, payload, opts.maxPayloadBytes, 'schema', detail)] };
  }
}
