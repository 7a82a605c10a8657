/** Runs the real entry point (`node --import tsx simulator/cli.ts`) as a child process. */
import { REPOSITORY_ROOT, runEntryPoint, type Exit } from '../../test/support/processes.js';

export { REPOSITORY_ROOT };

export type CliRun = Exit;

export function runCli(args: readonly string[], timeoutMs = 45_000): Promise<CliRun> {
  const { BILLING_ADMIN_TOKEN: _, ...baseEnv } = process.env;
  return runEntryPoint('simulator/cli.ts', { args, baseEnv, timeoutMs });
}
