/** Tariffs (native documents and URDB imports) and tariff assignments. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { parseInstant } from '../../common/reading.js';
import { tariffSchema, type TariffDocument } from '../../rating/index.js';
import { netBillingSchema, netMeteringSchema } from '../../rating/tariff.schema.js';
import { ADMIN_ONLY, requireAccountAccess } from '../http/auth.js';
import { notFound } from '../http/errors.js';
import { errorResponses, example, page } from '../http/responses.js';
import type { Assignment } from './assignment-changes.js';
import type { Correction } from './tariffs.service.js';
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
  netMetering: netMeteringSchema.optional().describe('net metering options (contract section 4), for dgrules "Net Metering"'),
  netBilling: netBillingSchema.optional().describe('a net billing money balance (contract section 4), for dgrules "Net Billing ..."'),
  effectiveFrom: instantSchema
    .nullable()
    .optional()
    .describe("the version's effectiveFrom; default: the rate's startdate; null: none (in effect from the beginning of time)"),
});

const assignmentSchema = z.strictObject({ tariffId: idSchema, effectiveFrom: instantSchema });
const assignmentPatchSchema = z
  .strictObject({
    tariffId: idSchema.optional(),
    effectiveFrom: instantSchema.nullable().optional().describe('null: from the beginning of the meter\'s history'),
  })
  .refine((p) => Object.keys(p).length > 0, 'name at least one field to change');
const assignmentParamsSchema = z.object({ id: z.string(), assignmentId: z.string().regex(/^\d{1,18}$/, 'must be an assignment id') });

const assignmentOutSchema = z.object({
  id: z.string().describe('the assignment resource: /v1/meters/{meterId}/tariff-assignments/{id}'),
  tariffId: z.string(),
  effectiveFrom: z.string().nullable().describe('null: covers all earlier history'),
});
const meterAssignmentsSchema = z.object({ meterId: z.string(), assignments: z.array(assignmentOutSchema) });
const correctedSchema = meterAssignmentsSchema.extend({
  rebilled: z
    .array(z.object({ voided: z.string(), creditNoteId: z.string(), rebillId: z.string() }))
    .optional()
    .describe('with rebill=true: each closed bill the correction repriced, voided with a credit note and re-billed'),
  rebillFailures: z
    .array(z.object({ billId: z.string(), code: z.string(), message: z.string() }))
    .optional()
    .describe('with rebill=true: bills that could not be re-billed now (the correction stands; void them with POST /v1/bills/{id}/void once they can be rated)'),
});
const rebillQuerySchema = z.strictObject({
  rebill: z
    .enum(['true', 'false'])
    .default('false')
    .describe('true: a correction of billed time is not refused; each current bill it reprices is voided (credit note) and re-billed with the corrected assignments'),
});

/** Voids a bill with a credit note and re-bills its cycle (BillingService.voidBill). */
export type VoidBill = (billId: string, reason: string) => Promise<{ voided: string; creditNote: { id: string }; rebill: { id: string } }>;
const ASSIGNMENTS_EXAMPLE = {
  meterId: 'MTR-000001',
  assignments: [
    { id: '1', tariffId: 'flat-uk', effectiveFrom: null },
    { id: '7', tariffId: 'tou-uk', effectiveFrom: '2026-12-01T00:00:00Z' },
  ],
};

const tariffVersionSchema = z.object({
  version: z.number(),
  effectiveFrom: z.string().nullable(),
  source: z.enum(['native', 'urdb']),
  createdAt: z.string(),
});
const storedTariffSchema = tariffVersionSchema.extend({ id: z.string(), document: z.record(z.string(), z.unknown()).describe('the native tariff document') });
const TARIFF_EXAMPLE = { id: 'flat-uk', version: 1, effectiveFrom: null, source: 'native' as const, createdAt: '2026-11-30T09:00:00Z', document: { id: 'flat-uk', name: 'Flat 0.10', timeZone: 'Europe/London' } };

/** Assignments as the API writes them: effectiveFrom in UTC, null for the first (all history). */
const assignmentsOut = (assignments: Assignment[]) =>
  assignments.map((a) => ({ id: a.id, tariffId: a.tariffId, effectiveFrom: Number.isFinite(a.effectiveFrom) ? new Date(a.effectiveFrom).toISOString() : null }));

