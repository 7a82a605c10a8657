/**
 * The native tariff document: one zod schema for validation, TypeScript types and the OpenAPI document
 * (`z.toJSONSchema(tariffSchema)`; the schema has no transforms, only refinements, which JSON Schema omits).
 *
 * Units and time semantics, once for the whole document:
 * - Money is a decimal string in the tariff's currency ("0.078891"), never a binary float.
 * - Energy prices are per kWh, demand prices per kW, fixed charges per local day or per month.
 * - Every time of day, month, weekday and holiday is the **local wall clock in `timeZone`**, applied to an
 *   interval's start (`intervalStart`). Instants (`effectiveFrom`, dynamic price slots) carry an offset.
 * - Unknown fields are refused everywhere, so a misspelt field is never silently ignored.
 */
import { IANAZone } from 'luxon';
import { z } from 'zod';
import { iso4217MinorUnit } from './money.js';
import { exampleDynamicTariff, exampleTariff } from './tariff.example.js';
import { checkTariffConsistency } from './tariff.consistency.js';

const ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
const LOCAL_TIME_PATTERN = /^([01]\d|2[0-3]):[0-5]\d$/;

const identifier = (what: string) =>
  z.string().regex(ID_PATTERN, 'must match ^[A-Za-z0-9._-]{1,64}$').meta({ description: what });

const decimal = (what: string) =>
  z.string().regex(/^-?\d+(\.\d+)?$/, 'must be a decimal string such as "0.078891"').meta({ description: what });

const nonNegativeDecimal = (what: string) =>
  z
    .string()
    .regex(/^\d+(\.\d+)?$/, 'must be a non-negative decimal string such as "0.0725"')
    .meta({ description: what });

/** A positive limit with at most 6 decimals, so that it is a whole number of milli-units (mWh, mW). */
const tierLimit = (what: string) =>
  z
    .string()
    .regex(/^\d+(\.\d{1,6})?$/, 'must be a positive decimal string with at most 6 decimals')
    .refine((value) => Number(value) > 0, 'must be greater than 0')
    .meta({ description: what });

const month = z.int().min(1).max(12).meta({ description: 'Calendar month, 1 = January .. 12 = December' });
const isoWeekday = z.int().min(1).max(7).meta({ description: 'ISO weekday, 1 = Monday .. 7 = Sunday' });
const localTimeOfDay = z
  .string()
  .regex(LOCAL_TIME_PATTERN, 'must be a local time of day HH:MM, 00:00 to 23:59')
  .meta({ description: 'Local wall-clock time of day in the tariff time zone, HH:MM (any minute, e.g. "16:30")' });
const instant = z.iso
  .datetime({ offset: true })
  .meta({ description: 'Instant, ISO 8601 with Z or an offset, e.g. "2026-03-01T00:00:00-08:00"' });

export const currencySchema = z
  .strictObject({
    code: z.string().regex(/^[A-Z]{3}$/).meta({ description: 'ISO 4217 alphabetic code, e.g. "USD"' }),
    minorUnit: z
      .int()
      .min(0)
      .max(4)
      .meta({ description: 'ISO 4217 minor unit digits: amounts round half-up to this many decimals (USD 2, JPY 0, KWD 3)' }),
  })
  .superRefine((currency, ctx) => {
    const expected = iso4217MinorUnit(currency.code);
    const report = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (expected === undefined) report('code', 'not an ISO 4217 currency with a minor unit');
    else if (expected !== currency.minorUnit) report('minorUnit', `ISO 4217 minor unit of ${currency.code} is ${expected}`);
  })
  .meta({ description: 'Currency of every price in the tariff and of every amount rated with it' });

export const seasonSchema = z
  .strictObject({
    id: identifier('Season id, referenced by schedules and flat demand charges'),
    name: z.string().optional(),
    fromMonth: month,
    toMonth: month,
  })
  .meta({
    description:
      'Months fromMonth..toMonth inclusive, local calendar; may wrap the year end (fromMonth 11, toMonth 3 = Nov..Mar). ' +
      'The seasons of a tariff cover every month exactly once.',
  });

export const observanceSchema = z
  .strictObject({
    saturday: z
      .enum(['none', 'friday_before', 'monday_after'])
      .optional()
      .meta({ description: 'A holiday falling on Saturday is also observed on the Friday before or the Monday after. Default none.' }),
    sunday: z
      .enum(['none', 'monday_after'])
      .optional()
      .meta({ description: 'A holiday falling on Sunday is also observed on the Monday after. Default none.' }),
  })
  .meta({
    description:
      'Observed-day rule. The actual date stays a holiday; the observed date is added. An observed date that is already ' +
      'a holiday moves on to the next weekday that is not (UK substitute days: Christmas on Saturday -> Monday, Boxing Day -> Tuesday).',
  });

