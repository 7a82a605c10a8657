/** Stored interval data and quarantined input. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { parseInstant } from '../../common/reading.js';
import { STAFF_ONLY, requireAccountAccess } from '../http/auth.js';
import { errorResponses, example, page } from '../http/responses.js';
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

const readingSchema = z.object({
  intervalStart: z.string(),
  intervalSeconds: z.number(),
  importWh: z.string().describe('exact decimal string of Wh'),
  exportWh: z.string(),
  quality: z.enum(['actual', 'estimated']),
  receivedAt: z.string().describe('when the reading (or its latest replacement) was committed'),
  reactiveImportVarh: z
    .string()
    .optional()
    .describe('reactive energy imported (lagging, OBIS 3.8.0), exact decimal string of varh; absent when the meter did not measure it (not 0)'),
  reactiveExportVarh: z.string().optional().describe('reactive energy exported (leading, OBIS 4.8.0), varh; absent when not measured'),
});
const quarantineItemSchema = z.object({
  id: z.number(),
  receivedAt: z.string(),
  deviceId: z.string().nullable(),
  topic: z.string().nullable(),
  reason: z.string().describe('invalid_json, schema, payload_too_large, unknown_meter, not_assigned, misaligned, interval_mismatch, future, implausible, conflicting_duplicate, before_service_window'),
  detail: z.string().nullable(),
  meterId: z.string().nullable(),
  intervalStart: z.string().nullable(),
  raw: z.string().nullable().describe('the raw input as UTF-8 text (null when it is not valid UTF-8: see rawBase64)'),
  rawBase64: z.string().nullable(),
  rawSize: z.number(),
  rawSha256: z.string(),
  rawTruncated: z.boolean(),
});

const instant = (s: string | undefined) => (s === undefined ? null : parseInstant(s));

export const readingsRoutes: FastifyPluginAsyncZod<{ readings: ReadingsService }> = async (app, { readings }) => {
  app.get(
    '/v1/meters/:id/readings',
    {
      schema: {
        tags: ['readings'],
        summary: "A meter's stored intervals",
        params: idParamSchema,
        querystring: readingsQuerySchema,
        description:
          'Stored intervals in [from, to), ordered by intervalStart. Energy as exact decimal strings of Wh; reactive energy (varh) only on intervals whose reading carried it.',
        response: {
          200: example(page(readingSchema), {
            items: [{ intervalStart: '2026-03-08T09:00:00Z', intervalSeconds: 900, importWh: '250.5', exportWh: '0', quality: 'actual', receivedAt: '2026-03-08T09:15:02Z' }],
            next: '/v1/meters/MTR-000001/readings?limit=1&after=2026-03-08T09%3A00%3A00.000Z',
          }),
          ...errorResponses(400, 404),
        },
      },
    },
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
    {
      config: STAFF_ONLY,
      schema: {
        tags: ['readings'],
        summary: 'Quarantined input, for the back office',
        querystring: quarantineQuerySchema,
        description: 'Quarantined input (by time received), with the raw payload as UTF-8 text or, when not valid UTF-8, base64.',
        response: {
          200: example(page(quarantineItemSchema), {
            items: [{ id: 17, receivedAt: '2026-03-08T09:15:02Z', deviceId: 'MTR-000001', topic: 'meters/MTR-000001/readings', reason: 'misaligned', detail: 'intervalStart is not aligned to 900 s', meterId: 'MTR-000001', intervalStart: '2026-03-08T09:07:00Z', raw: '{"intervalStart":"2026-03-08T09:07:00Z","intervalSeconds":900,"importWh":1}', rawBase64: null, rawSize: 71, rawSha256: '5f1d...', rawTruncated: false }],
            next: null,
          }),
          ...errorResponses(400, 403),
        },
      },
    },
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
