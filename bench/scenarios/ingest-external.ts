/**
 * ingestExternal: MQTT_MODE=external. A private Mosquitto 2 on a free port; concentrators publish QoS 1
 * batches to it; a gateway process subscribes (MQTT_SUBSCRIBER_CONNECTIONS connections, one persistent
 * session each, shared subscription) and commits into a fresh database. Timed from the first PUBLISH to the
 * last row in the database. Side by side, in the same run and against the same broker (started fresh, before
 * the gateway ever connects): the same load with plain mqtt.js subscribers that store nothing (brokerOnly),
 * in a process of their own, as many connections, same shared-subscription setup, QoS 1.
 *
 * In `npm run bench` with 4 subscriber connections; by itself, over several connection counts:
 *   node --import tsx bench/scenarios/ingest-external.ts --messages 20000 --readings-per-message 1 --publishers 4 --subscriber-connections 1,4,8
 * (DATABASE_URL: the PostgreSQL server to create the benchmark database on; default postgres://postgres@127.0.0.1:5432/postgres.)
 */
import type { ChildProcess } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { startMosquitto } from '../../test/support/mosquitto.js';
import { sleep } from '../../test/support/wait.js';
import { createBenchDatabase, machine, provisionBenchMeters, round1, startProcess, stopProcess } from '../support.js';

export interface IngestExternalOptions {
  /** QoS 1 messages in all */
  messages: number;
  readingsPerMessage: number;
  /** concentrator connections publishing to Mosquitto */
  publishers: number;
  /** MQTT_SUBSCRIBER_CONNECTIONS of the gateway (and connections of the brokerOnly subscriber) */
  subscriberConnections: number;
  /** QoS 1 PUBLISHes in flight per publisher (default 25) */
  inflightPerPublisher?: number;
  /** meters behind the concentrators (default 1000) */
  meters?: number;
}

function connectClient(url: string, options: mqtt.IClientOptions): Promise<mqtt.MqttClient> {
  return new Promise((resolve, reject) => {
    const client = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 30_000, ...options });
    client.once('connect', () => resolve(client));
    client.once('error', reject);
  });
}

/** Publishes every payload at QoS 1 (`inflight` outstanding per publisher); resolves when the broker acknowledged all. */
async function publishAll(url: string, payloads: Buffer[][], inflight: number, tag: string): Promise<void> {
  const clients = await Promise.all(payloads.map((_, c) => connectClient(url, { clientId: `bench-${tag}-dcu-${c + 1}` })));
  try {
    await Promise.all(
      clients.map(async (client, c) => {
        const list = payloads[c];
        const topic = `concentrators/DCU-${c + 1}/readings`;
        let next = 0;
        const worker = async () => {
          while (next < list.length) {
            const payload = list[next++];
            await client.publishAsync(topic, payload, { qos: 1 });
          }
        };
        await Promise.all(Array.from({ length: inflight }, worker));
      }),
    );
  } finally {
    await Promise.all(clients.map((c) => c.endAsync()));
  }
}

/** The concentrator batches of the run: payloads[publisher][k]. */
function buildPayloads(o: Required<IngestExternalOptions>): Buffer[][] {
  const perPublisher = Math.ceil(o.messages / o.publishers);
  const start = Date.parse('2025-01-01T00:00:00Z');
  const payloads: Buffer[][] = [];
  for (let c = 0; c < o.publishers; c++) {
    const own: number[] = [];
    for (let g = 1; g <= o.meters; g++) if (1 + (g % o.publishers) === c + 1) own.push(g);
    const list: Buffer[] = [];
    for (let m = 0, cursor = 0; m < perPublisher; m++) {
      const readings = [];
      for (let j = 0; j < o.readingsPerMessage; j++, cursor++) {
        readings.push({
          meterId: `MTR-${own[cursor % own.length]}`,
          intervalStart: new Date(start + Math.floor(cursor / own.length) * 900_000).toISOString(),
          intervalSeconds: 900,
          importWh: ((cursor * 7919) % 400_000) / 1000,
        });
      }
      list.push(Buffer.from(JSON.stringify({ readings })));
    }
    payloads.push(list);
  }
  return payloads;
}

/** brokerOnly: as many plain subscribers as the gateway has connections, storing nothing, in their own process. */
async function brokerOnly(url: string, payloads: Buffer[][], o: Required<IngestExternalOptions>): Promise<number> {
  const total = payloads.reduce((n, l) => n + l.length, 0);
  const child = await startProcess(new URL(import.meta.url).pathname, {
    SMBG_BENCH_PLAIN_SUBSCRIBER: JSON.stringify({ url, connections: o.subscriberConnections, total }),
  });
  try {
    const done = new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /received (\d+) at (\d+(?:\.\d+)?)/.exec(out);
        if (m) resolve(Number(m[2]));
      });
      child.once('exit', (code) => reject(new Error(`plain subscriber exited ${code}: ${out}`)));
    });
    // The child's clock and ours differ: it reports the time between its first and last message, and we
    // take the time from our first PUBLISH to its last message via wall-clock time (performance.timeOrigin).
    const t0 = performance.timeOrigin + performance.now();
    await publishAll(url, payloads, o.inflightPerPublisher, 'plain');
    const lastAt = await done;
    return (lastAt - t0) / 1000;
  } finally {
    await stopProcess(child);
  }
}