const holidayName = z.string().min(1).meta({ description: 'Holiday name, e.g. "Thanksgiving Day"' });

export const holidayRuleSchema = z
  .discriminatedUnion('type', [
    z
      .strictObject({
        type: z.literal('fixed'),
        name: holidayName,
        month,
        day: z.int().min(1).max(31),
        observance: observanceSchema.optional(),
      })
      .meta({ description: 'Same date every year, e.g. July 4. February 29 is a holiday in leap years only.' }),
    z
      .strictObject({
        type: z.literal('nth_weekday'),
        name: holidayName,
        month,
        weekday: isoWeekday,
        nth: z.int().min(1).max(4).meta({ description: '1 = first .. 4 = fourth' }),
        observance: observanceSchema.optional(),
      })
      .meta({ description: 'The nth weekday of a month, e.g. the fourth Thursday of November (month 11, weekday 4, nth 4)' }),
    z
      .strictObject({
        type: z.literal('last_weekday'),
        name: holidayName,
        month,
        weekday: isoWeekday,
        observance: observanceSchema.optional(),
      })
      .meta({ description: 'The last weekday of a month, e.g. the last Monday of May (month 5, weekday 1)' }),
    z
      .strictObject({
        type: z.literal('date'),
        name: holidayName,
        date: z.iso.date().meta({ description: 'Local calendar date YYYY-MM-DD' }),
        observance: observanceSchema.optional(),
      })
      .meta({ description: 'One date, for holidays without a rule (Good Friday, a one-off bank holiday)' }),
  ])
  .meta({ description: 'A holiday rule; every rule yields local calendar dates' });

export const holidayCalendarSchema = z
  .strictObject({
    observance: observanceSchema.optional().meta({ description: 'Default observed-day rule for rules that have none' }),
    rules: z.array(holidayRuleSchema),
  })
  .meta({ description: 'Holidays: classified as day type "holiday", which rates as weekend unless a schedule lists "holiday"' });

export const dayTypeSchema = z.enum(['weekday', 'weekend', 'holiday']);

export const periodStartSchema = z
  .strictObject({
    from: localTimeOfDay,
    period: identifier('Period id in force from this local time until the next entry or midnight'),
  })
  .meta({ description: 'Start of a time-of-use period within the local day' });

export const scheduleRuleSchema = z
  .strictObject({
    seasons: z.array(identifier('Season id')).min(1),
    dayTypes: z
      .array(dayTypeSchema)
      .min(1)
      .meta({ description: 'Day types this rule covers. Without a rule for "holiday", holidays use the weekend rule.' }),
    periods: z
      .array(periodStartSchema)
      .min(1)
      .meta({ description: 'Periods of the local day in increasing time order; the first starts at "00:00"' }),
  })
  .meta({
    description:
      'Time-of-use periods of a local day for some seasons and day types. Every (season, weekday) and (season, weekend) ' +
      'pair is covered by exactly one rule, (season, holiday) by at most one. An interval takes the period in force at the ' +
      'local wall-clock time of its start.',
  });

export const energyTierUnitSchema = z.enum(['kWh', 'kWh daily', 'kWh/kW', 'kWh/kW daily']).meta({
  description:
    'Unit of the tier max. kWh: cumulative kWh (default). kWh daily: max x local days of the window. kWh/kW: max x the ' +
    "window's billing demand (kW). kWh/kW daily: max x days x billing demand. A kWh/kW tier followed by kWh tiers is a block " +
    'header whose kWh steps subdivide its block (SAM\'s block conversion, see rating/README.md).',
});

export const energyTierSchema = z
  .strictObject({
    max: tierLimit(
      'Upper limit of the tier in cumulative import kWh within the billing window, of all periods together (tierScope ' +
        '"window", the default) or of this period (tierScope "period"); tiers fill in time order. In `unit` (default kWh). ' +
        'Absent on the last tier, which is open-ended.',
    ).optional(),
    unit: energyTierUnitSchema.optional(),
    rate: decimal('Price per kWh'),
    adj: decimal('Adjustment per kWh added to rate (fuel, riders); the billed rate is rate + adj').optional(),
    sell: decimal("Export credit per kWh for export reaching this tier; default: the period's sell").optional(),
  })
  .meta({ description: 'One block of an increasing- or decreasing-block energy price' });

