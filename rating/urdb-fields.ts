/**
 * The top-level fields of a URDB rate object (OpenEI utility_rates API versions 3 to 8, detail=full) and
 * what the importer does with each: use it, accept it as information, or refuse it when it carries a
 * value the rating engine would otherwise ignore. A field not listed here is refused as unknown.
 */
import type { UrdbIssue } from './urdb.js';

type Check = (value: unknown, path: string) => UrdbIssue[];

/** Describe the rate, its utility, its source and who may take it; not used for rating. */
export const INFORMATIVE_FIELDS = new Set([
  'label', 'uri', 'name', 'utility', 'eiaid', 'country', 'sector', 'servicetype', 'description', 'source',
  'sourceparent', 'startdate', 'enddate', 'latest_update', 'revisions', 'approved', 'is_default', 'supersedes',
  'basicinformationcomments', 'energycomments', 'demandcomments',
  // Applicability (eligibility) criteria: checking them is the job of whoever assigns the tariff.
  'peakkwcapacitymin', 'peakkwcapacitymax', 'peakkwcapacityhistory', 'peakkwhusagemin', 'peakkwhusagemax',
  'peakkwhusagehistory', 'voltageminimum', 'voltagemaximum', 'voltagecategory', 'phasewiring',
  // The unit of coincident demand, which is refused through its structure and schedule.
  'coincidentrateunit',
]);

/** Converted by the importer (urdb.ts). */
export const CONVERTED_FIELDS = new Set([
  'energyratestructure', 'energyweekdayschedule', 'energyweekendschedule',
  'demandratestructure', 'demandweekdayschedule', 'demandweekendschedule', 'demandwindow',
  'demandrateunit', 'demandunits', 'flatdemandstructure', 'flatdemandmonths', 'flatdemandunit',
  'fixedchargefirstmeter', 'fixedchargeunits', 'fixedmonthlycharge',
  'mincharge', 'minchargeunits', 'minmonthlycharge',
  'dgrules', 'usenetmetering',
]);

/** Features the engine does not rate: refused whenever they carry a value that would change a bill. */
export const REFUSED_WHEN_SET: Readonly<Record<string, Check>> = {
  coincidentratestructure: nonEmpty('coincident demand charges are not supported'),
  coincidentrateschedule: nonEmpty('coincident demand charges are not supported'),
  demandratchetpercentage: nonZeroElements('demand ratchets are not supported'),
  lookbackpercent: nonZero('demand lookback (ratchet) charges are not supported'),
  lookbackrange: nonZero('demand lookback (ratchet) charges are not supported'),
  lookbackmonths: nonZeroElements('demand lookback (ratchet) charges are not supported'),
  demandreactivepowercharge: nonZero('reactive power (kVAR) charges are not supported'),
  fueladjustmentsmonthly: nonZeroElements('monthly fuel adjustments are not supported; fold them into adj'),
  fixedchargeeaaddl: nonZero('charges for additional meters are not supported'),
  annualmincharge: nonZero('annual minimum charges are not supported'),
  energyattrs: meaningfulAttributes('energy attributes change the rate and are not supported'),
  demandattrs: meaningfulAttributes('demand attributes change the rate and are not supported'),
  fixedattrs: meaningfulAttributes('fixed charge attributes change the rate and are not supported'),
};

function isSet(value: unknown): boolean {
  return value !== null && value !== undefined && value !== '' && !(Array.isArray(value) && value.length === 0);
}

function nonEmpty(message: string): Check {
  return (value, path) => (isSet(value) ? [{ path, message }] : []);
}

function nonZero(message: string): Check {
  return (value, path) => (isSet(value) && Number(value) !== 0 ? [{ path, message }] : []);
}

function nonZeroElements(message: string): Check {
  return (value, path) => {
    if (!isSet(value)) return [];
    if (!Array.isArray(value)) return [{ path, message }];
    return value.flatMap((element, i) =>
      isSet(element) && Number(element) !== 0 ? [{ path: `${path}[${i}]`, message }] : [],
    );
  };
}

/** Key/value attribute lists ([{"Fuel adjustment": "0.0123"}]): refused when any value is non-empty. */
function meaningfulAttributes(message: string): Check {
  return (value, path) => {
    if (!isSet(value)) return [];
    if (!Array.isArray(value)) return [{ path, message }];
    return value.flatMap((attribute, i) => {
      const values = attribute !== null && typeof attribute === 'object' ? Object.values(attribute) : [attribute];
      return values.some(isSet) ? [{ path: `${path}[${i}]`, message }] : [];
    });
  };
}
