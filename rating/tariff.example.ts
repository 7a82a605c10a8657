/**
 * Complete examples of the native tariff document, published in the OpenAPI document and the README
 * (a test keeps the README's copy equal to these).
 */
import type { TariffDocument } from './tariff.schema.js';

/** A small-commercial time-of-use tariff with every feature the schedule-based rating offers. */
export const exampleTariff: TariffDocument = {
  id: 'acme-tou-gs1-2026',
  name: 'Acme Power TOU-GS-1 (4-9 pm), small general service',
  description: 'Time-of-use energy with an off-peak block, summer on-peak demand, flat demand, net billing export credit',
  currency: { code: 'USD', minorUnit: 2 },
  timeZone: 'America/Los_Angeles',
  effectiveFrom: '2026-01-01T00:00:00-08:00',
  seasons: [
    { id: 'summer', name: 'Summer', fromMonth: 6, toMonth: 9 },
    { id: 'winter', name: 'Winter', fromMonth: 10, toMonth: 5 },
  ],
  weekendDays: [6, 7],
  holidays: {
    observance: { saturday: 'friday_before', sunday: 'monday_after' },
    rules: [
      { type: 'fixed', name: "New Year's Day", month: 1, day: 1 },
      { type: 'nth_weekday', name: "Presidents' Day", month: 2, weekday: 1, nth: 3 },
      { type: 'last_weekday', name: 'Memorial Day', month: 5, weekday: 1 },
      { type: 'fixed', name: 'Independence Day', month: 7, day: 4 },
      { type: 'nth_weekday', name: 'Labor Day', month: 9, weekday: 1, nth: 1 },
      { type: 'fixed', name: 'Veterans Day', month: 11, day: 11, observance: { saturday: 'none', sunday: 'monday_after' } },
      { type: 'nth_weekday', name: 'Thanksgiving Day', month: 11, weekday: 4, nth: 4 },
      { type: 'fixed', name: 'Christmas Day', month: 12, day: 25 },
    ],
  },
  energy: {
    periods: [
      {
        id: 'off_peak',
        name: 'Off-peak',
        tiers: [
          { max: '300', rate: '0.28', adj: '0.012' },
          { rate: '0.35', adj: '0.012' },
        ],
        sell: '0.04',
      },
      { id: 'mid_peak', name: 'Mid-peak', tiers: [{ rate: '0.38', adj: '0.012' }], sell: '0.05' },
      { id: 'on_peak', name: 'On-peak', tiers: [{ rate: '0.52', adj: '0.012' }], sell: '0.08' },
    ],
    schedule: [
      {
        seasons: ['summer'],
        dayTypes: ['weekday'],
        periods: [
          { from: '00:00', period: 'off_peak' },
          { from: '16:00', period: 'on_peak' },
          { from: '21:00', period: 'off_peak' },
        ],
      },
      {
        seasons: ['summer'],
        dayTypes: ['weekend', 'holiday'],
        periods: [
          { from: '00:00', period: 'off_peak' },
          { from: '16:00', period: 'mid_peak' },
          { from: '21:00', period: 'off_peak' },
        ],
      },
      {
        seasons: ['winter'],
        dayTypes: ['weekday', 'weekend'],
        periods: [
          { from: '00:00', period: 'off_peak' },
          { from: '16:30', period: 'mid_peak' },
          { from: '21:00', period: 'off_peak' },
        ],
      },
    ],
  },
  demand: {
    windowMinutes: 15,
    periods: [
      { id: 'on_peak', name: 'Summer on-peak demand', tiers: [{ rate: '9.5' }] },
      { id: 'other', name: 'Other hours', tiers: [{ rate: '0' }] },
    ],
    schedule: [
      {
        seasons: ['summer'],
        dayTypes: ['weekday'],
        periods: [
          { from: '00:00', period: 'other' },
          { from: '16:00', period: 'on_peak' },
          { from: '21:00', period: 'other' },
        ],
      },
      { seasons: ['summer'], dayTypes: ['weekend'], periods: [{ from: '00:00', period: 'other' }] },
      { seasons: ['winter'], dayTypes: ['weekday', 'weekend'], periods: [{ from: '00:00', period: 'other' }] },
    ],
    flat: [{ id: 'flat', seasons: ['summer', 'winter'], tiers: [{ max: '50', rate: '4.1' }, { rate: '5.2' }] }],
  },
  fixedCharges: [
    { name: 'Customer charge', amount: '0.98563', per: 'day' },
    { name: 'Meter charge', amount: '12', per: 'month' },
  ],
  minimumCharge: { amount: '25', per: 'month' },
  taxes: [
    { name: 'Utility users tax', rate: '0.07' },
    { name: 'State energy surcharge', rate: '0.003' },
  ],
};

/** A dynamic tariff: half-hourly import prices (one negative), a standing charge and VAT. */
export const exampleDynamicTariff: TariffDocument = {
  id: 'agile-like-2026-01',
  name: 'Half-hourly dynamic import',
  currency: { code: 'GBP', minorUnit: 2 },
  timeZone: 'Europe/London',
  seasons: [{ id: 'all_year', fromMonth: 1, toMonth: 12 }],
  dynamicPrices: [
    { start: '2026-01-15T00:00:00Z', end: '2026-01-15T00:30:00Z', price: '0.1512' },
    { start: '2026-01-15T00:30:00Z', end: '2026-01-15T01:00:00Z', price: '0.0987' },
    { start: '2026-01-15T01:00:00Z', end: '2026-01-15T01:30:00Z', price: '-0.0214' },
    { start: '2026-01-15T01:30:00Z', end: '2026-01-15T02:00:00Z', price: '0.0451' },
  ],
  fixedCharges: [{ name: 'Standing charge', amount: '0.4854', per: 'day' }],
  taxes: [{ name: 'VAT', rate: '0.05' }],
};