export const energyPeriodSchema = z
  .strictObject({
    id: identifier('Period id, e.g. "peak", or "p0" for URDB imports'),
    name: z.string().optional(),
    tiers: z.array(energyTierSchema).min(1),
    sell: decimal('Export credit per kWh exported in this period; without it, export in this period earns no credit').optional(),
  })
  .meta({ description: 'A time-of-use energy period with its import tiers and export (sell) rate' });

export const energySchema = z
  .strictObject({
    tierScope: z
      .enum(['window', 'period'])
      .optional()
      .meta({
        description:
          'What tier limits count. window (default): the cumulative import kWh of the whole billing window across all periods, ' +
          "filled in time order, each interval priced at its own period's rate for the tier the window total has reached. " +
          "period: each period's own cumulative kWh.",
      }),
    periods: z.array(energyPeriodSchema).min(1),
    schedule: z.array(scheduleRuleSchema).min(1),
  })
  .meta({ description: 'Time-of-use energy charges on gross import, and export credits' });

export const dynamicPriceSchema = z
  .strictObject({
    start: instant,
    end: instant,
    price: decimal('Price per kWh imported in [start, end); may be negative'),
  })
  .meta({
    description:
      'A dynamic (e.g. half-hourly, day-ahead) import price. An interval must lie within one slot; a slot may hold several intervals.',
  });

export const demandTierSchema = z
  .strictObject({
    max: tierLimit('Upper limit of the tier in kW; absent on the last tier, which is open-ended').optional(),
    unit: z.literal('kW').optional().meta({ description: 'kW, the only demand unit (may be stated)' }),
    rate: decimal('Price per kW'),
    adj: decimal('Adjustment per kW added to rate').optional(),
  })
  .meta({ description: 'A demand tier: the billed kW are split across tiers by their max' });

export const demandPeriodSchema = z
  .strictObject({
    id: identifier('Demand period id, e.g. "peak", or "p0" for URDB imports'),
    name: z.string().optional(),
    tiers: z.array(demandTierSchema).min(1),
  })
  .meta({ description: 'Time-of-use demand charge: the maximum demand in the period over the billing window' });

export const flatDemandSchema = z
  .strictObject({
    id: identifier('Flat demand charge id, e.g. "summer", or "p0" (URDB flatdemandstructure index)'),
    seasons: z.array(identifier('Season id')).min(1),
    tiers: z.array(demandTierSchema).min(1),
  })
  .meta({ description: 'Flat demand charge: the maximum demand over the intervals of these seasons within the billing window' });

export const demandSchema = z
  .strictObject({
    windowMinutes: z
      .union([z.literal(15), z.literal(30), z.literal(60)])
      .optional()
      .meta({
        description:
          'Demand window. Demand is the average kW over fixed windows aligned to the local clock (block demand: ' +
          ':00, :15, :30, :45 for 15 minutes), computed from the interval energy. Without it, or when meter intervals are ' +
          'at least this long, the demand of an interval is its energy divided by its duration.',
      }),
    periods: z.array(demandPeriodSchema).min(1).optional(),
    schedule: z.array(scheduleRuleSchema).min(1).optional().meta({ description: 'Schedule of the demand periods' }),
    flat: z.array(flatDemandSchema).min(1).optional(),
    coincident: z
      .strictObject({
        periods: z.array(demandPeriodSchema).min(1),
        schedule: z.array(scheduleRuleSchema).min(1).meta({ description: 'Schedule of the coincident demand periods' }),
      })
      .optional()
      .meta({
        description:
          'Coincident demand: the maximum demand in each period of its own schedule (e.g. the utility system peak hours), ' +
          'charged per coincident period in addition to the other demand charges (URDB coincidentratestructure)',
      }),
    reactive: z
      .strictObject({
        rate: decimal('Price per kVAR of the maximum reactive demand of the billing window'),
      })
      .optional()
      .meta({
        description:
          'Reactive power charge (URDB demandreactivepowercharge, $/kVAR): rate x the highest reactive demand of the window, ' +
          'reactive import energy (kvarh, lagging, OBIS 3.8.0) divided by the hours of the interval (or of the demand window). ' +
          'Measured on the intervals that carry reactive energy; with none, no charge and a note reactive_data_missing',
      }),
  })
  .meta({ description: 'Demand charges on import, per time-of-use demand period, flat and/or coincident, and a reactive power charge' });

