/** Stored interval data and quarantined input. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { parseInstant } from '../../common/reading.js';
import { STAFF_ONLY, requireAccountAccess } from '../http/auth.js';
import { idParamSchema, instantSchema, limitSchema } from '../http/schemas.js';
import type { ReadingsService } from './readings.service.js';

const readingsQuerySchema = z.strictObject({
  from: instantSchema.optional(),
  to: instantSchema.optional(),
  limit: limitSchema,
  after: instantSchema.optional().describe('paging cursor: intervalStart of the last item of the previous page'),
});

const quarantineQuerySchema = z.strictObject({
  deviceId: z.string().max(64).optional(),
  reason: z.string().max(64).optional(),
  from: instantSchema.optional(),
  to: instantSchema.optional(),
  limit: limitSchema,
  after: z.coerce.number().int().min(0).optional().describe('paging cursor: id of the last item of the previous page'),
});

const instant = (s: string | undefined) => (s === undefined ? null : parseInstant(s));

export const readingsRoutes: FastifyPluginAsyncZod<{ readings: ReadingsService }> = async (app, { readings }) => {
  app.get(
    '/v1/meters/:id/readings',
    { schema: { tags: ['readings'], params: idParamSchema, querystring: readingsQuerySchema, description: 'Stored intervals in [from, to), ordered by intervalStart. Energy as exact decimal strings of Wh.' } },
    async (req) => {
      const meter = await readings.meter(req.params.id);
      requireAccountAccess(req, meter.accountId, `meter "${req.params.id}"`);
      const q = req.query;
      const items = await readings.list(meter.id, instant(q.from), instant(q.to), instant(q.after), q.limit);
      let next: string | null = null;
      if (items.length === q.limit) {
        const params = new URLSearchParams();
        if (q.from) params.set('from', q.from);
        if (q.to) params.set('to', q.to);
        params.set('limit', String(q.limit));
        params.set('after', items[items.length - 1].intervalStart);
        next = `/v1/meters/${encodeURIComponent(meter.id)}/readings?${params}`;
      }
      return { items, next };
    },
  );

  app.get(
    '/v1/quarantine',
    { config: STAFF_ONLY, schema: { tags: ['readings'], querystring: quarantineQuerySchema, description: 'Quarantined input (by time received), with the raw payload as UTF-8 text or, when not valid UTF-8, base64.' } },
    async (req) => {
      const q = req.query;
      const items = await readings.quarantine({ deviceId: q.deviceId, reason: q.reason, from: instant(q.from), to: instant(q.to), after: q.after ?? null, limit: q.limit });
      let next: string | null = null;
      if (items.length === q.limit) {
        const params = new URLSearchParams();
        for (const [k, v] of Object.entries(q)) if (v !== undefined && k !== 'after') params.set(k, String(v));
        params.set('after', String(items[items.length - 1].id));
        next = `/v1/quarantine?${params}`;
      }
      return { items, next };
    },
  );
};
