/** Components as their own processes, the way compose or an operator starts them. */
import { spawn, type ChildProcess } from 'node:child_process';

/** Starts `app/gateway.main.ts` on `port` against `databaseUrl`; resolves once it printed its start-up summary. */
export function startGatewayProcess(databaseUrl: string, port: number, mode: string, env: Record<string, string> = {}): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'app/gateway.main.ts'], {
    env: { ...process.env, DATABASE_URL: databaseUrl, MQTT_PORT: String(port), MQTT_WS_PORT: '0', MQTT_HOST: '127.0.0.1', READINGS_STORAGE: mode, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('gateway started')) resolve(child);
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => reject(new Error(`gateway exited with ${code}: ${out}`)));
  });
}
