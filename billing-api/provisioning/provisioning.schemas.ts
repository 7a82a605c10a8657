/** Request and response schemas (zod) of provisioning: accounts, meters, concentrators, device secrets, tokens. */
import { z } from 'zod';
import { INTERVAL_SECONDS } from '../../common/reading.js';
import { createdIdSchema, idSchema, limitSchema, secretSchema, timezoneSchema } from '../http/schemas.js';

export const accountCreateSchema = z.strictObject({
  id: createdIdSchema,
  name: z.string().min(1).max(200),
  timezone: timezoneSchema,
  billingDay: z.number().int().min(1).max(31).describe('day of the month on which a billing cycle starts (29-31 clamp to the month end)'),
});
export const accountSchema = z.object({
  id: z.string(),
  name: z.string(),
  timezone: z.string(),
  billingDay: z.number(),
  createdAt: z.string(),
});
export const accountPatchSchema = z
  .strictObject({
    name: z.string().min(1).max(200).optional().describe('always correctable'),
    timezone: timezoneSchema.optional().describe('refused (409) once a bill of the account is closed: it places the billing cycles'),
    billingDay: z.number().int().min(1).max(31).optional().describe('refused (409) once a bill of the account is closed: it places the billing cycles'),
  })
  .refine((p) => Object.keys(p).length > 0, 'name at least one field to change');

const maxPowerKwSchema = z
  .number()
  .min(0.001, 'must be at least 0.001 (kW, stored with 3 decimals)')
  .max(1_000_000, 'must be at most 1000000')
  .refine((v) => Math.round(v * 1000) / 1000 === v, 'at most 3 decimal places');

export const meterCreateSchema = z.strictObject({
  id: createdIdSchema,
  accountId: idSchema,
  timezone: timezoneSchema,
  intervalSeconds: z.union(INTERVAL_SECONDS.map((s) => z.literal(s)) as [z.ZodLiteral<300>, ...z.ZodLiteral<number>[]], {
    message: 'must be one of 300, 600, 900, 1800, 3600',
  }),
  tariffId: idSchema.optional(),
  maxPowerKw: maxPowerKwSchema.optional().describe('readings whose average power exceeds this are quarantined as implausible'),
  mqttPassword: secretSchema.optional().describe('the meter\'s MQTT secret; generated and returned once when absent'),
});
export const meterSchema = z.object({
  id: z.string(),
  accountId: z.string(),
  timezone: z.string(),
  intervalSeconds: z.number(),
  maxPowerKw: z.string().nullable(),
  tariffId: z.string().nullable(),
  concentratorIds: z.array(z.string()),
  createdAt: z.string(),
  mqttPassword: z.string().optional().describe('only in the 201 of a creation without mqttPassword: the generated secret, shown once'),
  lastIntervalStart: z.string().nullable().describe('start of the latest stored interval (null: none yet)'),
  lastReceivedAt: z.string().nullable().describe('when the latest stored interval was committed'),
  lastSeenAt: z
    .string()
    .nullable()
    .describe('the last time the gateway heard from this meter: the latest of lastReceivedAt, its latest quarantine record, and its last connection or disconnection'),
  lastConnectedAt: z.string().nullable().describe('when the meter last connected to the embedded gateway (null: never, or only through a concentrator or an external broker)'),
  lastDisconnectedAt: z.string().nullable(),
});

export const meterPatchSchema = z
  .strictObject({
    timezone: timezoneSchema.optional().describe("the meter's local time (estimation grid, consumption buckets); refused (409) once a bill with this meter is closed"),
    intervalSeconds: z
      .union(INTERVAL_SECONDS.map((s) => z.literal(s)) as [z.ZodLiteral<300>, ...z.ZodLiteral<number>[]], { message: 'must be one of 300, 600, 900, 1800, 3600' })
      .optional()
      .describe('refused (409) once the meter has a stored reading'),
    maxPowerKw: maxPowerKwSchema.nullable().optional().describe('always correctable; applies to readings still to come; null removes the limit'),
  })
  .refine((p) => Object.keys(p).length > 0, 'name at least one field to change');

export const meterListQuerySchema = z.strictObject({
  accountId: idSchema.optional().describe("only this account's meters (a customer token always sees only its own)"),
  concentratorId: idSchema.optional().describe('only meters assigned to this concentrator'),
  silentForMinutes: z.coerce
    .number()
    .int()
    .min(0)
    .max(10_000_000)
    .optional()
    .describe('only meters whose latest stored interval ended at least this many minutes ago, or that have none'),
  sort: z.enum(['id', 'staleness']).default('id').describe('id, or staleness: meters without data first, then the oldest latest interval first'),
  limit: limitSchema,
  after: z.string().max(200).optional().describe('paging cursor: take the next link as given'),
});

export const concentratorSchema = z.object({
  id: z.string(),
  meterIds: z.array(z.string()),
  createdAt: z.string(),
  lastConnectedAt: z.string().nullable().describe('when it last connected to the embedded gateway (null: never, or through an external broker)'),
  lastDisconnectedAt: z.string().nullable(),
  mqttPassword: z.string().optional().describe('only in the 201 of a creation without mqttPassword: the generated secret, shown once'),
});

export const concentratorCreateSchema = z.strictObject({
  id: createdIdSchema,
  meterIds: z.array(idSchema).max(100_000).default([]),
  mqttPassword: secretSchema.optional(),
});
export const concentratorMetersSchema = z.strictObject({ meterIds: z.array(idSchema).max(100_000) });

export const secretRotateSchema = z.strictObject({ mqttPassword: secretSchema.optional() });
export const secretRotatedSchema = z.object({ id: z.string(), mqttPassword: z.string().optional().describe('the generated secret, shown once (absent when the request gave one)') });

export const tokenCreatedSchema = z.object({
  id: z.string(),
  token: z.string().describe('the bearer token, shown this once (stored as a keyed digest)'),
  role: z.enum(['reader', 'customer']),
  accountId: z.string().optional(),
});
export const tokenSchema = z.object({
  id: z.string(),
  role: z.enum(['admin', 'reader', 'customer']),
  accountId: z.string().nullable(),
  createdAt: z.string(),
  revokedAt: z.string().nullable(),
});

export const auditEventSchema = z.object({
  id: z.string().describe('increasing; the paging cursor'),
  at: z.string().describe('when the change committed'),
  actor: z.string().describe('the id of the API token that made the change (bootstrap-admin for the bootstrap token)'),
  action: z.string().describe('account.updated, meter.updated, tariff_assignment.created, tariff_assignment.updated, tariff_assignment.deleted'),
  subjectType: z.enum(['account', 'meter', 'tariff_assignment', 'concentrator', 'device', 'token']),
  subjectId: z.string(),
  accountId: z.string().nullable(),
  before: z.unknown().nullable().describe('the subject before the change (null for a creation)'),
  after: z.unknown().nullable().describe('the subject after the change (null for a removal)'),
});

export const tokenCreateSchema = z
  .strictObject({
    role: z.enum(['reader', 'customer']),
    accountId: idSchema.optional(),
  })
  .superRefine((t, ctx) => {
    if (t.role === 'customer' && !t.accountId) ctx.addIssue({ code: 'custom', path: ['accountId'], message: 'required for a customer token' });
    if (t.role === 'reader' && t.accountId) ctx.addIssue({ code: 'custom', path: ['accountId'], message: 'only a customer token has an accountId' });
  });

