/** Consumption of a meter in local-time buckets. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { parseInstant } from '../../common/reading.js';
import { isoUtc } from '../../common/time.js';
import { requireAccountAccess } from '../http/auth.js';
import { badRequest } from '../http/errors.js';
import { errorResponses, example } from '../http/responses.js';
import { idParamSchema, instantSchema, limitSchema, timezoneSchema } from '../http/schemas.js';
import { GROUP_BY } from './consumption.js';
import type { ConsumptionService } from './consumption.service.js';

/** The longest window one request may span. */
const MAX_WINDOW_DAYS = 800;

const consumptionQuerySchema = z.strictObject({
  from: instantSchema,
  to: instantSchema,
  groupBy: z.enum(GROUP_BY).default('interval').describe('bucket: the meter\'s interval, or a local hour, day or month in tz'),
  tz: timezoneSchema.optional().describe("IANA zone of the buckets; default the meter's"),
  limit: limitSchema.describe('buckets per page'),
});

const bucketSchema = z.object({
  from: z.string(),
  to: z.string(),
  localFrom: z.string().describe('the bucket start in tz, with its offset'),
  importKwh: z.string(),
  exportKwh: z.string(),
  intervals: z.object({ expected: z.number(), actual: z.number(), estimated: z.number() }),
  periods: z
    .array(z.object({ tariffId: z.string(), period: z.string(), importKwh: z.string(), exportKwh: z.string() }))
    .optional()
    .describe('kWh per energy period of the tariff in effect; absent for a meter without tariff'),
});
const consumptionSchema = z.object({
  meterId: z.string(),
  from: z.string(),
  to: z.string(),
  groupBy: z.enum(GROUP_BY),
  tz: z.string(),
  intervalSeconds: z.number(),
  items: z.array(bucketSchema),
  next: z.string().nullable(),
});

export const consumptionRoutes: FastifyPluginAsyncZod<{ consumption: ConsumptionService }> = async (app, { consumption }) => {
  app.get(
    '/v1/meters/:id/consumption',
    {
      schema: {
        tags: ['readings'],
        summary: 'Consumption of a meter per local hour, day, month or interval',
        params: idParamSchema,
        querystring: consumptionQuerySchema,
        response: {
          200: example(consumptionSchema, {
            meterId: 'MTR-000001', from: '2026-10-25T00:00:00Z', to: '2026-10-26T00:00:00Z', groupBy: 'day', tz: 'Europe/London', intervalSeconds: 900,
            items: [{ from: '2026-10-24T23:00:00Z', to: '2026-10-26T00:00:00Z', localFrom: '2026-10-25T00:00:00+01:00', importKwh: '12.5', exportKwh: '0', intervals: { expected: 100, actual: 100, estimated: 0 }, periods: [{ tariffId: 'flat-uk', period: 'any', importKwh: '12.5', exportKwh: '0' }] }],
            next: null,
          }),
          ...errorResponses(400, 404),
        },
        description:
          'Import and export kWh (exact decimal strings) per bucket of [from, to), with interval counts and kWh per time-of-use period of the tariff in effect. Buckets are local-time units in tz (23- and 25-hour days, two buckets for a repeated hour); every bucket is listed, empty ones included. Pages with limit; next starts at the following bucket.',
      },
    },
    async (req) => {
      const meter = await consumption.meter(req.params.id);
      requireAccountAccess(req, meter.accountId, `meter "${req.params.id}"`);
      const q = req.query;
      const from = parseInstant(q.from)!;
      const to = parseInstant(q.to)!;
      if (to <= from) throw badRequest('invalid window', [{ field: 'querystring.to', message: 'must be after from' }]);
      if (to - from > MAX_WINDOW_DAYS * 86_400_000) {
        throw badRequest('invalid window', [{ field: 'querystring.to', message: `a window spans at most ${MAX_WINDOW_DAYS} days` }]);
      }
      const zone = q.tz ?? meter.timezone;
      const page = await consumption.page(meter, { from, to, groupBy: q.groupBy, zone, limit: q.limit });
      let next: string | null = null;
      if (page.nextFrom !== null) {
        const params = new URLSearchParams({ from: new Date(page.nextFrom).toISOString(), to: q.to, groupBy: q.groupBy, tz: zone, limit: String(q.limit) });
        next = `/v1/meters/${encodeURIComponent(meter.id)}/consumption?${params}`;
      }
      return { meterId: meter.id, from: isoUtc(from), to: isoUtc(to), groupBy: q.groupBy, tz: zone, intervalSeconds: meter.intervalSeconds, items: page.items, next };
    },
  );
};
