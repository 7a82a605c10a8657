/**
 * The pipeline's one policy for the unexpected: a decoder that throws (a bug) leaves the message in the
 * quarantine as `schema` with the error and the payload as evidence, so both transports acknowledge it
 * instead of having it delivered again and again.
 */
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../common/logger.js';
import { decodeMessage } from './decode.js';
import { decodeOrQuarantine } from './pipeline.js';

const device = { id: 'MTR-1', kind: 'meter' as const };
const topic = 'meters/MTR-1/readings';
const limits = { maxPayloadBytes: 1024, nowMs: Date.parse('2026-01-01T00:00:00Z'), futureToleranceMs: 300_000 };

describe('decodeOrQuarantine', () => {
  it('passes what the decoder makes of a message through unchanged', () => {
    const payload = Buffer.from(JSON.stringify({ intervalStart: '2025-12-31T23:00:00Z', intervalSeconds: 900, importWh: 1.5 }));
    const decoded = decodeOrQuarantine(decodeMessage, device, topic, payload, limits, createLogger('silent'));
    expect(decoded).toEqual(decodeMessage(device, topic, payload, limits));
    expect(decoded.readings).toHaveLength(1);
  });

  it('quarantines the whole message as schema, with the error and the payload, when the decoder throws', () => {
    const payload = Buffer.from('{"intervalStart":"2025-12-31T23:00:00Z"}');
    const decoded = decodeOrQuarantine(() => { throw new Error('boom'); }, device, topic, payload, limits, createLogger('silent'));
    expect(decoded.readings).toEqual([]);
    expect(decoded.quarantined).toHaveLength(1);
    expect(decoded.quarantined[0]).toMatchObject({ deviceId: 'MTR-1', topic, reason: 'schema', detail: 'internal decoding error: boom', meterId: null, rawSize: payload.length, rawTruncated: false });
    expect(Buffer.compare(decoded.quarantined[0].raw, payload)).toBe(0);
  });
});
