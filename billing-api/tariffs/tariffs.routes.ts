/** Tariffs (native documents and URDB imports) and tariff assignments. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { parseInstant } from '../../common/reading.js';
import { tariffSchema, type TariffAssignment, type TariffDocument } from '../../rating/index.js';
import { ADMIN_ONLY, requireAccountAccess } from '../http/auth.js';
import { notFound } from '../http/errors.js';
import { idParamSchema, idSchema, instantSchema, limitSchema, timezoneSchema } from '../http/schemas.js';
import type { TariffsService } from './tariffs.service.js';

const urdbImportSchema = z.strictObject({
  id: idSchema.optional().describe('tariff id; default: the URDB label'),
  timezone: timezoneSchema.describe("IANA zone of the utility's clock, in which the URDB schedules are read"),
  rate: z.record(z.string(), z.unknown()).describe('one URDB rate object as the OpenEI API (v3-v8, detail=full) returns it'),
  tierScope: z
    .enum(['window', 'period'])
    .optional()
    .describe('what energy tier limits count: the whole billing window across periods (window, default) or each period (period)'),
  billingDemand: z
    .strictObject({ lookbackHorizonMonths: z.int().min(1).max(36).describe('billing cycles a ratchet looks back when lookbackrange does not say') })
    .optional()
    .describe('demand ratchet options'),
  effectiveFrom: instantSchema
    .nullable()
    .optional()
    .describe("the version's effectiveFrom; default: the rate's startdate; null: none (in effect from the beginning of time)"),
});

const assignmentSchema = z.strictObject({ tariffId: idSchema, effectiveFrom: instantSchema });

/** Assignments as the API writes them: effectiveFrom in UTC, null for the first (all history). */
const assignmentsOut = (assignments: TariffAssignment[]) =>
  assignments.map((a) => ({ tariffId: a.tariffId, effectiveFrom: Number.isFinite(a.effectiveFrom) ? new Date(a.effectiveFrom).toISOString() : null }));

export const tariffsRoutes: FastifyPluginAsyncZod<{ tariffs: TariffsService }> = async (app, { tariffs }) => {
  app.post(
    '/v1/tariffs',
    { config: ADMIN_ONLY, schema: { tags: ['tariffs'], body: tariffSchema, description: 'Stores a native tariff document (a new version when the id exists and effectiveFrom is later than the latest version).' } },
    async (req, reply) => reply.code(201).send(await tariffs.store(req.body as TariffDocument, 'native', undefined)),
  );

  app.post(
    '/v1/tariffs/urdb',
    {
      config: ADMIN_ONLY,
      schema: {
        tags: ['tariffs'],
        body: urdbImportSchema,
        description:
          'Imports one URDB rate (contract section 4). Unsupported features are refused with a 400 naming each field; data that ' +
          'looks wrong but can be rated as stated (negative or implausibly high prices, a rate whose enddate has passed, a ' +
          'ratchet without its look-back) is imported and listed in `warnings`, each naming its field.',
      },
    },
    async (req, reply) => {
      const { warnings, ...stored } = await tariffs.importUrdb(req.body.rate, {
        timeZone: req.body.timezone,
        id: req.body.id,
        tierScope: req.body.tierScope,
        billingDemand: req.body.billingDemand,
        ...(req.body.effectiveFrom !== undefined ? { effectiveFrom: req.body.effectiveFrom } : {}),
      });
      return reply.code(201).send({ ...stored, warnings: warnings.map((w) => ({ field: w.path, message: w.message })) });
    },
  );

  app.get('/v1/tariffs', { schema: { tags: ['tariffs'], querystring: z.strictObject({ limit: limitSchema, after: z.string().optional() }) } }, async (req) => {
    const items = await tariffs.list(req.query.limit, req.query.after);
    const next = items.length === req.query.limit ? `/v1/tariffs?limit=${req.query.limit}&after=${encodeURIComponent(items[items.length - 1].id)}` : null;
    return { items, next };
  });

  app.get(
    '/v1/tariffs/:id',
    { schema: { tags: ['tariffs'], params: idParamSchema, querystring: z.strictObject({ version: z.coerce.number().int().positive().optional() }) } },
    async (req) => {
      const versions = await tariffs.versions(req.params.id);
      const chosen = req.query.version === undefined ? versions[versions.length - 1] : versions.find((v) => v.version === req.query.version);
      if (!chosen) throw notFound(`version ${req.query.version} of tariff "${req.params.id}"`);
      return {
        id: req.params.id,
        ...chosen,
        versions: versions.map(({ version, effectiveFrom, source, createdAt }) => ({ version, effectiveFrom, source, createdAt })),
      };
    },
  );

  app.put(
    '/v1/meters/:id/tariff',
    { config: ADMIN_ONLY, schema: { tags: ['tariffs'], params: idParamSchema, body: assignmentSchema, description: 'Assigns a tariff from effectiveFrom on; it must be later than the meter\'s latest assignment (history is never repriced).' } },
    async (req) => {
      const assignments = await tariffs.assign(req.params.id, req.body.tariffId, parseInstant(req.body.effectiveFrom)!);
      return { meterId: req.params.id, assignments: assignmentsOut(assignments) };
    },
  );

  app.get('/v1/meters/:id/tariff', { schema: { tags: ['tariffs'], params: idParamSchema } }, async (req) => {
    const meter = await tariffs.meter(req.params.id);
    requireAccountAccess(req, meter.accountId, `meter "${req.params.id}"`);
    return { meterId: meter.id, assignments: assignmentsOut(await tariffs.assignments(meter.id)) };
  });
};
