/** Charges of a meter for any window (contract sections 3 and 4). */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { parseInstant } from '../../common/reading.js';
import { requireAccountAccess } from '../http/auth.js';
import { badRequest, notFound } from '../http/errors.js';
import { errorResponses, example } from '../http/responses.js';
import { idParamSchema, instantSchema } from '../http/schemas.js';
import type { ChargesService } from './charges.service.js';

/** The longest window one request may span. */
const MAX_WINDOW_DAYS = 400;

const windowSchema = z.strictObject({ from: instantSchema, to: instantSchema });

const chargeLineSchema = z.looseObject({
  type: z.string().describe('energy, demand, fixed, minimum, export_credit, ...'),
  period: z.string().nullable().optional().describe('p0, p1, ... (URDB index); trueup and carryover mark settlement lines; reactive marks the reactive power charge (a demand line in kVAR)'),
  tier: z.number().int().nullable().optional(),
  quantity: z.string().optional().describe('kWh, kW, kVAR, days or months, exact decimal'),
  rate: z.string().optional(),
  amount: z.string().describe('rounded half-up to the cent'),
});

const chargesSchema = example(
  z
    .looseObject({
      meterId: z.string(),
      from: z.string(),
      to: z.string(),
      currency: z.string().nullable().optional(),
      lines: z.array(chargeLineSchema).optional(),
      total: z.string().optional(),
    })
    .describe('The charges of the window: lines, total, per tariff piece the billing demand, notes and the metering state carried in and out'),
  {
    meterId: 'MTR-000001',
    from: '2026-10-01T00:00:00-07:00',
    to: '2026-11-01T00:00:00-07:00',
    currency: 'USD',
    lines: [
      { type: 'energy', period: 'p0', tier: 1, quantity: '412.5', rate: '0.21', amount: '86.63' },
      { type: 'fixed', quantity: '1', rate: '10', amount: '10.00' },
    ],
    total: '96.63',
  },
);

/** Which account a meter belongs to (the provisioning service), for the access check before a 400. */
export interface MeterAccounts {
  meterAccount(id: string): Promise<string | null>;
}

export const chargesRoutes: FastifyPluginAsyncZod<{ charges: ChargesService; meters: MeterAccounts }> = async (app, { charges, meters }) => {
  app.get(
    '/v1/meters/:id/charges',
    {
      schema: {
        tags: ['charges'],
        summary: "A meter's charges for any window",
        params: idParamSchema,
        querystring: windowSchema,
        description:
          'Charges for [from, to), rated from the readings committed at the moment of the request (contract sections 3 and 4). Under a tariff that carries across billing cycles (net metering, net billing with a balance, an annual minimum) the window starts from what the cycles since the last true-up carried into it, and a window spanning several of the account\'s billing cycles is rated as the bills of those cycles would rate them (`metering.parts`), so a year equals the sum of its months.',
        response: { 200: chargesSchema, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (req) => {
      const meterId = req.params.id;
      const from = parseInstant(req.query.from)!;
      const to = parseInstant(req.query.to)!;
      const windowProblem = to <= from ? 'must be after from' : to - from > MAX_WINDOW_DAYS * 86_400_000 ? `a window spans at most ${MAX_WINDOW_DAYS} days` : null;
      if (windowProblem) {
        // 404 (unknown meter, or another account's for a customer) before 400, as for every route.
        const accountId = await meters.meterAccount(meterId);
        if (!accountId) throw notFound(`meter "${meterId}"`);
        requireAccountAccess(req, accountId, `meter "${meterId}"`);
        throw badRequest('invalid window', [{ field: 'querystring.to', message: windowProblem }]);
      }
      // One round trip: the meter, its tariffs and its intervals; a customer's request reads intervals only
      // of the customer's own meters, and another account's meter is a 404 before anything is rated.
      return charges.forMeter(meterId, from, to, {
        scopeAccountId: req.principal?.role === 'customer' ? req.principal.accountId : null,
        authorize: (accountId) => requireAccountAccess(req, accountId, `meter "${meterId}"`),
      });
    },
  );
};
