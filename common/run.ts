/**
 * Shared `main` of the three entry points: validate configuration, start the requested components, print
 * the summary, stop gracefully on SIGTERM/SIGINT. Expected failures (bad configuration, a port in use, no
 * database, an unreadable TLS file) end with one clear line and exit code 1, never a stack trace.
 */
import { TlsFileError } from '../gateway/gateway.js';
import { ConfigError, loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { TimescaleRequiredError } from './migrate.js';
import { describeStack, PortInUseError, startStack, type StackOptions } from './stack.js';

export async function run(name: string, components: StackOptions['components']): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    console.error(`${name}: ${err instanceof ConfigError ? err.message : String(err)}`);
    process.exit(1);
  }
  const log = createLogger(config.LOG_LEVEL, name);
  let stack;
  try {
    stack = await startStack({ config, log, components });
  } catch (err) {
    const expected =
      err instanceof PortInUseError || err instanceof TimescaleRequiredError || err instanceof TlsFileError || (err as NodeJS.ErrnoException).code === 'ECONNREFUSED';
    console.error(`${name}: ${expected ? '' : 'failed to start: '}${(err as Error).message}`);
    if (!expected) log.debug({ err }, 'start-up failure');
    process.exit(1);
  }
  console.log([`${name} started`, ...describeStack(stack, config)].join('\n'));

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: no new connections; committing and acknowledging what is in flight');
    await stack.stop();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}
