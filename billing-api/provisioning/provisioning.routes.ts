/**
 * Accounts, meters, concentrators, device secrets and tokens (contract section 3), their corrections
 * (PATCH, each an audit event) and the trail of events.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ADMIN_ONLY, STAFF_ONLY, requireAccountAccess } from '../http/auth.js';
import { badRequest, notFound } from '../http/errors.js';
import { errorResponses, example, nextPage, noContent, page } from '../http/responses.js';
import { idParamSchema, idSchema, limitSchema } from '../http/schemas.js';
import type { MeterRow } from './provisioning.repository.js';
import type { ProvisioningService } from './provisioning.service.js';
import {
  accountCreateSchema, accountPatchSchema, accountSchema, auditEventSchema, concentratorCreateSchema, concentratorMetersSchema,
  concentratorSchema, meterCreateSchema, meterListQuerySchema, meterPatchSchema, meterSchema, secretRotatedSchema, secretRotateSchema,
  tokenCreatedSchema, tokenCreateSchema, tokenSchema,
} from './provisioning.schemas.js';

const idPage = z.strictObject({ limit: limitSchema, after: z.string().max(64).optional().describe('paging cursor: the id of the last item of the previous page') });

const ACCOUNT_EXAMPLE = { id: 'ACC-000001', name: 'Alice Bakery', timezone: 'Europe/London', billingDay: 1, createdAt: '2026-11-30T09:00:00Z' };
const METER_EXAMPLE = {
  id: 'MTR-000001', accountId: 'ACC-000001', timezone: 'Europe/London', intervalSeconds: 900, maxPowerKw: '12.5', tariffId: 'flat-uk',
  concentratorIds: ['CON-01'], createdAt: '2026-11-30T09:00:00Z', lastIntervalStart: '2026-11-30T12:45:00Z', lastReceivedAt: '2026-11-30T13:00:02Z',
  lastSeenAt: '2026-11-30T13:00:02Z', lastConnectedAt: '2026-11-29T06:12:40Z', lastDisconnectedAt: null,
};
const EVENT_EXAMPLE = {
  id: '42', at: '2026-11-30T13:05:00Z', actor: 'tok_3fa9c2', action: 'meter.updated', subjectType: 'meter' as const, subjectId: 'MTR-000001',
  accountId: 'ACC-000001', before: { timezone: 'Europe/Lisbon', intervalSeconds: 900, maxPowerKw: null }, after: { timezone: 'Europe/London', intervalSeconds: 900, maxPowerKw: null },
};

const eventsQuerySchema = z.strictObject({
  accountId: idSchema.optional(),
  subjectType: auditEventSchema.shape.subjectType.optional(),
  subjectId: idSchema.optional(),
  limit: limitSchema,
  after: z.string().regex(/^\d{1,18}$/, 'must be an event id').optional().describe('paging cursor: the id of the last event of the previous page'),
});

/** The end of a meter's latest interval, as the staleness cursor holds it. */
const lastEndOf = (m: MeterRow) => (m.lastIntervalStart ? new Date(Date.parse(m.lastIntervalStart) + m.intervalSeconds * 1000).toISOString() : '-infinity');

function stalenessCursor(after: string): { id: string; lastEnd: string } {
  const [lastEnd, id, ...rest] = after.split(',');
  if (rest.length || !id || (lastEnd !== '-infinity' && Number.isNaN(Date.parse(lastEnd)))) {
    throw badRequest('invalid querystring: 1 problem(s)', [{ field: 'querystring.after', message: 'not a cursor of sort=staleness: take the next link as given' }]);
  }
  return { id, lastEnd };
}