export const tariffsRoutes: FastifyPluginAsyncZod<{ tariffs: TariffsService; voidBill?: VoidBill }> = async (app, { tariffs, voidBill }) => {
  /** The assignments after a correction, and the re-bills it asked for (each void in its own transaction, oldest first). */
  const answer = async (meterId: string, correction: Correction, reason: string) => {
    const out: z.infer<typeof correctedSchema> = { meterId, assignments: assignmentsOut(correction.assignments) };
    if (!correction.rebill.length) return out;
    out.rebilled = [];
    out.rebillFailures = [];
    for (const billId of correction.rebill) {
      try {
        if (!voidBill) throw new Error('re-billing is not available in this process');
        const done = await voidBill(billId, reason);
        out.rebilled.push({ voided: done.voided, creditNoteId: done.creditNote.id, rebillId: done.rebill.id });
      } catch (err) {
        out.rebillFailures.push({ billId, code: (err as { code?: string }).code ?? 'internal', message: (err as Error).message });
      }
    }
    return out;
  };

  app.post(
    '/v1/tariffs',
    {
      config: ADMIN_ONLY,
      schema: {
        tags: ['tariffs'],
        summary: 'Store a native tariff (or its next version)',
        description: 'Stores a native tariff document (a new version when the id exists and effectiveFrom is later than the latest version).',
        body: tariffSchema,
        response: { 201: example(storedTariffSchema, TARIFF_EXAMPLE), ...errorResponses(400, 403, 409) },
      },
    },
    async (req, reply) => reply.code(201).send(await tariffs.store(req.body as TariffDocument, 'native', undefined)),
  );

  app.post(
    '/v1/tariffs/urdb',
    {
      config: ADMIN_ONLY,
      schema: {
        tags: ['tariffs'],
        summary: 'Import a URDB rate as a tariff',
        body: urdbImportSchema,
        description:
          'Imports one URDB rate (contract section 4). Unsupported features are refused with a 400 naming each field; data that ' +
          'looks wrong but can be rated as stated (negative or implausibly high prices, a rate whose enddate has passed, a ' +
          'ratchet without its look-back) is imported and listed in `warnings`, each naming its field.',
        response: {
          201: storedTariffSchema.extend({ warnings: z.array(z.object({ field: z.string(), message: z.string() })) }),
          ...errorResponses(400, 403, 409),
        },
      },
    },
    async (req, reply) => {
      const { warnings, ...stored } = await tariffs.importUrdb(req.body.rate, {
        timeZone: req.body.timezone,
        id: req.body.id,
        tierScope: req.body.tierScope,
        billingDemand: req.body.billingDemand,
        netMetering: req.body.netMetering,
        netBilling: req.body.netBilling,
        ...(req.body.effectiveFrom !== undefined ? { effectiveFrom: req.body.effectiveFrom } : {}),
      });
      return reply.code(201).send({ ...stored, warnings: warnings.map((w) => ({ field: w.path, message: w.message })) });
    },
  );

  app.get(
    '/v1/tariffs',
    {
      schema: {
        tags: ['tariffs'],
        summary: 'List tariffs (latest version of each) by id',
        querystring: z.strictObject({ limit: limitSchema, after: z.string().optional().describe('paging cursor: the id of the last item of the previous page') }),
        response: {
          200: page(z.object({ id: z.string(), name: z.string().nullable(), timeZone: z.string().nullable(), latestVersion: z.number(), effectiveFrom: z.string().nullable(), source: z.string() })),
          ...errorResponses(400),
        },
      },
    },
    async (req) => {
      const items = await tariffs.list(req.query.limit, req.query.after);
      const next = items.length === req.query.limit ? `/v1/tariffs?limit=${req.query.limit}&after=${encodeURIComponent(items[items.length - 1].id)}` : null;
      return { items, next };
    },
  );

  app.get(
    '/v1/tariffs/:id',
    {
      schema: {
        tags: ['tariffs'],
        summary: 'Read a tariff (its latest version, or ?version=N) and its versions',
        params: idParamSchema,
        querystring: z.strictObject({ version: z.coerce.number().int().positive().optional() }),
        response: { 200: example(storedTariffSchema.extend({ versions: z.array(tariffVersionSchema) }), { ...TARIFF_EXAMPLE, versions: [{ version: 1, effectiveFrom: null, source: 'native', createdAt: '2026-11-30T09:00:00Z' }] }), ...errorResponses(400, 404) },
      },
    },
    async (req) => {
      const versions = await tariffs.versions(req.params.id);
      const chosen = req.query.version === undefined ? versions[versions.length - 1] : versions.find((v) => v.version === req.query.version);
      if (!chosen) throw notFound(`version ${req.query.version} of tariff "${req.params.id}"`);
      return {
        id: req.params.id,
        ...chosen,
        document: chosen.document as unknown as Record<string, unknown>,
        versions: versions.map(({ version, effectiveFrom, source, createdAt }) => ({ version, effectiveFrom, source, createdAt })),
      };
    },
  );

  app.put(
    '/v1/meters/:id/tariff',
    {
      config: ADMIN_ONLY,
      schema: {
        tags: ['tariffs'],
        summary: 'Assign a tariff to a meter from an instant on',
        description:
          "Adds an assignment; effectiveFrom must be later than the meter's latest assignment (409 otherwise: correct that one with PATCH .../tariff-assignments/{id}) and not before the tariff's first version (400: that time would have no tariff). Refused with 409 when a closed bill covers time it would reprice. Recorded as a tariff_assignment.created event.",
        params: idParamSchema,
        body: assignmentSchema,
        response: { 200: example(meterAssignmentsSchema, ASSIGNMENTS_EXAMPLE), ...errorResponses(400, 403, 404, 409) },
      },
    },
    async (req) => {
      const assignments = await tariffs.assign(req.params.id, req.body.tariffId, parseInstant(req.body.effectiveFrom)!, req.principal!.tokenId);
      return { meterId: req.params.id, assignments: assignmentsOut(assignments) };
    },
  );

  app.get(
    '/v1/meters/:id/tariff',
    { schema: { tags: ['tariffs'], summary: "A meter's tariff assignments", params: idParamSchema, response: { 200: example(meterAssignmentsSchema, ASSIGNMENTS_EXAMPLE), ...errorResponses(404) } } },
    async (req) => {
      const meter = await tariffs.meter(req.params.id);
      requireAccountAccess(req, meter.accountId, `meter "${req.params.id}"`);
      return { meterId: meter.id, assignments: assignmentsOut(await tariffs.assignments(meter.id)) };
    },
  );

  app.patch(
    '/v1/meters/:id/tariff-assignments/:assignmentId',
    {
      config: ADMIN_ONLY,
      schema: {
        tags: ['tariffs'],
        summary: 'Correct a tariff assignment (move it, or point it at another tariff)',
        description:
          "Allowed where no closed bill covers the time whose tariff changes (409 naming the bills otherwise), or with rebill=true, which then voids each such bill (credit note) and re-bills its cycle with the corrected assignments; the assignment may not start before its tariff's first version (400) nor at another assignment's start (409). Recorded as a tariff_assignment.updated event with before and after.",
        params: assignmentParamsSchema,
        querystring: rebillQuerySchema,
        body: assignmentPatchSchema,
        response: { 200: example(correctedSchema, ASSIGNMENTS_EXAMPLE), ...errorResponses(400, 403, 404, 409) },
      },
    },
    async (req) => {
      const b = req.body;
      const effectiveFrom = b.effectiveFrom === undefined ? undefined : b.effectiveFrom === null ? Number.NEGATIVE_INFINITY : parseInstant(b.effectiveFrom)!;
      const rebill = req.query.rebill === 'true';
      const correction = await tariffs.correctAssignment(req.params.id, req.params.assignmentId, { tariffId: b.tariffId, effectiveFrom }, req.principal!.tokenId, rebill);
      return answer(req.params.id, correction, `tariff assignment ${req.params.assignmentId} of meter ${req.params.id} corrected by ${req.principal!.tokenId}`);
    },
  );

  app.delete(
    '/v1/meters/:id/tariff-assignments/:assignmentId',
    {
      config: ADMIN_ONLY,
      schema: {
        tags: ['tariffs'],
        summary: 'Remove a tariff assignment',
        description:
          'The assignment before it (if any) then covers its time. Allowed where no closed bill covers that time (409 naming the bills otherwise), or with rebill=true (those bills are voided and re-billed). Recorded as a tariff_assignment.deleted event. Answers the remaining assignments.',
        params: assignmentParamsSchema,
        querystring: rebillQuerySchema,
        response: { 200: example(correctedSchema, { meterId: 'MTR-000001', assignments: [ASSIGNMENTS_EXAMPLE.assignments[0]] }), ...errorResponses(400, 403, 404, 409) },
      },
    },
    async (req) => {
      const correction = await tariffs.removeAssignment(req.params.id, req.params.assignmentId, req.principal!.tokenId, req.query.rebill === 'true');
      return answer(req.params.id, correction, `tariff assignment ${req.params.assignmentId} of meter ${req.params.id} removed by ${req.principal!.tokenId}`);
    },
  );
};
