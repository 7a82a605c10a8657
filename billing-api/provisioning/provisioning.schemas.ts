/** Request and response schemas (zod) of provisioning: accounts, meters, concentrators, device secrets, tokens. */
import { z } from 'zod';
import { INTERVAL_SECONDS } from '../../common/reading.js';
import { createdIdSchema, idSchema, secretSchema, timezoneSchema } from '../http/schemas.js';

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

