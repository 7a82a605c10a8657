import { describe, expect, it } from 'vitest';
import { buildProgram, toConfig, type SimulatorConfig } from './config.js';

const NOW = Date.parse('2026-03-08T10:07:00Z');

function parse(...args: string[]) {
  const program = buildProgram().exitOverride();
  program.parse(['node', 'simulate', ...args]);
  return toConfig(program.opts(), NOW);
}

function config(...args: string[]): SimulatorConfig {
  const result = parse(...args);
  if ('errors' in result) throw new Error(result.errors.join('\n'));
  return result.config;
}

describe('options', () => {
  it('defaults to a live, mixed fleet of 10 meters connecting directly at QoS 1', () => {
    expect(config()).toMatchObject({
      brokerUrl: 'mqtt://localhost:1883',
      meters: 10,
      concentrators: 0,
      intervalSeconds: 900,
      batch: 1,
      qos: 1,
      connections: 10,
      profile: 'mixed',
      seed: '1',
      mode: { kind: 'live', startMs: null, speed: 1, stopAtMs: null, durationMs: null },
    });
  });

  it('backfills to now (aligned) when only --from is given; concentrators batch 100 by default', () => {
    const c = config('--from', '2026-03-01T00:00:00+01:00', '--meters', '500', '--concentrators', '5', '--faults', 'gap=0.1');
    expect(c.mode).toEqual({ kind: 'backfill', fromMs: Date.parse('2026-02-28T23:00:00Z'), toMs: Date.parse('2026-03-08T10:00:00Z') });
    expect([c.batch, c.connections, c.faults.gap]).toEqual([100, 5, 0.1]);
  });

  it('lists every problem at once', () => {
    const result = parse('--meters', 'x', '--qos', '1', '--rate', '-1', '--timezone', 'Nowhere/City', '--faults', 'gap=2,typo=1', '--from', '2026-03-08T00:00:00Z', '--speed', '4');
    expect('errors' in result && result.errors).toEqual([
      '--meters: must be a number',
      '--rate: must be > 0',
      '--timezone: unknown IANA time zone',
      '--faults: gap: probability must be between 0 and 1, got 2',
      '--faults: unknown fault "typo" (known: duplicate, reorder, invalid, gap, late, conflict)',
    ]);
    const modes = parse('--from', '2026-03-08T00:00:00Z', '--speed', '4', '--duration', '9', '--provision');
    expect('errors' in modes && modes.errors).toEqual([
      '--provision needs --token (or BILLING_ADMIN_TOKEN)',
      '--duration is for live mode; it cannot be combined with --from',
      '--speed is for live mode; it cannot be combined with --from',
    ]);
  });
});
