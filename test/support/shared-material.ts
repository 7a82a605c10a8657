/**
 * Where the shared reference material lives (the peer-conformance suite and the URDB corpus): beside the
 * repository (`../shared`), or where SHARED_DIR says. A clone without it skips these suites with a printed
 * reason; in CI (CI=true) its absence is a failure, so a regression can never pass unseen.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { resolve } from 'node:path';

const repositoryRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));

export const sharedDir = resolve(process.env.SHARED_DIR ?? resolve(repositoryRoot, '..', 'shared'));

/** The folder when present; null (with the reason printed) when absent outside CI. */
export function sharedFolder(name: string): { dir: string | null; reason: string } {
  const dir = resolve(sharedDir, name);
  if (existsSync(dir)) return { dir, reason: '' };
  const reason = `${dir} is absent (set SHARED_DIR to the shared material): the ${name} suite is not replayed`;
  if (process.env.CI !== 'true') console.warn(reason);
  return { dir: null, reason };
}
