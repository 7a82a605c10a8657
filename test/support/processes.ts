/**
 * Entry points as their own processes, the way compose or an operator starts them: `node --import tsx
 * <entry>` from the repository root (or `npm run <script>`), output kept, stopped with SIGTERM. The one way
 * tests and benchmarks spawn a process of ours.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const REPOSITORY_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface SpawnOptions {
  /** variables over `baseEnv` */
  env?: Record<string, string>;
  /** the environment to start from (default: this process's) */
  baseEnv?: NodeJS.ProcessEnv;
  /** default: the repository root */
  cwd?: string;
  /** arguments of the entry point */
  args?: readonly string[];
  /** options of node itself, e.g. --cpu-prof */
  nodeArgs?: readonly string[];
  /** inherit: the child's stderr goes to ours (benchmarks); pipe (default): kept in output() */
  stderr?: 'pipe' | 'inherit';
  /** run `npm run --silent <entry>` instead of node (entry is then an npm script), in its own process group */
  npmScript?: boolean;
}

export interface EntryPointProcess {
  child: ChildProcess;
  /** stdout and stderr so far, in arrival order */
  output(): string;
  stdout(): string;
  stderr(): string;
  /** the exit code (null when killed by a signal) */
  exited: Promise<number | null>;
  /** the exit code, once the output streams are closed too (all output read) */
  closed: Promise<number | null>;
  /** resolves once `text` appears in the output; rejects (with the output) when the process exits first or after `timeoutMs` */
  waitFor(text: string | RegExp, timeoutMs?: number): Promise<void>;
  /** sends `signal` (default SIGTERM; the whole group for an npm script); SIGKILL after `graceMs`; resolves with the exit code */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | null>;
}

export function spawnEntryPoint(entry: string, opts: SpawnOptions = {}): EntryPointProcess {
  const [command, argv] = opts.npmScript
    ? ['npm', ['run', '--silent', entry, ...(opts.args ?? [])]]
    : [process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', entry, ...(opts.args ?? [])]];
  const child = spawn(command, argv, {
    cwd: opts.cwd ?? REPOSITORY_ROOT,
    env: { ...(opts.baseEnv ?? process.env), ...opts.env },
    stdio: ['ignore', 'pipe', opts.stderr ?? 'pipe'],
    detached: opts.npmScript === true,
  });
  let all = '';
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    all += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
    all += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const closed = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    child,
    output: () => all,
    stdout: () => out,
    stderr: () => err,
    exited,
    closed,
    waitFor(text, timeoutMs = 60_000) {
      const seen = () => (typeof text === 'string' ? all.includes(text) : text.test(all));
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!seen()) return;
          done();
          resolve();
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${entry} did not print ${text} within ${timeoutMs} ms: ${all}`));
        }, timeoutMs);
        const onExit = (code: number | null) => {
          if (seen()) return check();
          done();
          reject(new Error(`${entry} exited with ${code}: ${all}`));
        };
        const done = () => {
          clearTimeout(timer);
          child.stdout!.off('data', check);
          child.stderr?.off('data', check);
          child.off('exit', onExit);
        };
        child.stdout!.on('data', check);
        child.stderr?.on('data', check);
        child.once('exit', onExit);
        if (!running()) onExit(child.exitCode);
        else check();
      });
    },
    async stop(signal = 'SIGTERM', graceMs = 5_000) {
      if (!running()) return exited;
      const send = (s: NodeJS.Signals) => {
        try {
          if (opts.npmScript) process.kill(-child.pid!, s);
          else child.kill(s);
        } catch {
          /* already gone */
        }
      };
      send(signal);
      const timer = setTimeout(() => send('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Spawns `entry` and resolves once it printed `readyText` (default: "started", as every process of ours does). */
export async function startEntryPoint(entry: string, opts: SpawnOptions & { readyText?: string | RegExp; timeoutMs?: number } = {}): Promise<EntryPointProcess> {
  const process_ = spawnEntryPoint(entry, opts);
  await process_.waitFor(opts.readyText ?? 'started', opts.timeoutMs);
  return process_;
}

export interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `entry` to its end (SIGKILL and a rejection after `timeoutMs`). */
export async function runEntryPoint(entry: string, opts: SpawnOptions & { timeoutMs?: number } = {}): Promise<Exit> {
  const p = spawnEntryPoint(entry, opts);
  const timeoutMs = opts.timeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      p.child.kill('SIGKILL');
      reject(new Error(`${entry} did not exit within ${timeoutMs} ms; stdout: ${p.stdout()}; stderr: ${p.stderr()}`));
    }, timeoutMs);
  });
  try {
    const code = await Promise.race([p.closed, timedOut]);
    return { code, stdout: p.stdout(), stderr: p.stderr() };
  } finally {
    clearTimeout(timer);
  }
}

/** SIGTERM to a child process, SIGKILL after `graceMs`; resolves once it is gone. */
export async function stopProcess(child: ChildProcess | null | undefined, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Starts `app/gateway.main.ts` on `port` against `databaseUrl`; resolves once it printed its start-up summary. */
export async function startGatewayProcess(databaseUrl: string, port: number, mode: string, env: Record<string, string> = {}): Promise<ChildProcess> {
  const gateway = await startEntryPoint('app/gateway.main.ts', {
    env: { DATABASE_URL: databaseUrl, MQTT_PORT: String(port), MQTT_WS_PORT: '0', MQTT_HOST: '127.0.0.1', READINGS_STORAGE: mode, LOG_LEVEL: 'warn', ...env },
    readyText: 'gateway started',
  });
  return gateway.child;
}
