/** Running charges of the open cycle, billing runs, and closed, immutable bills (JSON and CSV). */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { parseInstant } from '../../common/reading.js';
import { ADMIN_ONLY, STAFF_ONLY, requireAccountAccess } from '../http/auth.js';
import { notFound } from '../http/errors.js';
import { errorResponses } from '../http/responses.js';
import { idParamSchema, instantSchema, limitSchema } from '../http/schemas.js';
import { billLinesCsv } from './bill-document.js';
import type { BillingService } from './billing.service.js';
import type { ServiceState } from './service-lifecycle.repository.js';
import type { RunningChargesService } from './running-charges.js';

const monthSchema = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'must be a calendar month YYYY-MM');
const billingRunSchema = z
  .strictObject({
    asOf: instantSchema.optional().describe('closes every cycle that ended at or before asOf minus the grace period (BILLING_GRACE_DAYS); not in the future'),
    cyclesEndingIn: monthSchema
      .optional()
      .describe("closes, per account, the cycles whose last local day (the account's zone) is in this month or earlier, without a grace period; not a month that has not begun"),
  })
  .refine((b) => (b.asOf === undefined) !== (b.cyclesEndingIn === undefined), { message: 'give exactly one of asOf and cyclesEndingIn', path: ['asOf'] })
  .meta({ examples: [{ asOf: '2026-11-04T00:00:00Z' }, { cyclesEndingIn: '2026-10' }] });
const failureSchema = z.object({
  accountId: z.string(),
  cycle: z.object({ from: z.string(), to: z.string() }).nullable().describe('the cycle the run tried to close (null when it failed before choosing one)'),
  code: z.string().describe('e.g. no_tariff_in_effect, net_metering_not_rated, currency_mismatch, internal'),
  message: z.string(),
  details: z.array(z.string()).optional(),
});
const runSchema = z
  .object({
    id: z.string(),
    trigger: z.enum(['api', 'schedule', 'void']),
    state: z.enum(['running', 'finished', 'failed']),
    asOf: z.string(),
    cutoff: z.string().describe('cycles that ended at or before this instant are closed (with cyclesEndingIn: the month end in UTC; each account uses its own zone)'),
    cyclesEndingIn: z.string().nullable(),
    graceDays: z.number().int().nullable(),
    startedAt: z.string(),
    finishedAt: z.string().nullable(),
    durationMs: z.number().int().describe('finishedAt (or now, while running) minus startedAt'),
    progress: z.object({ accountsTotal: z.number().int().nullable(), accountsDone: z.number().int() }),
    billsCreated: z.number().int(),
    skipped: z.number().int().describe('accounts being closed by a concurrent run, and bills another run stored first'),
    failureCount: z.number().int(),
    failures: z.array(failureSchema).describe('accounts not billed (each stays open and is retried by the next run); in lists at most 100 per run'),
    error: z.string().nullable().describe('why the run stopped (state failed)'),
    accountsExamined: z.number().int().optional(),
    billIds: z.array(z.string()).optional(),
  })
  .meta({
    examples: [
      {
        id: 'run_5Jx2', trigger: 'api', state: 'finished', asOf: '2026-11-04T00:00:00.000Z', cutoff: '2026-11-01T00:00:00.000Z', cyclesEndingIn: null, graceDays: 3,
        startedAt: '2026-11-04T00:15:00.000Z', finishedAt: '2026-11-04T00:15:02.310Z', durationMs: 2310, progress: { accountsTotal: 3, accountsDone: 3 },
        billsCreated: 2, skipped: 0, failureCount: 1,
        failures: [{ accountId: 'ACC-3', cycle: { from: '2026-10-01T07:00:00Z', to: '2026-11-01T07:00:00Z' }, code: 'no_tariff_in_effect', message: 'meter "M-3" has no tariff assigned' }],
        error: null,
      },
    ],
  });
