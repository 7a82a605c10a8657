/**
 * The simulator publishes only to the broker of the API it works with, or says it cannot.
 *
 * - Learning: without --broker, the broker is the first address `GET /v1` of the API lists (mqtt:// first).
 * - By address (always, when --broker is given): an explicit broker none of whose addresses match the API's
 *   list is refused before anything is sent, unless a token allows the stronger check below.
 * - By data (with a token): the first valid reading the broker acknowledges must be found through the API
 *   (stored, or in the quarantine of its device), within a few seconds; the gateway acknowledges only after
 *   commit. A broker that acknowledges what this API never stores is refused: the run stops, nothing is
 *   reported as delivered, the exit code is 3.
 */
import { lookup } from 'node:dns/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Reading } from '../../common/reading.js';
import { ApiClient, describeError } from '../provision/api-client.js';
import { isoUtc } from '../../common/time.js';

/** The broker is not the API's, or the API cannot tell: one sentence for the operator. */
export class BrokerRefusal extends Error {
  override name = 'BrokerRefusal';
}

export interface ServiceInfo {
  mqtt: { urls: string[] };
  /** The API's clock when it answered (its Date header, to the second), epoch ms; null without one. */
  serverTimeMs: number | null;
}

const SCHEME_PREFERENCE = ['mqtt:', 'tcp:', 'mqtts:', 'ssl:', 'ws:', 'wss:'];
const DEFAULT_PORTS: Record<string, number> = { 'mqtt:': 1883, 'tcp:': 1883, 'mqtts:': 8883, 'ssl:': 8883, 'ws:': 80, 'wss:': 443 };
/** How long the API may take to show a reading its broker acknowledged. */
const STORED_WITHIN_MS = 10_000;

export async function fetchServiceInfo(apiUrl: string): Promise<ServiceInfo> {
  let answer;
  try {
    answer = await new ApiClient(apiUrl, null, 5_000).get('/v1');
  } catch (error) {
    throw new BrokerRefusal(
      `cannot reach the billing API at ${apiUrl} (${(error as Error).message.replace(/^GET \S+: /, '')}) to learn its broker: ` +
        'start it, give --api, or --bare-broker with --broker to publish without an API',
    );
  }
  const urls = (answer.body as { mqtt?: { urls?: unknown } } | null)?.mqtt?.urls;
  if (answer.status !== 200 || !Array.isArray(urls) || !urls.every((u) => typeof u === 'string')) {
    throw new BrokerRefusal(
      `the billing API at ${apiUrl} does not say which broker it serves (GET /v1: HTTP ${answer.status} ${describeError(answer.body)}): ` +
        'is it the smart-meter billing API? Give --api, or --bare-broker with --broker to publish without an API',
    );
  }
  const date = Date.parse(answer.date ?? '');
  return { mqtt: { urls }, serverTimeMs: Number.isNaN(date) ? null : date };
}

/** The address to publish to: mqtt:// first, then TLS, then WebSocket. */
export function preferredBroker(urls: readonly string[]): string | null {
  const rank = (url: string) => {
    const i = SCHEME_PREFERENCE.indexOf(safeUrl(url)?.protocol ?? '');
    return i < 0 ? SCHEME_PREFERENCE.length : i;
  };
  return [...urls].filter((u) => rank(u) < SCHEME_PREFERENCE.length).sort((a, b) => rank(a) - rank(b))[0] ?? null;
}

/**
 * Whether `broker` is one of `advertised`: same port and a host resolving to a common address (any two
 * loopback addresses count as the same host).
 */
export async function isAdvertised(broker: string, advertised: readonly string[]): Promise<boolean> {
  const target = await endpoint(broker);
  if (!target) return false;
  for (const url of advertised) {
    const candidate = await endpoint(url);
    if (!candidate || candidate.port !== target.port) continue;
    if (candidate.addresses.some((a) => target.addresses.includes(a))) return true;
    if (candidate.addresses.every(isLoopback) && target.addresses.every(isLoopback)) return true;
  }
  return false;
}

async function endpoint(url: string): Promise<{ port: number; addresses: string[] } | null> {
  const parsed = safeUrl(url);
  if (!parsed) return null;
  const port = parsed.port ? Number(parsed.port) : DEFAULT_PORTS[parsed.protocol];
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  try {
    const addresses = (await lookup(host, { all: true })).map((a) => a.address);
    return { port, addresses };
  } catch {
    return { port, addresses: [host] };
  }
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.');
}

function safeUrl(url: string): URL | null {
  try {
    return new URL(url);
  } catch {
    return null;
  }
}

/**
 * Looks for a reading the broker acknowledged through the API: in the meter's stored readings, received
 * since the run started (by the API's clock), or in the quarantine of the device that sent it since then.
 * Resolves `delivered` when found, `already-stored` when the reading was stored before this run (a re-run:
 * it proves nothing), and rejects with a `BrokerRefusal` when it is nowhere after `STORED_WITHIN_MS`.
 */
export async function confirmStored(
  api: ApiClient,
  reading: Reading,
  deviceId: string,
  context: { brokerUrl: string; apiUrl: string; advertised: readonly string[]; runStartedMs: number; intervalMs: number },
): Promise<'delivered' | 'already-stored'> {
  const from = isoUtc(reading.intervalStart);
  const to = isoUtc(reading.intervalStart + context.intervalMs);
  const receivedSince = isoUtc(context.runStartedMs);
  const deadline = Date.now() + STORED_WITHIN_MS;
  let problem = '';
  for (let delay = 100; ; delay = Math.min(delay * 2, 1_000)) {
    const stored = await api.get(`/v1/meters/${encodeURIComponent(reading.meterId)}/readings?from=${from}&to=${to}`);
    const item = (stored.body as { items?: { receivedAt?: string }[] } | null)?.items?.[0];
    if (stored.status === 200 && item) {
      return Date.parse(item.receivedAt ?? '') >= context.runStartedMs ? 'delivered' : 'already-stored';
    }
    if (stored.status === 401 || stored.status === 403) {
      throw new BrokerRefusal(`the API at ${context.apiUrl} refused the token (HTTP ${stored.status}): cannot check that the broker stores what it acknowledges`);
    }
    problem = stored.status === 404 ? `the API does not know meter ${reading.meterId}` : `the API has no reading of ${reading.meterId} at ${from}`;
    const quarantined = await api.get(`/v1/quarantine?deviceId=${encodeURIComponent(deviceId)}&from=${receivedSince}&limit=1`);
    if (quarantined.status === 200 && ((quarantined.body as { items?: unknown[] }).items?.length ?? 0) > 0) return 'delivered';
    if (Date.now() >= deadline) break;
    await sleep(delay);
  }
  throw new BrokerRefusal(
    `the broker at ${context.brokerUrl} acknowledged a reading that never reached the API at ${context.apiUrl} (${problem} after ${STORED_WITHIN_MS / 1000} s): ` +
      `it is not this API's broker${context.advertised.length ? ` (the API serves ${context.advertised.join(', ')})` : ''}; leave out --broker to use the API's`,
  );
}
