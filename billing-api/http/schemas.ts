/**
 * Request and response schemas of the REST API (zod), used for validation, types and the OpenAPI document.
 */
import { z } from 'zod';
import { IANAZone } from 'luxon';
import { deviceIdSchema, INTERVAL_SECONDS, newIdSchema, parseInstant } from '../common/reading.js';

/** An id in a path, query or reference (any id that may exist). */
export const idSchema = deviceIdSchema;
/** The id of a resource being created (common/reading.ts newIdProblem: no `null`, no leading `.` or `-`). */
export const createdIdSchema = newIdSchema.describe('[A-Za-z0-9._-]{1,64}, starting with a letter or digit, not "null" in any letter case');
export const timezoneSchema = z.string().refine((tz) => IANAZone.isValidZone(tz), 'must be an IANA time zone such as Europe/London');
export const instantSchema = z
  .string()
  .refine((s) => parseInstant(s) !== null, 'must be an ISO 8601 instant with Z or a ±hh:mm offset')
  .describe('ISO 8601 instant with Z or ±hh:mm offset');
export const secretSchema = z.string().min(8, 'must be at least 8 characters').max(256, 'must be at most 256 characters');

export const accountCreateSchema = z.strictObject({
  id: createdIdSchema,
  name: z.string().min(1).max(200),
  timezone: timezoneSchema,
  billingDay: z.number().int().min(1).max(31).describe('day of the month on which a billing cycle starts (29-31 clamp to the month end)'),
});
export const accountSchema = accountCreateSchema.extend({ createdAt: z.string() });

export const meterCreateSchema = z.strictObject({
  id: createdIdSchema,
  accountId: idSchema,
  timezone: timezoneSchema,
  intervalSeconds: z.union(INTERVAL_SECONDS.map((s) => z.literal(s)) as [z.ZodLiteral<300>, ...z.ZodLiteral<number>[]], {
    message: 'must be one of 300, 600, 900, 1800, 3600',
  }),
  tariffId: idSchema.optional(),
  maxPowerKw: z
    .number()
    .min(0.001, 'must be at least 0.001 (kW, stored with 3 decimals)')
    .max(1_000_000, 'must be at most 1000000')
    .refine((v) => Math.round(v * 1000) / 1000 === v, 'at most 3 decimal places')
    .optional().describe('readings whose average power exceeds this are quarantined as implausible'),
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
  mqttPassword: z.string().optional(),
});

export const concentratorCreateSchema = z.strictObject({
  id: createdIdSchema,
  meterIds: z.array(idSchema).max(100_000).default([]),
  mqttPassword: secretSchema.optional(),
});
export const concentratorMetersSchema = z.strictObject({ meterIds: z.array(idSchema).max(100_000) });

export const secretRotateSchema = z.strictObject({ mqttPassword: secretSchema.optional() });

export const tokenCreateSchema = z
  .strictObject({
    role: z.enum(['reader', 'customer']),
    accountId: idSchema.optional(),
  })
  .superRefine((t, ctx) => {
    if (t.role === 'customer' && !t.accountId) ctx.addIssue({ code: 'custom', path: ['accountId'], message: 'required for a customer token' });
    if (t.role === 'reader' && t.accountId) ctx.addIssue({ code: 'custom', path: ['accountId'], message: 'only a customer token has an accountId' });
  });

export const limitSchema = z.coerce.number().int().min(1).max(10_000).default(1000);

export const readingsQuerySchema = z.strictObject({
  from: instantSchema.optional(),
  to: instantSchema.optional(),
  limit: limitSchema,
  after: instantSchema.optional().describe('paging cursor: intervalStart of the last item of the previous page'),
});

export const quarantineQuerySchema = z.strictObject({
  deviceId: z.string().max(64).optional(),
  reason: z.string().max(64).optional(),
  from: instantSchema.optional(),
  to: instantSchema.optional(),
  limit: limitSchema,
  after: z.coerce.number().int().min(0).optional().describe('paging cursor: id of the last item of the previous page'),
});

export const idParamSchema = z.object({ id: z.string() });

export const errorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.array(z.object({ field: z.string().optional(), message: z.string() })) }),
});
