/** The pure parse-and-validate step: every rule that needs no database, and hostile input. */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeMessage, type DecodedMessage } from './decode.js';
import type { Device } from '../topics.js';

const meter: Device = { id: 'MTR-1', kind: 'meter' };
const dcu: Device = { id: 'DCU-1', kind: 'concentrator' };
const NOW = Date.parse('2026-03-08T12:00:00Z');
const opts = { maxPayloadBytes: 256 * 1024, nowMs: NOW, futureToleranceMs: 300_000 };
const decode = (payload: string | Buffer, device: Device = meter) =>
  decodeMessage(device, device.kind === 'meter' ? `meters/${device.id}/readings` : `concentrators/${device.id}/readings`, Buffer.isBuffer(payload) ? payload : Buffer.from(payload), opts);
const reasons = (d: DecodedMessage) => d.quarantined.map((q) => q.reason);
const ok = { intervalStart: '2026-03-08T09:00:00Z', intervalSeconds: 900, importWh: 250.5 };

describe('decodeMessage', () => {
  it('converts Wh with up to three decimals to exact integer mWh', () => {
    for (const [wh, mwh] of [[250.5, 250500], [0.001, 1], [0.1 + 0.2 === 0.3 ? 0.3 : 0.3, 300], [123456.789, 123456789], [999999999.999, 999999999999]] as const) {
      const d = decode(JSON.stringify({ ...ok, importWh: wh }));
      expect(d.readings[0]?.importMwh, String(wh)).toBe(mwh);
    }
  });

  it('defaults exportWh to 0 and quality to actual, and takes the meter id from the topic', () => {
    const d = decode(JSON.stringify(ok));
    expect(d.readings).toHaveLength(1);
    expect(d.readings[0]).toMatchObject({ meterId: 'MTR-1', exportMwh: 0, quality: 'actual', via: null, intervalStart: Date.parse('2026-03-08T09:00:00Z') });
  });

  it('reads offsets as instants', () => {
    const d = decode(JSON.stringify({ ...ok, intervalStart: '2026-03-08T14:30:00+05:30' }));
    expect(d.readings[0].intervalStart).toBe(Date.parse('2026-03-08T09:00:00Z'));
  });

  it.each([
    ['no offset', { ...ok, intervalStart: '2026-03-08T09:00:00' }],
    ['impossible date', { ...ok, intervalStart: '2026-02-30T09:00:00Z' }],
    ['date only', { ...ok, intervalStart: '2026-03-08' }],
    ['unsupported interval', { ...ok, intervalSeconds: 120 }],
    ['negative energy', { ...ok, importWh: -0.001 }],
    ['four decimals', { ...ok, importWh: 1.0001 }],
    ['energy as a string', { ...ok, importWh: '250.5' }],
    ['huge number', { ...ok, importWh: 1e308 }],
    ['bad quality', { ...ok, quality: 'validated' }],
    ['unknown field', { ...ok, temperature: 21 }],
    ['__proto__ key', JSON.parse('{"intervalStart":"2026-03-08T09:00:00Z","intervalSeconds":900,"importWh":1,"__proto__":{"polluted":true}}')],
    ['constructor key', { ...ok, constructor: { prototype: { polluted: true } } }],
    ['bad meter id', { ...ok, meterId: 'MTR 1' }],
    ['null', null],
  ])('quarantines a reading with %s as schema', (_name, element) => {
    const d = decode(JSON.stringify({ readings: [element] }));
    expect(d.readings).toHaveLength(0);
    expect(reasons(d)).toEqual(['schema']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('treats NaN and Infinity spellings and truncated JSON as invalid_json', () => {
    for (const text of ['{"intervalStart":"2026-03-08T09:00:00Z","intervalSeconds":900,"importWh":NaN}', '{"importWh":Infinity}', '{"importWh":-Infinity}', '{"readings":[', '']) {
      expect(reasons(decode(text)), text).toEqual(['invalid_json']);
    }
  });

  it('quarantines a deeply nested document without overflowing the stack', () => {
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    const d = decode(Buffer.from(deep), meter);
    expect(d.quarantined).toHaveLength(1);
    expect(['invalid_json', 'schema']).toContain(d.quarantined[0].reason);
    // Deep enough that JSON.stringify (recursive) overflows while JSON.parse (iterative) does not.
    const nested = `{"readings":[{"intervalStart":"2026-03-08T09:00:00Z","intervalSeconds":900,"importWh":1,"extra":${'['.repeat(20_000)}${']'.repeat(20_000)}}]}`;
    const n = decode(nested);
    expect(reasons(n)).toEqual(['schema']);
    // The evidence is then the whole payload, not a lossy rendering of the element.
    expect(n.quarantined[0].raw.toString()).toBe(nested);
  });

  it('quarantines invalid UTF-8 as invalid_json with the raw bytes kept', () => {
    const bytes = Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]);
    const d = decode(bytes);
    expect(reasons(d)).toEqual(['invalid_json']);
    expect(d.quarantined[0].raw.equals(bytes)).toBe(true);
  });

  it('keeps a prefix, the size and the hash of an oversized payload', () => {
    const big = Buffer.alloc(opts.maxPayloadBytes + 1, 0x61);
    const d = decode(big);
    expect(reasons(d)).toEqual(['payload_too_large']);
    expect(d.quarantined[0]).toMatchObject({ rawSize: big.length, rawTruncated: true });
    expect(d.quarantined[0].raw.length).toBe(4096);
    expect(d.quarantined[0].rawSha256.toString('hex')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses more than 10,000 readings in one message', () => {
    const readings = Array.from({ length: 10_001 }, () => ok);
    const d = decodeMessage(meter, 'meters/MTR-1/readings', Buffer.from(JSON.stringify({ readings })), { ...opts, maxPayloadBytes: 10 * 1024 * 1024 });
    expect(reasons(d)).toEqual(['schema']);
    expect(d.quarantined[0].detail).toMatch(/10000/);
  });

  it('quarantines readings that start more than five minutes ahead of the gateway clock', () => {
    const d = decode(JSON.stringify({ readings: [{ ...ok, intervalStart: '2026-03-08T12:05:00Z' }, { ...ok, intervalStart: '2026-03-08T12:15:00Z' }] }));
    expect(d.readings).toHaveLength(1);
    expect(reasons(d)).toEqual(['future']);
  });

  it('requires meterId on a concentrator topic and a {readings} envelope', () => {
    expect(reasons(decode(JSON.stringify({ readings: [ok] }), dcu))).toEqual(['schema']);
    expect(reasons(decode(JSON.stringify({ ...ok, meterId: 'MTR-1' }), dcu))).toEqual(['schema']);
    const d = decode(JSON.stringify({ readings: [{ ...ok, meterId: 'MTR-7' }] }), dcu);
    expect(d.readings[0]).toMatchObject({ meterId: 'MTR-7', via: 'DCU-1' });
  });

  it('refuses a meterId that differs from the topic on a meter topic', () => {
    expect(reasons(decode(JSON.stringify({ ...ok, meterId: 'MTR-2' })))).toEqual(['schema']);
  });

  it('accounts for every element of any payload: each is a candidate or exactly one quarantine record (property)', () => {
    const element = fc.oneof(
      fc.record({
        intervalStart: fc.constantFrom('2026-03-08T09:00:00Z', '2026-03-08T09:00:00+01:00', '2026-03-08T09:00', 'x', '2026-13-01T00:00:00Z'),
        intervalSeconds: fc.constantFrom(300, 900, 3600, 7),
        importWh: fc.oneof(fc.double(), fc.integer(), fc.constant(1.5)),
        exportWh: fc.option(fc.double({ min: 0, max: 1e6 }), { nil: undefined }),
        quality: fc.option(fc.constantFrom('actual', 'estimated', 'bogus'), { nil: undefined }),
      }, { requiredKeys: [] }),
      fc.jsonValue(),
    );
    fc.assert(
      fc.property(fc.array(element, { maxLength: 30 }), fc.boolean(), (elements, asConcentrator) => {
        const device = asConcentrator ? dcu : meter;
        const payload = JSON.stringify({ readings: elements.map((e) => (asConcentrator && e && typeof e === 'object' && !Array.isArray(e) ? { ...e, meterId: 'MTR-9' } : e)) });
        const d = decode(payload, device);
        return d.readings.length + d.quarantined.length === elements.length;
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
        const d = decode(Buffer.from(bytes));
        // Arbitrary bytes: either one message-level record, or they happened to be a valid message.
        return d.quarantined.length + d.readings.length >= 1;
      }),
      { numRuns: 2000 },
    );
  });
});
