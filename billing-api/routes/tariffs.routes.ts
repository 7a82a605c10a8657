/** Tariffs (native documents and URDB imports), tariff assignments, and charges for any window. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { parseInstant } from '../../common/reading.js';
import { importUrdb, tariffSchema, UrdbImportError, type TariffDocument, type UrdbIssue } from '../../rating/index.js';
import { ADMIN_ONLY, requireAccountAccess } from '../auth.js';
import type { ChargesService } from '../charges.service.js';
import { badRequest, conflict, notFound } from '../errors.js';
import type { ProvisioningService } from '../provisioning.service.js';
import { idParamSchema, idSchema, instantSchema, limitSchema, timezoneSchema } from '../schemas.js';
import type { TariffsRepository } from '../tariffs.repository.js';

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
const windowSchema = z.strictObject({ from: instantSchema, to: instantSchema });

export const tariffsRoutes: FastifyPluginAsyncZod<{ tariffs: TariffsRepository; charges: ChargesService; provisioning: ProvisioningService }> = async (
  app,
  { tariffs, charges, provisioning },
) => {
  const store = async (document: TariffDocument, source: 'native' | 'urdb', sourceDocument: unknown) => {
    const stored = await tariffs.insertVersion(document, source, sourceDocument);
    if ('conflict' in stored) throw conflict(stored.conflict);
    return { id: document.id, ...stored };
  };

  app.post(
    '/v1/tariffs',
    { config: ADMIN_ONLY, schema: { tags: ['tariffs'], body: tariffSchema, description: 'Stores a native tariff document (a new version when the id exists and effectiveFrom is later than the latest version).' } },
    async (req, reply) => reply.code(201).send(await store(req.body as TariffDocument, 'native', undefined)),
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
      let document: TariffDocument;
      let warnings: UrdbIssue[];
      try {
        ({ tariff: document, warnings } = importUrdb(req.body.rate, {
          timeZone: req.body.timezone,
          id: req.body.id,
          tierScope: req.body.tierScope,
          billingDemand: req.body.billingDemand,
          ...(req.body.effectiveFrom !== undefined ? { effectiveFrom: req.body.effectiveFrom } : {}),
          asOf: Date.now(),
        }));
      } catch (err) {
        if (err instanceof UrdbImportError) {
          throw badRequest(`URDB rate refused: ${err.issues.length} problem(s)`, err.issues.map((i) => ({ field: i.path, message: i.message })));
        }
        throw err;
      }
      const stored = await store(document, 'urdb', req.body.rate);
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
      if (!versions.length) throw notFound(`tariff "${req.params.id}"`);
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
      if (!(await provisioning.getMeter(req.params.id))) throw notFound(`meter "${req.params.id}"`);
      if (!(await tariffs.versions(req.body.tariffId)).length) {
        throw badRequest('invalid body: 1 problem(s)', [{ field: 'body.tariffId', message: `tariff "${req.body.tariffId}" does not exist` }]);
      }
      const refusal = await tariffs.assign(req.params.id, req.body.tariffId, parseInstant(req.body.effectiveFrom)!);
      if (refusal) throw conflict(refusal);
      return { meterId: req.params.id, assignments: await assignmentsOf(req.params.id) };
    },
  );

  const assignmentsOf = async (meterId: string) =>
    (await tariffs.assignments(meterId)).map((a) => ({
      tariffId: a.tariffId,
      effectiveFrom: Number.isFinite(a.effectiveFrom) ? new Date(a.effectiveFrom).toISOString() : null,
    }));

  app.get('/v1/meters/:id/tariff', { schema: { tags: ['tariffs'], params: idParamSchema } }, async (req) => {
    const meter = await provisioning.getMeter(req.params.id);
    if (!meter) throw notFound(`meter "${req.params.id}"`);
    requireAccountAccess(req, meter.accountId, `meter "${req.params.id}"`);
    return { meterId: meter.id, assignments: await assignmentsOf(meter.id) };
  });

  app.get(
    '/v1/meters/:id/charges',
    {
      schema: {
        tags: ['charges'],
        params: idParamSchema,
        querystring: windowSchema,
        description: 'Charges for [from, to), rated from the readings committed at the moment of the request (contract sections 3 and 4).',
      },
    },
    async (req) => {
      const meterId = req.params.id;
      const from = parseInstant(req.query.from)!;
      const to = parseInstant(req.query.to)!;
      const windowProblem = to <= from ? 'must be after from' : to - from > 400 * 86_400_000 ? 'a window spans at most 400 days' : null;
      if (windowProblem) {
        // 404 (unknown meter, or another account's for a customer) before 400, as for every route.
        const accountId = await provisioning.meterAccount(meterId);
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