export const billingDemandSchema = z
  .strictObject({
    lookbackPercent: nonNegativeDecimal('Fraction of the looked-back peak, e.g. "0.95" for 95 %'),
    lookbackMonths: z
      .array(month)
      .min(1)
      .max(12)
      .optional()
      .meta({ description: 'Local calendar months whose peaks ratchet (URDB lookbackmonths); default every month' }),
    lookbackHorizonMonths: z
      .int()
      .min(1)
      .max(36)
      .meta({ description: 'How many preceding billing cycles are looked back' }),
  })
  .meta({
    description:
      "Demand ratchet: billing demand = max(the window's peak demand, lookbackPercent x the highest peak of the flagged " +
      'months among the preceding lookbackHorizonMonths billing cycles). It prices flat demand and sizes kWh/kW tiers.',
  });

export const attributeSchema = z
  .strictObject({ name: z.string(), value: z.string() })
  .meta({ description: 'A free-text attribute of the rate (URDB energyattrs, demandattrs, fixedattrs): informative' });

export const netMeteringSchema = z
  .strictObject({
    carryOver: z
      .enum(['kWh', 'dollars'])
      .optional()
      .meta({ description: "A period's surplus carried as kWh to later windows (default; SAM option 0) or credited at its sell rate into a money balance (SAM option 1)" }),
    trueUpMonth: month.optional().meta({ description: 'Local month whose billing cycle settles the year (default 12)' }),
    trueUpSellRate: nonNegativeDecimal('Price per kWh of the running net surplus paid at the true-up (kWh carry-over; default 0); never negative: a surplus is not charged for').optional(),
    trueUpCreditRollover: z.boolean().optional().meta({ description: 'The true-up value is kept as credit for later energy charges instead of paid (default false)' }),
  })
  .meta({
    description:
      'Net metering (URDB dgrules "Net Metering"): import and export netted per TOU period over each billing window, the ' +
      'surplus carried to later windows and settled at the true-up, as NREL SAM computes it (rating/metering/README.md).',
  });

export const netBillingSchema = z
  .strictObject({
    carryOver: z.literal('dollars').optional().meta({ description: "The window's export credits are carried as a money balance (SAM option 3)" }),
    trueUpMonth: month.optional().meta({ description: 'Local month whose billing cycle pays out (or forfeits) the balance (default 12)' }),
    creditExpiresAtTrueUp: z.boolean().optional().meta({ description: 'The balance left at the true-up is forfeited instead of paid (default false)' }),
    applyCreditInMonthEarned: z
      .boolean()
      .optional()
      .meta({ description: "The window's own credits also offset its own energy charges, after the carried balance (default false)" }),
  })
  .meta({ description: 'Net billing whose export credits are carried across billing windows until a true-up' });

export const meteringModeSchema = z
  .enum(['net_billing_instantaneous', 'net_billing_hourly', 'buy_all_sell_all', 'net_metering'])
  .meta({
    description:
      'How import and export are billed (URDB dgrules): net_billing_instantaneous (default; per interval), net_billing_hourly ' +
      '(netted within each local clock hour first), buy_all_sell_all (never netted), net_metering (netted per period over the ' +
      'window; implied by netMetering)',
  });

export const annualMinimumChargeSchema = z
  .strictObject({ amount: nonNegativeDecimal('Minimum of the calendar year\'s bills, settled in the December billing cycle') })
  .meta({ description: 'Annual minimum charge (URDB annualmincharge), as NREL SAM settles it' });

export const fixedChargeSchema = z
  .strictObject({
    name: z.string().min(1).meta({ description: 'e.g. "Customer charge"' }),
    amount: decimal('Amount per unit of `per`'),
    per: z.enum(['day', 'month']).meta({
      description: 'day: x local calendar days in the window. month: x 1 for one whole billing cycle, prorated by days otherwise.',
    }),
  })
  .meta({ description: 'A fixed (standing) charge' });

export const minimumChargeSchema = z
  .strictObject({
    amount: nonNegativeDecimal('Minimum of the subtotal before taxes, per unit of `per`'),
    per: z.enum(['day', 'month']).meta({ description: 'Prorated like fixed charges' }),
  })
  .meta({ description: 'Minimum charge: when the subtotal is below it, a "minimum" line adds the difference' });

export const taxSchema = z
  .strictObject({
    name: z.string().min(1).meta({ description: 'e.g. "Sales tax"' }),
    rate: nonNegativeDecimal('Fraction of the subtotal, e.g. "0.0725" for 7.25%'),
  })
  .meta({ description: 'A tax on the subtotal, rounded half-up to the minor unit' });

