/** Consumption of a meter in local-time buckets. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { parseInstant } from '../../common/reading.js';
import { isoUtc } from '../../common/time.js';
import { requireAccountAccess } from '../http/auth.js';
import { badRequest } from '../http/errors.js';
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

export const consumptionRoutes: FastifyPluginAsyncZod<{ consumption: ConsumptionService }> = async (app, { consumption }) => {
  app.get(
    '/v1/meters/:id/consumption',
    {
      schema: {
        tags: ['readings'],
        params: idParamSchema,
        querystring: consumptionQuerySchema,
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