/** The child process of brokerOnly: subscribes, acknowledges at once, stores nothing. */
async function plainSubscriber(spec: { url: string; connections: number; total: number }): Promise<void> {
  let received = 0;
  const clients = await Promise.all(
    Array.from({ length: spec.connections }, (_, k) =>
      connectClient(spec.url, { clientId: `bench-plain-${k + 1}`, protocolVersion: 5, clean: true, properties: { receiveMaximum: 100 } }),
    ),
  );
  for (const client of clients) {
    client.on('message', () => {
      if (++received === spec.total) console.log(`received ${received} at ${performance.timeOrigin + performance.now()}`);
    });
    await client.subscribeAsync(['$share/bench-plain/meters/+/readings', '$share/bench-plain/concentrators/+/readings'], { qos: 1 });
  }
  console.log('started');
  process.on('SIGTERM', () => {
    void Promise.all(clients.map((c) => c.endAsync())).then(() => process.exit(0));
  });
}

export async function ingestExternalScenario(options: IngestExternalOptions) {
  const o: Required<IngestExternalOptions> = { inflightPerPublisher: 25, meters: 1000, ...options };
  const db = await createBenchDatabase();
  // Mosquitto's settings of the external-mode tests, without authentication: the bench measures throughput.
  const broker = await startMosquitto({
    onStderr: (text) => {
      if (/dropped/i.test(text)) console.error(`[mosquitto] ${text.trim()}`);
    },
  });
  let gateway: ChildProcess | null = null;
  try {
    const hash = await provisionBenchMeters(db.client, o.meters);
    await db.client.query(`INSERT INTO devices (id, kind, secret_hash) SELECT 'DCU-' || g, 'concentrator', $1 FROM generate_series(1, $2) g`, [hash, o.publishers]);
    await db.client.query(`INSERT INTO concentrators (id) SELECT 'DCU-' || g FROM generate_series(1, $1) g`, [o.publishers]);
    await db.client.query(`INSERT INTO concentrator_meters SELECT 'DCU-' || (1 + (g % $2)), 'MTR-' || g FROM generate_series(1, $1) g`, [o.meters, o.publishers]);
    const payloads = buildPayloads(o);
    const messages = payloads.reduce((n, l) => n + l.length, 0);
    const readings = messages * o.readingsPerMessage;
    const url = `mqtt://127.0.0.1:${broker.port}`;

    // First the broker alone (before any gateway session exists, which Mosquitto would also queue for).
    const brokerSeconds = await brokerOnly(url, payloads, o);

    gateway = await startProcess('app/gateway.main.ts', {
      DATABASE_URL: db.url,
      MQTT_MODE: 'external',
      MQTT_URL: url,
      MQTT_CLIENT_ID: 'bench-gw',
      MQTT_SUBSCRIBER_CONNECTIONS: String(o.subscriberConnections),
    });
    const stored = async () => Number((await db.client.query('SELECT count(*)::int AS n FROM readings')).rows[0].n);
    const t0 = performance.now();
    let publishedAt = 0;
    const publishing = publishAll(url, payloads, o.inflightPerPublisher, 'gw').then(() => (publishedAt = performance.now()));
    const deadline = Date.now() + 600_000;
    let n = 0;
    while ((n = await stored()) < readings) {
      if (Date.now() > deadline) throw new Error(`only ${n} of ${readings} readings stored after 10 minutes`);
      await sleep(100);
    }
    const seconds = (performance.now() - t0) / 1000;
    await publishing;
    if (n !== readings) throw new Error(`stored ${n} readings, sent ${readings}`);

    const messagesPerSec = Math.round(messages / seconds);
    const brokerOnlyMessagesPerSec = Math.round(messages / brokerSeconds);
    return {
      storage: db.storage,
      messages,
      readingsPerMessage: o.readingsPerMessage,
      publishers: o.publishers,
      inflightPerPublisher: o.inflightPerPublisher,
      subscriberConnections: o.subscriberConnections,
      messagesPerSec,
      readingsPerSec: Math.round(readings / seconds),
      seconds: round1(seconds),
      publishSeconds: round1((publishedAt - t0) / 1000),
      brokerOnly: { messagesPerSec: brokerOnlyMessagesPerSec, seconds: round1(brokerSeconds) },
      ratioToBrokerOnly: Math.round((messagesPerSec / brokerOnlyMessagesPerSec) * 100) / 100,
    };
  } finally {
    await stopProcess(gateway);
    await broker.stop();
    await db.drop();
  }
}

if (process.env.SMBG_BENCH_PLAIN_SUBSCRIBER) {
  await plainSubscriber(JSON.parse(process.env.SMBG_BENCH_PLAIN_SUBSCRIBER));
} else if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: {
      messages: { type: 'string', default: '20000' },
      'readings-per-message': { type: 'string', default: '1' },
      publishers: { type: 'string', default: '4' },
      'subscriber-connections': { type: 'string', default: '1,4,8' },
    },
  });
  console.error(JSON.stringify(machine()));
  for (const n of values['subscriber-connections']!.split(',').map(Number)) {
    const result = await ingestExternalScenario({
      messages: Number(values.messages),
      readingsPerMessage: Number(values['readings-per-message']),
      publishers: Number(values.publishers),
      subscriberConnections: n,
    });
    console.log(JSON.stringify(result));
  }
}
