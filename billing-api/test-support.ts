/** Helpers of the billing tests: simple tariffs, provisioning through the API, bulk readings through SQL. */
import { expect } from 'vitest';
import type { TestStack } from '../test/support/stack.js';

/** A one-period tariff: energy at `rate`/kWh, a daily and a monthly fixed charge, one tax. */
export function flatTariff(
  id: string,
  opts: { currency?: string; timeZone: string; rate: string; perDay?: string; perMonth?: string; tax?: string; sell?: string },
) {
  return {
    id,
    name: `Flat ${opts.rate}`,
    currency: { code: opts.currency ?? 'USD', minorUnit: 2 },
    timeZone: opts.timeZone,
    seasons: [{ id: 'all', fromMonth: 1, toMonth: 12 }],
    energy: {
      periods: [{ id: 'any', tiers: [{ rate: opts.rate }], ...(opts.sell ? { sell: opts.sell } : {}) }],
      schedule: [{ seasons: ['all'], dayTypes: ['weekday', 'weekend', 'holiday'], periods: [{ from: '00:00', period: 'any' }] }],
    },
    fixedCharges: [
      ...(opts.perDay ? [{ name: 'Service charge', amount: opts.perDay, per: 'day' as const }] : []),
      ...(opts.perMonth ? [{ name: 'Meter charge', amount: opts.perMonth, per: 'month' as const }] : []),
    ],
    taxes: opts.tax ? [{ name: 'Tax', rate: opts.tax }] : [],
  };
}

export async function createTariff(stack: TestStack, tariff: unknown): Promise<void> {
  const res = await stack.api('/v1/tariffs', { body: tariff });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
}

export async function createAccount(stack: TestStack, id: string, timezone: string, billingDay: number): Promise<void> {
  const res = await stack.api('/v1/accounts', { body: { id, name: `Account ${id}`, timezone, billingDay } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
}

/** Creates a meter with its tariff assigned for all of history; returns its MQTT secret. */
export async function createMeter(stack: TestStack, id: string, accountId: string, timezone: string, tariffId: string, intervalSeconds = 900): Promise<string> {
  const res = await stack.api('/v1/meters', { body: { id, accountId, timezone, intervalSeconds, tariffId } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.mqttPassword;
}

/** `count` consecutive actual readings of `importMwh` each from `fromIso` (quality actual, received now). */
export async function insertReadings(stack: TestStack, meterId: string, fromIso: string, count: number, importMwh: number, opts: { intervalSeconds?: number; exportMwh?: number } = {}): Promise<void> {
  const seconds = opts.intervalSeconds ?? 900;
  await stack.pool.query(
    `INSERT INTO readings (meter_id, interval_start, interval_seconds, import_mwh, export_mwh, quality)
     SELECT $1, $2::timestamptz + g * $3::int * interval '1 second', $3::int, $4, $5, 'actual' FROM generate_series(0, $6 - 1) g`,
    [meterId, fromIso, seconds, importMwh, opts.exportMwh ?? 0, count],
  );
}

/**
 * Starts a billing run and, when it was accepted (202), polls GET /v1/billing-runs/{id} until it is over:
 * the answer's status is the POST's, its body the run at its end.
 */
export async function billingRun(stack: TestStack, asOf: string | { cyclesEndingIn: string }, token?: string) {
  const started = await stack.api('/v1/billing-runs', { body: typeof asOf === 'string' ? { asOf } : asOf, token });
  if (started.status !== 202) return started;
  for (;;) {
    const run = await stack.api(`/v1/billing-runs/${started.body.id}`);
    if (run.status !== 200 || run.body.state !== 'running') return { status: started.status, body: run.body, started: started.body };
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export async function billsOf(stack: TestStack, accountId: string): Promise<any[]> {
  const res = await stack.api(`/v1/accounts/${accountId}/bills`);
  expect(res.status).toBe(200);
  return res.body.items;
}

export const lineOf = (lines: { type: string }[], type: string) => lines.filter((l) => l.type === type);

/** A reading as the gateway commits it (energies in mWh, the readings' unit: 1_000_000 = 1 kWh). */
export interface IngestedReading {
  meterId: string;
  intervalStart: number;
  intervalSeconds: number;
  importMwh: number;
  exportMwh: number;
}

/**
 * Commits actual readings through `ingest_readings()`, the function the gateway commits each batch with,
 * and counts what became of them by outcome (stored, replaced, duplicate, a quarantine reason).
 */
export async function ingestReadings(stack: TestStack, readings: IngestedReading[]): Promise<Record<string, number>> {
  const res = await stack.pool.query<{ idx: number; outcome: string }>(
    'SELECT idx, outcome FROM ingest_readings($1::text[], $2::bigint[], $3::int[], $4::bigint[], $5::bigint[], $6::text[], $7::text[])',
    [
      readings.map((r) => r.meterId),
      readings.map((r) => r.intervalStart),
      readings.map((r) => r.intervalSeconds),
      readings.map((r) => r.importMwh),
      readings.map((r) => r.exportMwh),
      readings.map(() => 'actual'),
      readings.map(() => null),
    ],
  );
  // The function names every reading that was not simply stored.
  const outcomes: Record<string, number> = { stored: readings.length - res.rows.length };
  for (const row of res.rows) outcomes[row.outcome] = (outcomes[row.outcome] ?? 0) + 1;
  return outcomes;
}

/**
 * A URDB rate of two TOU periods, `p1` the weekday evening peak (16:00-21:00 local) and `p0` every other
 * hour, with a monthly fixed charge: the shape of the net metering tests. `periods` are URDB
 * `energyratestructure` rows (p0 then p1).
 */
export function eveningPeakUrdbRate(o: { label: string; name?: string; dgrules?: string; monthlyCharge: number; periods: { rate: number; sell?: number; max?: number }[][] }) {
  return {
    label: o.label,
    name: o.name ?? o.label,
    ...(o.dgrules ? { dgrules: o.dgrules } : {}),
    fixedchargefirstmeter: o.monthlyCharge,
    fixedchargeunits: '$/month',
    energyratestructure: o.periods,
    energyweekdayschedule: Array.from({ length: 12 }, () => Array.from({ length: 24 }, (_, h) => (h >= 16 && h < 21 ? 1 : 0))),
    energyweekendschedule: Array.from({ length: 12 }, () => Array(24).fill(0)),
  };
}

/**
 * Marks the stored readings (of one meter, or all) as committed on time a day ago, so that a close sees as
 * late data only what is stored after this.
 */
export async function markReceivedOnTime(stack: TestStack, meterId?: string): Promise<void> {
  await stack.pool.query(
    `UPDATE meter_readings SET received_after = NULL, received_at = now() - interval '1 day'
     WHERE $1::text IS NULL OR meter_key = (SELECT key FROM meters WHERE id = $1)`,
    [meterId ?? null],
  );
}
