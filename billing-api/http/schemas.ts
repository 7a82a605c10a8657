/**
 * Schemas (zod) every route shares: ids, instants, time zones, paging, the error shape. Used for validation,
 * types and the OpenAPI document; each domain keeps its own request schemas beside its routes.
 */
import { z } from 'zod';
import { IANAZone } from 'luxon';
import { deviceIdSchema, newIdSchema, parseInstant } from '../../common/reading.js';

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

export const limitSchema = z.coerce.number().int().min(1).max(10_000).default(1000);

export const idParamSchema = z.object({ id: z.string() });

export const errorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.array(z.object({ field: z.string().optional(), message: z.string() })) }),
});
