/** Accounts, meters, concentrators, device secrets and tokens (contract section 3). */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ADMIN_ONLY, STAFF_ONLY, requireAccountAccess } from '../http/auth.js';
import { notFound } from '../http/errors.js';
import { idParamSchema, idSchema, limitSchema } from '../http/schemas.js';
import type { ProvisioningService } from './provisioning.service.js';
import {
  accountCreateSchema, accountSchema, concentratorCreateSchema, concentratorMetersSchema, meterCreateSchema, meterSchema,
  secretRotateSchema, tokenCreateSchema,
} from './provisioning.schemas.js';

const page = <T extends z.ZodTypeAny>(item: T) => z.object({ items: z.array(item), next: z.string().nullable() });

function nextPath(path: string, query: Record<string, unknown>, items: { id: string }[], limit: number): string | null {
  if (items.length < limit) return null;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && k !== 'after') params.set(k, String(v));
  params.set('after', items[items.length - 1].id);
  return `${path}?${params}`;
}

export const provisioningRoutes: FastifyPluginAsyncZod<{ provisioning: ProvisioningService }> = async (app, { provisioning }) => {
  app.post('/v1/accounts', { config: ADMIN_ONLY, schema: { tags: ['provisioning'], body: accountCreateSchema, response: { 201: accountSchema } } }, async (req, reply) => {
    return reply.code(201).send(await provisioning.createAccount(req.body));
  });

  app.get('/v1/accounts', { config: STAFF_ONLY, schema: { tags: ['provisioning'], querystring: z.strictObject({ limit: limitSchema, after: z.string().optional() }) } }, async (req) => {
    const items = await provisioning.listAccounts(req.query.limit, req.query.after);
    return { items, next: nextPath('/v1/accounts', req.query, items, req.query.limit) };
  });

  app.get('/v1/accounts/:id', { schema: { tags: ['provisioning'], params: idParamSchema, response: { 200: accountSchema } } }, async (req) => {
    requireAccountAccess(req, req.params.id, `account "${req.params.id}"`);
    const account = await provisioning.getAccount(req.params.id);
    if (!account) throw notFound(`account "${req.params.id}"`);
    return account;
  });

  app.post('/v1/meters', { config: ADMIN_ONLY, schema: { tags: ['provisioning'], body: meterCreateSchema, response: { 201: meterSchema }, description: "Creates a meter. Its time zone must be known to luxon and PostgreSQL. Service window: readings may start at most READING_BACKFILL_DAYS before createdAt (earlier ones are quarantined as before_service_window); the meter is billed from its service start (createdAt, or its first reading inside the window when earlier)." } }, async (req, reply) => {
    return reply.code(201).send(await provisioning.createMeter(req.body));
  });

  app.get(
    '/v1/meters',
    { schema: { tags: ['provisioning'], querystring: z.strictObject({ accountId: idSchema.optional(), limit: limitSchema, after: z.string().optional() }), response: { 200: page(meterSchema) } } },
    async (req) => {
      const p = req.principal!;
      const accountId = p.role === 'customer' ? p.accountId! : req.query.accountId;
      const items = await provisioning.listMeters(accountId, req.query.limit, req.query.after);
      return { items, next: nextPath('/v1/meters', req.query, items, req.query.limit) };
    },
  );

  app.get('/v1/meters/:id', { schema: { tags: ['provisioning'], params: idParamSchema, response: { 200: meterSchema } } }, async (req) => {
    const meter = await provisioning.getMeter(req.params.id);
    if (!meter) throw notFound(`meter "${req.params.id}"`);
    requireAccountAccess(req, meter.accountId, `meter "${req.params.id}"`);
    return meter;
  });

  app.post('/v1/concentrators', { config: ADMIN_ONLY, schema: { tags: ['provisioning'], body: concentratorCreateSchema } }, async (req, reply) => {
    return reply.code(201).send(await provisioning.createConcentrator(req.body));
  });

  app.get('/v1/concentrators/:id', { config: STAFF_ONLY, schema: { tags: ['provisioning'], params: idParamSchema } }, async (req) => {
    const c = await provisioning.getConcentrator(req.params.id);
    if (!c) throw notFound(`concentrator "${req.params.id}"`);
    return c;
  });

  app.put('/v1/concentrators/:id/meters', { config: ADMIN_ONLY, schema: { tags: ['provisioning'], params: idParamSchema, body: concentratorMetersSchema } }, async (req) => {
    return provisioning.setConcentratorMeters(req.params.id, req.body.meterIds);
  });

  app.put('/v1/devices/:id/secret', { config: ADMIN_ONLY, schema: { tags: ['provisioning'], params: idParamSchema, body: secretRotateSchema, description: 'Sets (or generates and returns once) the MQTT secret of a meter or concentrator; connected gateways forget the old one at once.' } }, async (req) => {
    return provisioning.rotateSecret(req.params.id, req.body.mqttPassword);
  });

  app.post('/v1/tokens', { config: ADMIN_ONLY, schema: { tags: ['auth'], body: tokenCreateSchema } }, async (req, reply) => {
    return reply.code(201).send(await provisioning.createToken(req.body));
  });

  app.delete('/v1/tokens/:id', { config: ADMIN_ONLY, schema: { tags: ['auth'], params: idParamSchema } }, async (req, reply) => {
    await provisioning.revokeToken(req.params.id);
    return reply.code(204).send();
  });
};
