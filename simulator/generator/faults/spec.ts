/**
 * The `--faults` specification: `duplicate=p,reorder=p,invalid=p,gap=p,late=p,conflict=p`, each p a
 * probability per generated reading (0-1). See README.md "Fault injection" for what each fault sends.
 *
 * `gap` and `invalid` are exclusive fates of a reading (never sent / sent corrupted instead), so their sum
 * must be <= 1; `late` and `reorder` are exclusive ways of delaying a delivered reading, same rule.
 * `duplicate` and `conflict` apply independently to each delivered reading.
 */

export const FAULT_KINDS = ['duplicate', 'reorder', 'invalid', 'gap', 'late', 'conflict'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Probability of each fault per generated reading. */
export type FaultSpec = Readonly<Record<FaultKind, number>>;

export const NO_FAULTS: FaultSpec = { duplicate: 0, reorder: 0, invalid: 0, gap: 0, late: 0, conflict: 0 };

export class FaultSpecError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid --faults: ${problems.join('; ')}`);
  }
}

/** Parses `kind=p,kind=p`; an empty text means no faults. Throws FaultSpecError listing every problem. */
export function parseFaultSpec(text: string): FaultSpec {
  const spec: Record<FaultKind, number> = { ...NO_FAULTS };
  const problems: string[] = [];
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [name, value, ...rest] = part.split('=');
    if (!(FAULT_KINDS as readonly string[]).includes(name)) {
      problems.push(`unknown fault "${name}" (known: ${FAULT_KINDS.join(', ')})`);
      continue;
    }
    const probability = Number(value);
    if (rest.length > 0 || value === undefined || value.trim() === '' || !Number.isFinite(probability)) {
      problems.push(`${name}: expected ${name}=<probability>, got "${part}"`);
    } else if (probability < 0 || probability > 1) {
      problems.push(`${name}: probability must be between 0 and 1, got ${value}`);
    } else {
      spec[name as FaultKind] = probability;
    }
  }
  if (spec.gap + spec.invalid > 1) problems.push('gap + invalid must be <= 1 (exclusive fates of a reading)');
  if (spec.late + spec.reorder > 1) problems.push('late + reorder must be <= 1 (exclusive delays of a reading)');
  if (problems.length > 0) throw new FaultSpecError(problems);
  return spec;
}

/** `duplicate=0.05,gap=0.01` (only the non-zero ones), or `none`. */
export function formatFaultSpec(spec: FaultSpec): string {
  const parts = FAULT_KINDS.filter((kind) => spec[kind] > 0).map((kind) => `${kind}=${spec[kind]}`);
  return parts.length > 0 ? parts.join(',') : 'none';
}

export function hasFaults(spec: FaultSpec): boolean {
  return FAULT_KINDS.some((kind) => spec[kind] > 0);
}
