/**
 * ingestSingle: one reading per message, one connection per meter, QoS 1, through the real gateway; and,
 * in the same run, the same load against an Aedes broker that stores nothing (bench/broker-only.ts).
 */
import mqtt from 'mqtt';
import { freePort } from '../../common/db.js';
import { BENCH_SECRET, createBenchDatabase, provisionBenchMeters, startProcess, stopProcess } from '../support.js';

export interface IngestSingleOptions {
  meters: number;
  messagesPerMeter: number;
  /** QoS 1 messages in flight per connection */
  inflight: number;
}

const SECRET = BENCH_SECRET;

async function drive(port: number, o: IngestSingleOptions): Promise<number> {
  const clients: mqtt.MqttClient[] = [];
  try {
    for (let i = 0; i < o.meters; i += 100) {
      const batch = [];
      for (let m = i + 1; m <= Math.min(o.meters, i + 100); m++) {
        batch.push(
          new Promise<mqtt.MqttClient>((resolve, reject) => {
            const client = mqtt.connect(`mqtt://127.0.0.1:${port}`, { username: `MTR-${m}`, password: SECRET, clientId: `MTR-${m}:bench`, reconnectPeriod: 0, connectTimeout: 60_000 });
            client.once('connect', () => resolve(client));
            client.once('error', reject);
          }),
        );
      }
      clients.push(...(await Promise.all(batch)));
    }
    const start = Date.parse('2025-01-01T00:00:00Z');
    const t0 = performance.now();
    await Promise.all(
      clients.map(async (client, index) => {
        const topic = `meters/MTR-${index + 1}/readings`;
        let next = 0;
        const worker = async () => {
          while (next < o.messagesPerMeter) {
            const k = next++;
            const payload = `{"intervalStart":"${new Date(start + k * 900_000).toISOString()}","intervalSeconds":900,"importWh":${(k * 37) % 500}}`;
            await new Promise<void>((res, rej) => client.publish(topic, payload, { qos: 1 }, (err) => (err ? rej(err) : res())));
          }
        };
        await Promise.all(Array.from({ length: o.inflight }, worker));
      }),
    );
    return Math.round((o.meters * o.messagesPerMeter) / ((performance.now() - t0) / 1000));
  } finally {
    await Promise.all(clients.map((c) => c.endAsync().catch(() => {})));
  }
}

export async function ingestSingleScenario(o: IngestSingleOptions) {
  const db = await createBenchDatabase();
  let gateway = null;
  let bare = null;
  try {
    await provisionBenchMeters(db.client, o.meters);

    const port = await freePort();
    gateway = await startProcess('app/gateway.main.ts', { DATABASE_URL: db.url, MQTT_PORT: String(port), MQTT_WS_PORT: '0' });
    const msgsPerSec = await drive(port, o);
    await stopProcess(gateway);
    gateway = null;
    const stored = Number((await db.client.query('SELECT count(*) FROM readings')).rows[0].count);
    if (stored !== o.meters * o.messagesPerMeter) throw new Error(`stored ${stored}, sent ${o.meters * o.messagesPerMeter}`);

    const barePort = await freePort();
    bare = await startProcess('bench/broker-only.ts', { MQTT_PORT: String(barePort) });
    const brokerOnlyMsgsPerSec = await drive(barePort, o);
    return {
      storage: db.storage,
      meters: o.meters,
      messages: o.meters * o.messagesPerMeter,
      inflightPerConnection: o.inflight,
      msgsPerSec,
      brokerOnlyMsgsPerSec,
      ratioToBrokerOnly: Math.round((msgsPerSec / brokerOnlyMsgsPerSec) * 100) / 100,
    };
  } finally {
    await stopProcess(gateway);
    await stopProcess(bare);
    await db.drop();
  }
}