export const urdbOriginSchema = z
  .strictObject({
    label: z.string().meta({ description: 'URDB rate label' }),
    uri: z.string().optional(),
    utility: z.string().optional(),
    name: z.string().optional(),
    startDate: instant.optional().meta({ description: 'URDB startdate' }),
    endDate: instant.optional().meta({ description: 'URDB enddate' }),
    supersedes: z.string().optional().meta({ description: 'Label of the rate this one supersedes (URDB supersedes/supercedes)' }),
    energyTouLabels: z.array(z.string()).optional().meta({ description: 'Names of the energy periods p0, p1, ... (URDB energytoulabels)' }),
    comments: z.array(z.string()).optional().meta({ description: 'URDB comment fields, verbatim' }),
  })
  .meta({ description: 'Where a URDB import came from (informative only)' });

const tariffObjectSchema = z
  .strictObject({
    id: identifier('Tariff id'),
    name: z.string().min(1),
    description: z.string().optional(),
    currency: currencySchema,
    timeZone: z
      .string()
      .refine((zone) => IANAZone.isValidZone(zone), 'must be an IANA time zone such as "America/Los_Angeles"')
      .meta({ description: 'IANA time zone of every local time, month, weekday and holiday in the tariff' }),
    effectiveFrom: instant
      .optional()
      .meta({ description: 'First instant this version applies; versions of one tariff id differ by effectiveFrom' }),
    seasons: z.array(seasonSchema).min(1),
    weekendDays: z
      .array(isoWeekday)
      .max(7)
      .optional()
      .meta({ description: 'ISO weekdays that are weekend days; default [6, 7] (Saturday, Sunday)' }),
    holidays: holidayCalendarSchema.optional(),
    energy: energySchema.optional(),
    dynamicPrices: z.array(dynamicPriceSchema).min(1).optional(),
    demand: demandSchema.optional(),
    fixedCharges: z.array(fixedChargeSchema).optional(),
    minimumCharge: minimumChargeSchema.optional(),
    taxes: z.array(taxSchema).optional(),
    billingDemand: billingDemandSchema.optional(),
    meteringMode: meteringModeSchema.optional(),
    netMetering: netMeteringSchema.optional(),
    netBilling: netBillingSchema.optional(),
    annualMinimumCharge: annualMinimumChargeSchema.optional(),
    attributes: z
      .strictObject({
        energy: z.array(attributeSchema).optional(),
        demand: z.array(attributeSchema).optional(),
        fixed: z.array(attributeSchema).optional(),
      })
      .optional()
      .meta({ description: 'Free-text attributes of the rate, kept and shown as notes on charges; never rated' }),
    urdb: urdbOriginSchema.optional(),
  });

/** The native tariff document. Parse with `tariffSchema.safeParse(json)`; every problem is reported with its path. */
export const tariffSchema = tariffObjectSchema
  .superRefine((tariff, ctx) =>
    checkTariffConsistency(tariff, (path, message) => ctx.addIssue({ code: 'custom', path, message })),
  )
  .meta({ description: 'Native tariff document', examples: [exampleTariff, exampleDynamicTariff] });

export type TariffDocument = z.infer<typeof tariffObjectSchema>;
export type Season = z.infer<typeof seasonSchema>;
export type Observance = z.infer<typeof observanceSchema>;
export type HolidayRule = z.infer<typeof holidayRuleSchema>;
export type HolidayCalendar = z.infer<typeof holidayCalendarSchema>;
export type DayType = z.infer<typeof dayTypeSchema>;
export type ScheduleRule = z.infer<typeof scheduleRuleSchema>;
export type EnergyTier = z.infer<typeof energyTierSchema>;
export type EnergyPeriod = z.infer<typeof energyPeriodSchema>;
export type DynamicPrice = z.infer<typeof dynamicPriceSchema>;
export type DemandTier = z.infer<typeof demandTierSchema>;
export type DemandPeriod = z.infer<typeof demandPeriodSchema>;
export type FlatDemand = z.infer<typeof flatDemandSchema>;
export type FixedCharge = z.infer<typeof fixedChargeSchema>;
export type EnergyTierUnit = z.infer<typeof energyTierUnitSchema>;
export type BillingDemand = z.infer<typeof billingDemandSchema>;
export type Attribute = z.infer<typeof attributeSchema>;
export type Tax = z.infer<typeof taxSchema>;