export const provisioningRoutes: FastifyPluginAsyncZod<{ provisioning: ProvisioningService; clock?: () => number }> = async (app, { provisioning, clock = Date.now }) => {
  app.post(
    '/v1/accounts',
    { config: ADMIN_ONLY, schema: { tags: ['provisioning'], summary: 'Create an account', body: accountCreateSchema, response: { 201: example(accountSchema, ACCOUNT_EXAMPLE), ...errorResponses(400, 403, 409) } } },
    async (req, reply) => reply.code(201).send(await provisioning.createAccount(req.body)),
  );

  app.get(
    '/v1/accounts',
    { config: STAFF_ONLY, schema: { tags: ['provisioning'], summary: 'List accounts by id', querystring: idPage, response: { 200: page(accountSchema), ...errorResponses(400, 403) } } },
    async (req) => {
      const items = await provisioning.listAccounts(req.query.limit, req.query.after);
      return { items, next: nextPage('/v1/accounts', req.query, items, req.query.limit, (a: { id: string }) => a.id) };
    },
  );

  app.get(
    '/v1/accounts/:id',
    { schema: { tags: ['provisioning'], summary: 'Read an account', params: idParamSchema, response: { 200: example(accountSchema, ACCOUNT_EXAMPLE), ...errorResponses(404) } } },
    async (req) => {
      requireAccountAccess(req, req.params.id, `account "${req.params.id}"`);
      const account = await provisioning.getAccount(req.params.id);
      if (!account) throw notFound(`account "${req.params.id}"`);
      return account;
    },
  );

  app.patch(
    '/v1/accounts/:id',
    {
      config: ADMIN_ONLY,
      schema: {
        tags: ['provisioning'],
        summary: 'Correct an account',
        description:
          'Changes the fields given. name: always. timezone and billingDay place the billing cycles: refused with 409 (naming the latest bill) once a bill of the account is closed. Recorded as an account.updated event naming the token.',
        params: idParamSchema,
        body: accountPatchSchema,
        response: { 200: example(accountSchema, ACCOUNT_EXAMPLE), ...errorResponses(400, 403, 404, 409) },
      },
    },
    async (req) => provisioning.correctAccount(req.params.id, req.body, req.principal!.tokenId),
  );

  app.get(
    '/v1/accounts/:id/events',
    {
      config: STAFF_ONLY,
      schema: {
        tags: ['provisioning'],
        summary: "The account's trail of corrections",
        description: 'Changes of the account, its meters and their tariff assignments, oldest first, each naming the token that made it.',
        params: idParamSchema,
        querystring: eventsQuerySchema.omit({ accountId: true }),
        response: { 200: example(page(auditEventSchema), { items: [EVENT_EXAMPLE], next: null }), ...errorResponses(400, 403, 404) },
      },
    },
    async (req) => {
      if (!(await provisioning.getAccount(req.params.id))) throw notFound(`account "${req.params.id}"`);
      const items = await provisioning.events({ ...req.query, accountId: req.params.id });
      return { items, next: nextPage(`/v1/accounts/${encodeURIComponent(req.params.id)}/events`, req.query, items, req.query.limit, (e: { id: string }) => e.id) };
    },
  );

  app.get(
    '/v1/events',
    {
      config: STAFF_ONLY,
      schema: {
        tags: ['provisioning'],
        summary: 'The trail of corrections across the installation',
        description: 'Every recorded change, oldest first; filter by account, subject type and subject id.',
        querystring: eventsQuerySchema,
        response: { 200: example(page(auditEventSchema), { items: [EVENT_EXAMPLE], next: null }), ...errorResponses(400, 403) },
      },
    },
    async (req) => {
      const items = await provisioning.events(req.query);
      return { items, next: nextPage('/v1/events', req.query, items, req.query.limit, (e: { id: string }) => e.id) };
    },
  );

  app.post(
    '/v1/meters',
    {
      config: ADMIN_ONLY,
      schema: {
        tags: ['provisioning'],
        summary: 'Create a meter',
        description:
          'Creates a meter. Its time zone must be known to luxon and PostgreSQL. Service window: readings may start at most READING_BACKFILL_DAYS before createdAt (earlier ones are quarantined as before_service_window); the meter is billed from its service start (createdAt, or its first reading inside the window when earlier). Without mqttPassword one is generated and returned once.',
        body: meterCreateSchema,
        response: { 201: example(meterSchema, { ...METER_EXAMPLE, lastIntervalStart: null, lastReceivedAt: null, lastSeenAt: null, lastConnectedAt: null, concentratorIds: [], mqttPassword: 'generated-secret-shown-once' }), ...errorResponses(400, 403, 409) },
      },
    },
    async (req, reply) => reply.code(201).send(await provisioning.createMeter(req.body)),
  );

  app.get(
    '/v1/meters',
    {
      schema: {
        tags: ['provisioning'],
        summary: 'List meters, and find silent ones',
        description:
          "Each meter with its latest stored interval and when it was committed (lastSeenAt adds quarantined input). silentForMinutes=N keeps the meters whose latest interval ended N minutes ago or earlier, or that never reported; sort=staleness lists them never-reported first, then oldest first. A customer token sees its own account's meters only.",
        querystring: meterListQuerySchema,
        response: { 200: example(page(meterSchema), { items: [METER_EXAMPLE], next: null }), ...errorResponses(400) },
      },
    },
    async (req) => {
      const p = req.principal!;
      const q = req.query;
      const accountId = p.role === 'customer' ? p.accountId! : q.accountId;
      const after = q.after === undefined ? undefined : q.sort === 'staleness' ? stalenessCursor(q.after) : { id: q.after };
      const items = await provisioning.listMeters({
        accountId,
        concentratorId: q.concentratorId,
        silentSince: q.silentForMinutes === undefined ? undefined : clock() - q.silentForMinutes * 60_000,
        sort: q.sort,
        after,
        limit: q.limit,
      });
      const cursor = (m: MeterRow) => (q.sort === 'staleness' ? `${lastEndOf(m)},${m.id}` : m.id);
      return { items, next: nextPage('/v1/meters', q, items, q.limit, cursor) };
    },
  );

  app.get(
    '/v1/meters/:id',
    { schema: { tags: ['provisioning'], summary: 'Read a meter', params: idParamSchema, response: { 200: example(meterSchema, METER_EXAMPLE), ...errorResponses(404) } } },
    async (req) => {
      const meter = await provisioning.getMeter(req.params.id);
      if (!meter) throw notFound(`meter "${req.params.id}"`);
      requireAccountAccess(req, meter.accountId, `meter "${req.params.id}"`);
      return meter;
    },
  );

  app.patch(
    '/v1/meters/:id',
    {
      config: ADMIN_ONLY,
      schema: {
        tags: ['provisioning'],
        summary: 'Correct a meter',
        description:
          'Changes the fields given. maxPowerKw: always (null removes the limit; applies to readings still to come). timezone: refused with 409 once a bill with this meter is closed. intervalSeconds: refused with 409 once the meter has a stored reading. Gateways apply the change to the next reading. Recorded as a meter.updated event naming the token. The account of a meter is not correctable here.',
        params: idParamSchema,
        body: meterPatchSchema,
        response: { 200: example(meterSchema, METER_EXAMPLE), ...errorResponses(400, 403, 404, 409) },
      },
    },
    async (req) => provisioning.correctMeter(req.params.id, req.body, req.principal!.tokenId),
  );

  app.post(
    '/v1/concentrators',
    { config: ADMIN_ONLY, schema: { tags: ['provisioning'], summary: 'Create a concentrator', description: 'Without mqttPassword one is generated and returned once.', body: concentratorCreateSchema, response: { 201: example(concentratorSchema, { id: 'CON-01', meterIds: ['MTR-000001'], createdAt: '2026-11-30T09:00:00Z', lastConnectedAt: null, lastDisconnectedAt: null, mqttPassword: 'generated-secret-shown-once' }), ...errorResponses(400, 403, 409) } } },
    async (req, reply) => reply.code(201).send(await provisioning.createConcentrator(req.body)),
  );

  app.get(
    '/v1/concentrators',
    { config: STAFF_ONLY, schema: { tags: ['provisioning'], summary: 'List concentrators by id', querystring: idPage, response: { 200: page(concentratorSchema), ...errorResponses(400, 403) } } },
    async (req) => {
      const items = await provisioning.listConcentrators(req.query.limit, req.query.after);
      return { items, next: nextPage('/v1/concentrators', req.query, items, req.query.limit, (c: { id: string }) => c.id) };
    },
  );

  app.get(
    '/v1/concentrators/:id',
    { config: STAFF_ONLY, schema: { tags: ['provisioning'], summary: 'Read a concentrator', params: idParamSchema, response: { 200: concentratorSchema, ...errorResponses(403, 404) } } },
    async (req) => {
      const c = await provisioning.getConcentrator(req.params.id);
      if (!c) throw notFound(`concentrator "${req.params.id}"`);
      return c;
    },
  );

  app.put(
    '/v1/concentrators/:id/meters',
    { config: ADMIN_ONLY, schema: { tags: ['provisioning'], summary: "Replace a concentrator's meters", params: idParamSchema, body: concentratorMetersSchema, response: { 200: concentratorSchema, ...errorResponses(400, 403, 404) } } },
    async (req) => provisioning.setConcentratorMeters(req.params.id, req.body.meterIds, req.principal!.tokenId),
  );

  app.put(
    '/v1/devices/:id/secret',
    {
      config: ADMIN_ONLY,
      schema: {
        tags: ['provisioning'],
        summary: "Set or rotate a device's MQTT secret",
        description: 'Sets (or generates and returns once) the MQTT secret of a meter or concentrator; connected gateways forget the old one at once.',
        params: idParamSchema,
        body: secretRotateSchema,
        response: { 200: secretRotatedSchema, ...errorResponses(400, 403, 404) },
      },
    },
    async (req) => provisioning.rotateSecret(req.params.id, req.body.mqttPassword, req.principal!.tokenId),
  );

  app.post(
    '/v1/tokens',
    { config: ADMIN_ONLY, schema: { tags: ['auth'], summary: 'Create an API token', body: tokenCreateSchema, response: { 201: example(tokenCreatedSchema, { id: 'tok_3fa9c2', token: 'shown-this-once', role: 'customer', accountId: 'ACC-000001' }), ...errorResponses(400, 403) } } },
    async (req, reply) => reply.code(201).send(await provisioning.createToken(req.body, req.principal!.tokenId)),
  );

  app.get(
    '/v1/tokens',
    {
      config: ADMIN_ONLY,
      schema: {
        tags: ['auth'],
        summary: 'List API tokens (never their secrets)',
        querystring: idPage.extend({
          role: z.enum(['admin', 'reader', 'customer']).optional(),
          accountId: idSchema.optional(),
          includeRevoked: z.enum(['true', 'false']).default('false').describe('list revoked tokens too'),
        }),
        response: { 200: example(page(tokenSchema), { items: [{ id: 'tok_3fa9c2', role: 'customer', accountId: 'ACC-000001', createdAt: '2026-11-30T09:00:00Z', revokedAt: null }], next: null }), ...errorResponses(400, 403) },
      },
    },
    async (req) => {
      const q = req.query;
      const items = await provisioning.listTokens({ role: q.role, accountId: q.accountId, includeRevoked: q.includeRevoked === 'true', after: q.after, limit: q.limit });
      return { items, next: nextPage('/v1/tokens', q, items, q.limit, (t: { id: string }) => t.id) };
    },
  );

  app.delete(
    '/v1/tokens/:id',
    { config: ADMIN_ONLY, schema: { tags: ['auth'], summary: 'Revoke an API token', params: idParamSchema, response: { 204: noContent, ...errorResponses(403, 404) } } },
    async (req, reply) => {
      await provisioning.revokeToken(req.params.id, req.principal!.tokenId);
      return reply.code(204).send(null);
    },
  );
};
