/** Running charges of the open cycle, billing runs, and closed, immutable bills (JSON and CSV). */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { parseInstant } from '../../common/reading.js';
import { ADMIN_ONLY, STAFF_ONLY, requireAccountAccess } from '../http/auth.js';
import { notFound } from '../http/errors.js';
import { idParamSchema, instantSchema, limitSchema } from '../http/schemas.js';
import { billLinesCsv } from './bill-document.js';
import type { BillingService } from './billing.service.js';
import type { RunningChargesService } from './running-charges.js';

const billingRunSchema = z.strictObject({
  asOf: instantSchema.describe('closes every cycle that ended at or before asOf minus the grace period (BILLING_GRACE_DAYS); not in the future'),
});
const billsQuerySchema = z.strictObject({
  limit: limitSchema,
  after: instantSchema.optional().describe('paging cursor: cycle.from of the last bill of the previous page'),
});
const billQuerySchema = z.strictObject({ format: z.enum(['json', 'csv']).default('json') });

export const billingRoutes: FastifyPluginAsyncZod<{ billing: BillingService; running: RunningChargesService }> = async (app, { billing, running }) => {
  app.get(
    '/v1/accounts/:id/charges',
    {
      schema: {
        tags: ['billing'],
        params: idParamSchema,
        description:
          "Running charges of the account's open billing cycle: per meter, the charges of the whole cycle rated from every reading committed before the request (no estimates), and the account total.",
      },
    },
    async (req) => {
      requireAccountAccess(req, req.params.id, `account "${req.params.id}"`);
      const charges = await running.forAccount(req.params.id);
      if (!charges) throw notFound(`account "${req.params.id}"`);
      return charges;
    },
  );

  app.post(
    '/v1/billing-runs',
    {
      config: ADMIN_ONLY,
      schema: {
        tags: ['billing'],
        body: billingRunSchema,
        description:
          'Closes every billing cycle that ended at or before asOf minus the grace period, for every account (the same service as the scheduled job). Idempotent; concurrent runs create one bill per account and cycle. Answers when the run is finished.',
      },
    },
    async (req, reply) => reply.code(201).send(await billing.closeCycles(parseInstant(req.body.asOf)!, 'api')),
  );

  app.get('/v1/billing-runs/:id', { config: STAFF_ONLY, schema: { tags: ['billing'], params: idParamSchema } }, async (req) => {
    const run = await billing.run(req.params.id);
    if (!run) throw notFound(`billing run "${req.params.id}"`);
    return run;
  });

  app.get(
    '/v1/accounts/:id/bills',
    { schema: { tags: ['billing'], params: idParamSchema, querystring: billsQuerySchema, description: "The account's closed bills, oldest cycle first." } },
    async (req) => {
      requireAccountAccess(req, req.params.id, `account "${req.params.id}"`);
      const after = req.query.after === undefined ? null : parseInstant(req.query.after);
      const items = await billing.bills(req.params.id, after, req.query.limit);
      if (!items) throw notFound(`account "${req.params.id}"`);
      const next =
        items.length === req.query.limit
          ? `/v1/accounts/${encodeURIComponent(req.params.id)}/bills?limit=${req.query.limit}&after=${encodeURIComponent(items[items.length - 1].cycle.from)}`
          : null;
      return { items, next };
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
        params: idParamSchema,
        querystring: billQuerySchema,
        description: 'A closed bill as stored (never changed), with contentHash = SHA-256 of its canonical JSON. ?format=csv answers its lines as CSV.',
      },
    },
    async (req, reply) => {
      const bill = await billFor(req, req.params.id);
      if (req.query.format === 'csv') return sendCsv(reply, bill.document);
      return { ...bill.document, contentHash: bill.contentHash };
    },
  );

  app.get('/v1/bills/:id/lines.csv', { schema: { tags: ['billing'], params: idParamSchema, description: "The bill's lines as CSV (RFC 4180)." } }, async (req, reply) =>
    sendCsv(reply, (await billFor(req, req.params.id)).document),
  );
};

function sendCsv(reply: import('fastify').FastifyReply, document: Parameters<typeof billLinesCsv>[0]) {
  return reply
    .type('text/csv; charset=utf-8')
    .header('content-disposition', `attachment; filename="${document.id}.csv"`)
    .send(billLinesCsv(document));
}
