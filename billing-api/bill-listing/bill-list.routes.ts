/** GET /v1/bills: closed bills across accounts, for the back office. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { parseInstant } from '../../common/reading.js';
import { STAFF_ONLY } from '../http/auth.js';
import { badRequest } from '../http/errors.js';
import { errorResponses, example, nextPage, page } from '../http/responses.js';
import { idSchema, instantSchema, limitSchema } from '../http/schemas.js';
import type { BillListRepository } from './bill-list.repository.js';

const billListItemSchema = z.object({
  id: z.string(),
  accountId: z.string(),
  cycle: z.unknown().describe('the cycle as the bill states it (from, to, firstDay, lastDay, days)'),
  billDate: z.string().nullable(),
  closedAt: z.string(),
  currency: z.string(),
  subtotal: z.string().nullable(),
  taxes: z.string().nullable(),
  adjustmentsTotal: z.string().nullable(),
  total: z.string().nullable(),
  contentHash: z.string(),
  billingRunId: z.string(),
});

const querySchema = z.strictObject({
  closedFrom: instantSchema.optional().describe('only bills closed at or after this instant'),
  closedTo: instantSchema.optional().describe('only bills closed before this instant'),
  accountId: idSchema.optional(),
  limit: limitSchema,
  after: z.string().max(200).optional().describe('paging cursor: take the next link as given'),
});

export const billListRoutes: FastifyPluginAsyncZod<{ bills: BillListRepository }> = async (app, { bills }) => {
  app.get(
    '/v1/bills',
    {
      config: STAFF_ONLY,
      schema: {
        tags: ['billing'],
        summary: 'List closed bills across accounts, in the order they were closed',
        description: 'For the back office (admin, reader): e.g. every bill closed yesterday with closedFrom and closedTo. Each item is the summary GET /v1/accounts/{id}/bills lists, with the billing run that closed it.',
        querystring: querySchema,
        response: {
          200: example(page(billListItemSchema), {
            items: [{ id: 'ACC-000001.2026-10-01', accountId: 'ACC-000001', cycle: { from: '2026-09-30T23:00:00Z', to: '2026-11-01T00:00:00Z' }, billDate: '2026-11-04', closedAt: '2026-11-04T00:15:03Z', currency: 'GBP', subtotal: '41.20', taxes: '2.06', adjustmentsTotal: '0.00', total: '43.26', contentHash: '9f2c...', billingRunId: 'run_1' }],
            next: null,
          }),
          ...errorResponses(400, 403),
        },
      },
    },
    async (req) => {
      const q = req.query;
      let after: { closedAt: string; id: string } | undefined;
      if (q.after !== undefined) {
        const [closedAt, id, ...rest] = q.after.split(',');
        if (rest.length || !id || !/^\d{4}-\d\d-\d\dT[\d:.]+Z$/.test(closedAt) || Number.isNaN(Date.parse(closedAt))) throw badRequest('invalid querystring: 1 problem(s)', [{ field: 'querystring.after', message: 'not a bills cursor: take the next link as given' }]);
        after = { closedAt, id };
      }
      const { items, cursor } = await bills.list({
        closedFrom: q.closedFrom === undefined ? undefined : parseInstant(q.closedFrom)!,
        closedTo: q.closedTo === undefined ? undefined : parseInstant(q.closedTo)!,
        accountId: q.accountId,
        after,
        limit: q.limit,
      });
      return { items, next: nextPage('/v1/bills', q, items, q.limit, () => cursor!) };
    },
  );
};
