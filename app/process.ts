/**
 * The life of every process (`npm start`, `npm run gateway`, `npm run billing-api`): validate the
 * configuration, create the logger, start the process's components, print the summary, stop gracefully on
 * SIGTERM/SIGINT. Expected failures (bad configuration, a port in use, no database, an unreadable TLS file,
 * TimescaleDB required but absent) end with one clear line and exit code 1, never a stack trace.
 */
import { ConfigError, loadConfig, type Config } from '../common/config.js';
import { createLogger, type Logger } from '../common/logger.js';
import { TimescaleRequiredError } from '../common/migrate.js';
import { PortInUseError } from '../common/errors.js';
import { TlsFileError } from '../common/tls.js';

/** What a started process hands back: the lines of its start-up summary and how to stop it. */
export interface RunningProcess {
  summary(): string[];
  stop(): Promise<void>;
}

export type StartProcess = (config: Config, log: Logger) => Promise<RunningProcess>;

export async function runProcess(name: string, start: StartProcess): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    console.error(`${name}: ${err instanceof ConfigError ? err.message : String(err)}`);
    process.exit(1);
  }
  const log = createLogger(config.LOG_LEVEL, name);
  let running;
  try {
    running = await start(config, log);
  } catch (err) {
    const expected =
      err instanceof PortInUseError || err instanceof TimescaleRequiredError || err instanceof TlsFileError || (err as NodeJS.ErrnoException).code === 'ECONNREFUSED';
    console.error(`${name}: ${expected ? '' : 'failed to start: '}${(err as Error).message}`);
    if (!expected) log.debug({ err }, 'start-up failure');
    process.exit(1);
  }
  console.log([`${name} started`, ...running.summary()].join('\n'));

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: no new connections; committing and acknowledging what is in flight');
    await running.stop();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

/** Runs the stop steps last-started first; a failing step is logged and the others still run. */
export async function stopInReverse(stops: (() => Promise<void>)[], log: Logger): Promise<void> {
  for (const fn of stops.splice(0).reverse()) await fn().catch((err) => log.warn({ err }, 'shutdown step failed'));
}
