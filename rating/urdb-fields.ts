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
  'basicinformationcomments', 'energycomments', 'demandcomments', 'demandComments', 'sourceReference',
  // The misspelling found in real rates.
  'supercedes',
  // Names of the energy periods, kept with the tariff.
  'energytoulabels',
  // Applicability (eligibility) criteria: checking them is the job of whoever assigns the tariff.
  'peakkwcapacitymin', 'peakkwcapacitymax', 'peakkwcapacityhistory', 'peakkwhusagemin', 'peakkwhusagemax',
  'peakkwhusagehistory', 'voltageminimum', 'voltagemaximum', 'voltagecategory', 'phasewiring',
  'mindemand', 'maxdemand', 'serviceMax',
]);

/** Converted by the importer (urdb.ts). */
export const CONVERTED_FIELDS = new Set([
  'energyratestructure', 'energyweekdayschedule', 'energyweekendschedule',
  'demandratestructure', 'demandweekdayschedule', 'demandweekendschedule', 'demandwindow',
  'demandrateunit', 'demandunits', 'flatdemandstructure', 'flatdemandmonths', 'flatdemandunit',
  'fixedchargefirstmeter', 'fixedchargeunits', 'fixedmonthlycharge',
  'mincharge', 'minchargeunits', 'minmonthlycharge',
  'dgrules', 'usenetmetering', 'annualmincharge',
  'coincidentratestructure', 'coincidentrateschedule', 'coincidentschedule', 'coincidentrateunit',
  'lookbackpercent', 'lookbackrange', 'lookbackmonths',
  'energyattrs', 'demandattrs', 'fixedattrs',
  'demandreactivepowercharge',
]);

/** Spellings of the newer API (camelCase) read as the field they stand for. */
export const FIELD_ALIASES: Readonly<Record<string, string>> = {
  dgRules: 'dgrules',
  flatDemandUnits: 'flatdemandunit',
  demandRateUnits: 'demandrateunit',
  demandReactPwrCharge: 'demandreactivepowercharge',
};

/** Features the engine does not rate: refused whenever they carry a value that would change a bill. */
export const REFUSED_WHEN_SET: Readonly<Record<string, Check>> = {
  demandratchetpercentage: nonZeroElements(
    'what a monthly demand ratchet percentage applies to is not documented by URDB (no real rate uses it); state the ratchet with lookbackpercent and lookbackmonths',
  ),
  fueladjustmentsmonthly: nonZeroElements('monthly fuel adjustments are not supported; fold them into adj'),
  fixedchargeeaaddl: nonZero('charges for additional meters are not supported'),
};

function isSet(value: unknown): boolean {
  return value !== null && value !== undefined && value !== '' && !(Array.isArray(value) && value.length === 0);
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