const runsQuerySchema = z.strictObject({
  limit: limitSchema,
  after: z.string().optional().describe('paging cursor: the id of the last run of the previous page'),
  state: z.enum(['running', 'finished', 'failed']).optional(),
});
const billsQuerySchema = z.strictObject({
  limit: limitSchema,
  after: instantSchema.optional().describe('paging cursor: cycle.from of the last document of the previous page'),
  afterId: z.string().optional().describe('paging cursor: with after, the id of the last document of the previous page'),
});
const billQuerySchema = z.strictObject({ format: z.enum(['json', 'csv']).default('json') });
const voidSchema = z.strictObject({ reason: z.string().max(500).optional().describe('why the bill is voided; kept on the credit note') }).meta({ examples: [{ reason: 'tariff assigned from the wrong date' }] });
const atSchema = z.strictObject({ at: instantSchema.describe('when it takes effect') }).meta({ examples: [{ at: '2026-10-17T12:00:00-07:00' }] });
const exchangeSchema = z
  .strictObject({ newMeterId: z.string().describe('the meter that replaces it: created with POST /v1/meters on the same account'), at: instantSchema })
  .meta({ examples: [{ newMeterId: 'MTR-000002', at: '2026-10-17T12:00:00-07:00' }] });
const billSummarySchema = z.looseObject({
  id: z.string(),
  kind: z.enum(['bill', 'credit_note']),
  revision: z.number().int(),
  status: z.enum(['issued', 'voided']),
  accountId: z.string(),
  total: z.string(),
  contentHash: z.string(),
});
const billSchema = z
  .looseObject({ id: z.string(), accountId: z.string(), currency: z.string(), total: z.string(), contentHash: z.string(), status: z.enum(['issued', 'voided']) })
  .describe('the stored document (a bill, or a credit note with kind credit_note), contentHash, status and, once voided, voidedBy');
const serviceStateSchema = z.object({
  accountId: z.string(),
  billsAffected: z.array(z.string()).optional().describe('closed bills whose cycle the change concerns: they stay as issued; voiding one re-bills it with the change'),
  service: z.object({ start: z.string().nullable(), end: z.string().nullable() }),
  meters: z.array(z.object({ meterId: z.string(), service: z.object({ start: z.string().nullable(), end: z.string().nullable() }), replaces: z.string().nullable() })),
  events: z.array(z.object({ event: z.string(), meterId: z.string().nullable(), effective: z.string(), detail: z.record(z.string(), z.unknown()), recordedBy: z.string().nullable(), recordedAt: z.string() })),
});

