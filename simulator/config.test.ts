import { describe, expect, it } from 'vitest';
import { buildProgram, toConfig, type SimulatorConfig } from './config.js';

delete process.env.BILLING_ADMIN_TOKEN; // the options under test come from the command line only

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
      brokerUrl: null,
      bareBroker: false,
      reconcile: false,
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

  it('a commercial fleet sends reactive energy unless told otherwise; --reactive gives it to any profile', () => {
    expect(config('--profile', 'commercial').reactive).toBe(true);
    expect(config('--profile', 'commercial', '--no-reactive').reactive).toBe(false);
    expect(config('--profile', 'mixed').reactive).toBe(false);
    expect(config('--profile', 'residential', '--reactive').reactive).toBe(true);
  });

  it('a residential-solar fleet gets the net-metering tariff unless told otherwise; --net-metering is not for --tariff', () => {
    expect(config('--profile', 'residential-solar').netMetering).toBe(true);
    expect(config('--profile', 'residential-solar', '--no-net-metering').netMetering).toBe(false);
    expect(config('--profile', 'mixed').netMetering).toBe(false);
    expect(config('--profile', 'solar', '--net-metering').netMetering).toBe(true);
    expect(config('--profile', 'residential-solar', '--provision', '--token', 't', '--tariff', 'mine').netMetering).toBe(false);
    const both = parse('--net-metering', '--provision', '--token', 't', '--tariff', 'mine');
    expect('errors' in both && both.errors).toEqual(["--net-metering chooses the simulator's own tariff; it cannot be combined with --tariff"]);
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

  it('reads a bare date as local midnight in --timezone (the accounts\' zone), an instant as given', () => {
    const ny = config('--from', '2026-10-01', '--to', '2026-11-01');
    expect(ny.mode).toEqual({ kind: 'backfill', fromMs: Date.parse('2026-10-01T04:00:00Z'), toMs: Date.parse('2026-11-01T04:00:00Z') });
    const berlin = config('--from', '2026-10-01', '--to', '2026-10-26', '--timezone', 'Europe/Berlin');
    // Berlin leaves summer time on 2026-10-25: midnight of the 26th is at UTC+1.
    expect(berlin.mode).toEqual({ kind: 'backfill', fromMs: Date.parse('2026-09-30T22:00:00Z'), toMs: Date.parse('2026-10-25T23:00:00Z') });
    expect(config('--from', '2026-10-01T00:00:00Z', '--to', '2026-10-02T00:00:00Z').mode).toMatchObject({ fromMs: Date.parse('2026-10-01T00:00:00Z') });
    expect(config('--start', '2026-03-08', '--speed', '96').mode).toMatchObject({ kind: 'live', startMs: Date.parse('2026-03-08T05:00:00Z') });
  });

  it('refuses what cannot be checked: --reconcile without a token or at QoS 0, --bare-broker with an API task', () => {
    const result = parse('--from', '2026-03-01', '--reconcile', '--qos', '0', '--bare-broker', '--provision', '--token', 't');
    expect('errors' in result && result.errors).toEqual([
      '--bare-broker needs --broker',
      '--bare-broker cannot be combined with --provision (it uses no API)',
      '--bare-broker cannot be combined with --reconcile (it uses no API)',
      '--reconcile needs --qos 1: at QoS 0 nothing proves what the gateway received',
    ]);
    const noToken = parse('--from', '2026-03-01', '--reconcile');
    expect('errors' in noToken && noToken.errors).toEqual(['--reconcile needs --token (or BILLING_ADMIN_TOKEN) to read the stored readings']);
    expect('errors' in parse('--from', '2026-13-01') && parse('--from', '2026-13-01')).toMatchObject({ errors: ['--from: "2026-13-01" does not exist in America/New_York'] });
  });
});
