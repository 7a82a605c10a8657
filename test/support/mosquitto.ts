/**
 * A private Mosquitto 2 for tests and benchmarks of external mode: its own folder, a free port on
 * 127.0.0.1, persistent sessions with queues large enough never to drop what a gateway session has not
 * fetched yet. The binary: TEST_MOSQUITTO_BIN, else /usr/sbin/mosquitto.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../common/db.js';
import { stopProcess } from './processes.js';
import { portAnswers, waitFor } from './wait.js';

export const MOSQUITTO_BIN = process.env.TEST_MOSQUITTO_BIN ?? '/usr/sbin/mosquitto';

export const mosquittoInstalled = () => existsSync(MOSQUITTO_BIN);

export interface MosquittoOptions {
  /** the folder for its configuration and persistence (default: a fresh temporary folder, removed by stop()) */
  dir?: string;
  /** refuse anonymous clients; users and topics from these files (as written by `npm run mosquitto-auth`) */
  auth?: { passwordFile: string; aclFile: string };
  /** seconds between saves of the persistence file (default 60) */
  autosaveSeconds?: number;
  /** log every connection and notice into this file; default: errors and warnings on stderr */
  logFile?: string;
  /** called with every chunk Mosquitto writes to stderr */
  onStderr?: (text: string) => void;
  /** a configuration of its own (e.g. a deployment's file) instead of the one above, given the free port */
  config?: (port: number) => string;
}

export interface Mosquitto {
  port: number;
  url: string;
  dir: string;
  child: ChildProcess;
  /** SIGTERM (the session store is saved), then removes a folder it created */
  stop(): Promise<void>;
}

export async function startMosquitto(opts: MosquittoOptions = {}): Promise<Mosquitto> {
  if (!mosquittoInstalled()) throw new Error(`Mosquitto 2 is required at ${MOSQUITTO_BIN} (apt-get install mosquitto, or TEST_MOSQUITTO_BIN)`);
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'smbg-mosquitto-')));
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  await writeFile(
    conf,
    opts.config?.(port) ??
    [
      // Run as whoever runs the tests (as root Mosquitto would otherwise switch to the `mosquitto` user).
      `user ${userInfo().username}`,
      'per_listener_settings false',
      `listener ${port} 127.0.0.1`,
      ...(opts.auth ? ['allow_anonymous false', `password_file ${opts.auth.passwordFile}`, `acl_file ${opts.auth.aclFile}`] : ['allow_anonymous true']),
      // Sessions and their queued QoS 1 messages are kept (and saved to disk); no per-client queue limit
      // low enough to drop messages queued for a gateway session (the default, 1000, would).
      'persistence true',
      `persistence_location ${dir}/`,
      `autosave_interval ${opts.autosaveSeconds ?? 60}`,
      'max_queued_messages 1000000',
      'max_inflight_messages 100',
      ...(opts.logFile
        ? [`log_dest file ${opts.logFile}`, 'log_type error', 'log_type warning', 'log_type notice', 'log_type information', 'connection_messages true']
        : ['log_dest stderr', 'log_type error', 'log_type warning']),
      '',
    ].join('\n'),
  );
  const child = spawn(MOSQUITTO_BIN, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    output += d.toString();
    opts.onStderr?.(d.toString());
  });
  await waitFor('Mosquitto to listen', async () => {
    if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}: ${output}`);
    return portAnswers(port);
  }, 15_000);
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    dir,
    child,
    async stop() {
      await stopProcess(child);
      if (ownDir) await rm(dir, { recursive: true, force: true });
    },
  };
}