export const billingRoutes: FastifyPluginAsyncZod<{ billing: BillingService; running: RunningChargesService }> = async (app, { billing, running }) => {
  app.get(
    '/v1/accounts/:id/charges',
    {
      schema: {
        tags: ['billing'],
        summary: "Running charges of the account's open cycle",
        params: idParamSchema,
        response: {
          200: z.looseObject({ accountId: z.string(), currency: z.string().nullable().optional(), total: z.string().optional() }).describe('per meter the charges of the whole open cycle, and the account total'),
          ...errorResponses(401, 404, 409),
        },
        description:
          "Running charges of the account's open billing cycle: per meter in service during the open cycle, the charges of the part of the cycle in service (`inService` when a service start or end cuts it) rated from every reading committed before the request (no estimates), with what earlier cycles carry into it (net metering banks and balances, ratchet peaks), and the account total; an account whose service ended before the cycle answers no meters and zero totals.",
      },
    },
    async (req) => {
      requireAccountAccess(req, req.params.id, `account "${req.params.id}"`);
      const charges = await running.forAccount(req.params.id);
      if (!charges) throw notFound(`account "${req.params.id}"`);
      return { ...charges };
    },
  );

  app.post(
    '/v1/billing-runs',
    {
      config: ADMIN_ONLY,
      schema: {
        tags: ['billing'],
        summary: 'Start a billing run',
        description:
          'Starts closing billing cycles for every account (the service the scheduled job runs) and answers 202 at once with the run; follow it with GET /v1/billing-runs/{id} (Location). Either asOf (cycles that ended at or before asOf minus the grace period) or cyclesEndingIn (the cycles ending in a calendar month). An account that fails is recorded with its cycle and reason and stays open for the next run; the others go on. Idempotent; concurrent runs create one bill per account and cycle.',
        body: billingRunSchema,
        response: { 202: runSchema, ...errorResponses(400, 401, 403) },
      },
    },
    async (req, reply) => {
      const request = req.body.asOf !== undefined ? { asOf: parseInstant(req.body.asOf)! } : { cyclesEndingIn: req.body.cyclesEndingIn! };
      const { run } = await billing.startRun(request, 'api');
      return reply.code(202).header('location', `/v1/billing-runs/${encodeURIComponent(run.id)}`).send(run);
    },
  );

  app.get(
    '/v1/billing-runs',
    {
      config: STAFF_ONLY,
      schema: {
        tags: ['billing'],
        summary: 'List billing runs',
        description: 'Billing runs, latest first: state, progress, counts, duration and failures (at most 100 per run here; failureCount counts all).',
        querystring: runsQuerySchema,
        response: { 200: z.object({ items: z.array(runSchema), next: z.string().nullable() }), ...errorResponses(400, 401, 403) },
      },
    },
    async (req) => {
      const items = await billing.runs(req.query.after ?? null, req.query.limit, req.query.state ?? null);
      const state = req.query.state ? `&state=${req.query.state}` : '';
      const next = items.length === req.query.limit ? `/v1/billing-runs?limit=${req.query.limit}&after=${encodeURIComponent(items[items.length - 1].id)}${state}` : null;
      return { items, next };
    },
  );

  app.get(
    '/v1/billing-runs/:id',
    {
      config: STAFF_ONLY,
      schema: {
        tags: ['billing'],
        summary: 'A billing run',
        description: 'A billing run as it stands (running, finished or failed), with every account it could not bill.',
        params: idParamSchema,
        response: { 200: runSchema, ...errorResponses(401, 403, 404) },
      },
    },
    async (req) => {
      const run = await billing.run(req.params.id);
      if (!run) throw notFound(`billing run "${req.params.id}"`);
      return run;
    },
  );

  app.get(
    '/v1/accounts/:id/bills',
    {
      schema: {
        tags: ['billing'],
        summary: "An account's bills and credit notes",
        description: "The account's closed bills, credit notes and re-bills, oldest cycle first (in a cycle: the bill, its credit note, its re-bill). status voided: superseded by a re-bill.",
        params: idParamSchema,
        querystring: billsQuerySchema,
        response: { 200: z.object({ items: z.array(billSummarySchema), next: z.string().nullable() }), ...errorResponses(400, 401, 404) },
      },
    },
    async (req) => {
      requireAccountAccess(req, req.params.id, `account "${req.params.id}"`);
      const after = req.query.after === undefined ? null : parseInstant(req.query.after);
      const items = await billing.bills(req.params.id, after, req.query.limit, after === null ? null : (req.query.afterId ?? null));
      if (!items) throw notFound(`account "${req.params.id}"`);
      const last = items[items.length - 1];
      const next =
        items.length === req.query.limit
          ? `/v1/accounts/${encodeURIComponent(req.params.id)}/bills?limit=${req.query.limit}&after=${encodeURIComponent(last.cycle.from)}&afterId=${encodeURIComponent(last.id)}`
          : null;
      return { items: items.map((i) => ({ ...i })), next };
    },
  );

  const billFor = async (req: Parameters<typeof requireAccountAccess>[0], id: string) => {
    const bill = await billing.bill(id);
    if (!bill) throw notFound(`bill "${id}"`);
    requireAccountAccess(req, bill.document.accountId, `bill "${id}"`);
    return bill;
  };

  app.get(
    '/v1/bills/:id',
    {
      schema: {
        tags: ['billing'],
        summary: 'A bill or credit note',
        description:
          'A closed bill (or credit note) as stored, never changed, with contentHash = SHA-256 of the canonical JSON of the stored document (every member but contentHash, status and voidedBy); status voided and voidedBy (its credit note and re-bill) once voided. ?format=csv answers its lines as CSV.',
        params: idParamSchema,
        querystring: billQuerySchema,
        response: { 200: billSchema, ...errorResponses(400, 401, 404) },
      },
    },
    async (req, reply) => {
      const bill = await billFor(req, req.params.id);
      if (req.query.format === 'csv') return sendCsv(reply, bill.document);
      return { ...bill.document, contentHash: bill.contentHash, status: bill.voidedBy ? ('voided' as const) : ('issued' as const), ...(bill.voidedBy ? { voidedBy: bill.voidedBy } : {}) };
    },
  );

  app.get(
    '/v1/bills/:id/lines.csv',
    { schema: { tags: ['billing'], summary: "A bill's lines as CSV", description: "The bill's lines as CSV (RFC 4180); a credit note's reversals. After the charge and adjustment lines, rows stating what each meter carries across cycles (types metering, bank, running_net, balance, year_bills: quantity and unit, amount empty, so the amount column sums to the total; see the billing README).", params: idParamSchema, response: { 200: z.string().describe('text/csv: RFC 4180, CRLF, a header row'), ...errorResponses(401, 404) } } },
    async (req, reply) => sendCsv(reply, (await billFor(req, req.params.id)).document),
  );

  app.post(
    '/v1/bills/:id/void',
    {
      config: ADMIN_ONLY,
      schema: {
        tags: ['billing'],
        summary: 'Void a bill: credit note and re-bill',
        description:
          'Voids a closed bill without changing it: stores a credit note reversing what it charged for its cycle (its meters\' charges and every later adjustment of them) and a re-bill of the cycle rated from the data, tariff assignments and service spans stored now. Both are documents with content hashes, name each other and the voided bill, and are listed with the account\'s bills. 409 for a credit note, a bill already voided, or a cycle that cannot be rated now (nothing is stored then).',
        params: idParamSchema,
        body: voidSchema,
        response: {
          201: z.object({ voided: z.string(), creditNote: z.looseObject({ id: z.string(), kind: z.literal('credit_note'), total: z.string(), contentHash: z.string() }), rebill: z.looseObject({ id: z.string(), total: z.string(), contentHash: z.string() }) }),
          ...errorResponses(400, 401, 403, 404, 409),
        },
      },
    },
    async (req, reply) => {
      const result = await billing.voidBill(req.params.id, req.body?.reason ?? null);
      return reply.code(201).send({ voided: result.voided, creditNote: { ...result.creditNote }, rebill: { ...result.rebill } });
    },
  );

  const lifecycle = billing.lifecycle;
  const by = (req: { principal: { tokenId: string } | null }) => req.principal?.tokenId ?? null;
  const lifecycleRoute = (
    path: string,
    summary: string,
    description: string,
    body: typeof atSchema | typeof exchangeSchema,
    apply: (id: string, body: { at: string; newMeterId?: string }, who: string | null) => Promise<ServiceState>,
  ) =>
    app.post(
      path,
      {
        config: ADMIN_ONLY,
        schema: { tags: ['service lifecycle'], summary, description, params: idParamSchema, body, response: { 200: serviceStateSchema, ...errorResponses(400, 401, 403, 404) } },
      },
      async (req) => ({ ...(await apply((req.params as { id: string }).id, req.body as { at: string; newMeterId?: string }, by(req))) }),
    );
  const at = (body: { at: string }) => parseInstant(body.at)!;
  lifecycleRoute('/v1/accounts/:id/move-in', 'Move-in: start the account\'s service', 'The account is in service from `at`: nothing before it is billed, and the cycle holding it is prorated. Answers the account\'s service state.', atSchema, (id, b, who) => lifecycle.moveIn(id, at(b), who));
  lifecycleRoute('/v1/accounts/:id/move-out', 'Move-out: end the account\'s service', 'The account\'s service ends at `at`: the cycle holding it is its last, prorated; no later cycle is billed.', atSchema, (id, b, who) => lifecycle.moveOut(id, at(b), who));
  lifecycleRoute('/v1/meters/:id/service-start', 'Start a meter\'s service', 'The meter is billed from `at` (its first cycle prorated); readings before it are kept but not billed.', atSchema, (id, b, who) => lifecycle.meterStart(id, at(b), who));
  lifecycleRoute('/v1/meters/:id/service-end', 'End a meter\'s service', 'Nothing after `at` is billed for the meter; its last cycle is prorated.', atSchema, (id, b, who) => lifecycle.meterEnd(id, at(b), who));
  lifecycleRoute(
    '/v1/meters/:id/exchange',
    'Exchange a meter',
    'The meter\'s service ends and newMeterId\'s (a meter of the same account) starts at `at`: the account\'s cycle continues, each meter billed for its part of it.',
    exchangeSchema,
    (id, b, who) => lifecycle.exchange(id, b.newMeterId!, at(b), who),
  );

  app.get(
    '/v1/accounts/:id/service',
    {
      schema: {
        tags: ['service lifecycle'],
        summary: "An account's service lifecycle",
        description: "The account's service span (move-in, move-out), each meter's (and the meter it replaced), and every lifecycle event with who recorded it.",
        params: idParamSchema,
        response: { 200: serviceStateSchema, ...errorResponses(401, 404) },
      },
    },
    async (req) => {
      requireAccountAccess(req, req.params.id, `account "${req.params.id}"`);
      const state = await lifecycle.state(req.params.id);
      if (!state) throw notFound(`account "${req.params.id}"`);
      return state;
    },
  );
};

function sendCsv(reply: import('fastify').FastifyReply, document: Parameters<typeof billLinesCsv>[0]) {
  return reply
    .type('text/csv; charset=utf-8')
    .header('content-disposition', `attachment; filename="${document.id}.csv"`)
    .send(billLinesCsv(document));
}
