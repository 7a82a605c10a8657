/** memory: the gateway's resident memory with that many meters connected (one connection each). */
import mqtt from 'mqtt';
import { freePort } from '../../common/db.js';
import { BENCH_SECRET, createBenchDatabase, provisionBenchMeters, rssMb, startProcess, stopProcess } from '../support.js';

const SECRET = BENCH_SECRET;

export async function memoryScenario(o: { connections: number }) {
  const db = await createBenchDatabase();
  let gateway = null;
  const clients: mqtt.MqttClient[] = [];
  try {
    await provisionBenchMeters(db.client, o.connections);
    const port = await freePort();
    gateway = await startProcess('app/gateway.main.ts', { DATABASE_URL: db.url, MQTT_PORT: String(port), MQTT_WS_PORT: '0' });
    const idleRssMb = rssMb(gateway.pid!);
    const t0 = performance.now();
    for (let i = 0; i < o.connections; i += 200) {
      const batch = [];
      for (let m = i + 1; m <= Math.min(o.connections, i + 200); m++) {
        batch.push(
          new Promise<mqtt.MqttClient>((resolve, reject) => {
            const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { username: `MTR-${m}`, password: SECRET, clientId: `MTR-${m}:mem`, reconnectPeriod: 0, keepalive: 600, connectTimeout: 60_000 });
            client.once('connect', () => resolve(client));
            client.once('error', reject);
          }),
        );
      }
      clients.push(...(await Promise.all(batch)));
    }
    const connectSeconds = (performance.now() - t0) / 1000;
    // One reading from every meter, so each connection has done real work, then let the heap settle.
    await Promise.all(
      clients.map((c, i) => c.publishAsync(`meters/MTR-${i + 1}/readings`, `{"intervalStart":"2025-01-01T00:00:00Z","intervalSeconds":900,"importWh":1}`, { qos: 1 })),
    );
    await new Promise((r) => setTimeout(r, 3000));
    return { storage: db.storage, connections: clients.length, rssMb: rssMb(gateway.pid!), idleRssMb, connectSeconds: Math.round(connectSeconds * 10) / 10 };
  } finally {
    await Promise.all(clients.map((c) => c.endAsync().catch(() => {})));
    await stopProcess(gateway);
    await db.drop();
  }
}
