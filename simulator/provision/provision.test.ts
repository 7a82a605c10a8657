/**
 * Provisioning against a small in-process HTTP server that answers like the contract's API (201 on
 * create, 409 on an existing id, the error shape of section 3); the real API is exercised in test/.
 */
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { createFleet } from '../generator/index.js';
import { provisionFleet } from './provision.js';
import { deviceSecret, secretKeyFor } from './secrets.js';
import { SIMULATOR_NET_METERING_TARIFF_ID, SIMULATOR_TARIFF_ID } from './simulator-tariff.js';

interface FakeApi {
  url: string;
  requests: Array<{ path: string; body: Record<string, unknown> }>;
  close(): Promise<void>;
}

async function startFakeApi(options: { tariffImport: boolean; token: string }): Promise<FakeApi> {
  const created = new Set<string>();
  const requests: FakeApi['requests'] = [];
  const server: Server = createServer((request, response) => {
    let text = '';
    request.on('data', (chunk) => (text += chunk));
    request.on('end', () => {
      const answer = (status: number, body: unknown) => {
        response.writeHead(status, { 'content-type': 'application/json' });
        response.end(JSON.stringify(body));
      };
      if (request.headers.authorization !== `Bearer ${options.token}`) return answer(401, { error: { code: 'unauthorized', message: 'bad token' } });
      const path = request.url ?? '';
      if (path === '/v1/tariffs/urdb' && !options.tariffImport) return answer(404, { error: { code: 'not_found', message: 'Route not found' } });
      const body = JSON.parse(text) as Record<string, unknown>;
      requests.push({ path, body });
      if (path === '/v1/accounts' && typeof body.name !== 'string') return answer(400, { error: { code: 'validation', message: 'invalid', details: [] } });
      const key = `${path}|${String(body.id)}`;
      if (created.has(key)) return answer(409, { error: { code: 'conflict', message: `${String(body.id)} exists` } });
      created.add(key);
      answer(201, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return {
    url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

let api: FakeApi | null = null;
afterEach(async () => {
  await api?.close();
  api = null;
});

const fleet = createFleet({ meters: 6, seed: 'prov', profile: 'mixed', concentrators: 2, idPrefix: 'T1-' });
const secretKey = secretKeyFor('prov', null);

describe('provisionFleet', () => {
  it('creates tariff, accounts, meters and concentrators, and a second run changes nothing and does not fail', async () => {
    api = await startFakeApi({ tariffImport: true, token: 'admin' });
    const lines: string[] = [];
    const options = { apiUrl: api.url, token: 'admin', tariffId: null, timezone: 'America/New_York', secretKey, log: (l: string) => lines.push(l) };
    const first = await provisionFleet(fleet, options);
    expect(first).toEqual({
      tariffId: SIMULATOR_TARIFF_ID,
      created: { tariffs: 1, accounts: 6, meters: 6, concentrators: 2 },
      existing: { tariffs: 0, accounts: 0, meters: 0, concentrators: 0 },
    });
    const second = await provisionFleet(fleet, options);
    expect(second.existing).toEqual(first.created);
    expect(second.created).toEqual({ tariffs: 0, accounts: 0, meters: 0, concentrators: 0 });

    const meterBody = api.requests.find((r) => r.path === '/v1/meters' && r.body.id === 'T1-MTR-000003')!.body;
    const meter = fleet.meters[2];
    expect(meterBody).toEqual({
      id: 'T1-MTR-000003',
      accountId: 'T1-ACC-000003',
      timezone: 'America/New_York',
      intervalSeconds: 900,
      tariffId: SIMULATOR_TARIFF_ID,
      maxPowerKw: meter.maxPowerKw,
    });
    // Meters behind concentrators never connect: no secret is sent for them.
    expect(meterBody).not.toHaveProperty('mqttPassword');
    const concentratorBody = api.requests.find((r) => r.path === '/v1/concentrators' && r.body.id === 'T1-DCU-0002')!.body;
    expect(concentratorBody).toEqual({
      id: 'T1-DCU-0002',
      meterIds: ['T1-MTR-000002', 'T1-MTR-000004', 'T1-MTR-000006'],
      mqttPassword: deviceSecret(secretKey, 'T1-DCU-0002'),
    });
  });

  it('a net-metered fleet gets the net-metering tariff: dgrules "Net Metering" with the options beside rate', async () => {
    api = await startFakeApi({ tariffImport: true, token: 'admin' });
    const solar = createFleet({ meters: 2, seed: 'prov', profile: 'residential-solar', idPrefix: 'S-' });
    const report = await provisionFleet(solar, { apiUrl: api.url, token: 'admin', tariffId: null, tariffPlan: 'net-metering', timezone: 'America/Denver', secretKey, log: () => {} });
    expect(report.tariffId).toBe(SIMULATOR_NET_METERING_TARIFF_ID);
    const tariff = api.requests.find((r) => r.path === '/v1/tariffs/urdb')!.body;
    expect(tariff).toMatchObject({
      id: SIMULATOR_NET_METERING_TARIFF_ID,
      timezone: 'America/Denver',
      rate: { dgrules: 'Net Metering' },
      netMetering: { carryOver: 'kWh', trueUpMonth: 12, trueUpSellRate: '0.04' },
    });
    const meters = api.requests.filter((r) => r.path === '/v1/meters');
    expect(meters.map((r) => r.body.tariffId)).toEqual([SIMULATOR_NET_METERING_TARIFF_ID, SIMULATOR_NET_METERING_TARIFF_ID]);
  });

  it('continues without a tariff when the API cannot import one (404), and says so', async () => {
    api = await startFakeApi({ tariffImport: false, token: 'admin' });
    const lines: string[] = [];
    const report = await provisionFleet(fleet, { apiUrl: api.url, token: 'admin', tariffId: null, timezone: 'UTC', secretKey, log: (l) => lines.push(l) });
    expect(report.tariffId).toBeNull();
    expect(lines[0]).toMatch(/answered 404: .*without a tariff/);
    expect(api.requests.filter((r) => r.path === '/v1/meters').every((r) => !('tariffId' in r.body))).toBe(true);
  });

  it('stops at the first refusal other than 409, with the contract error in the message', async () => {
    api = await startFakeApi({ tariffImport: true, token: 'admin' });
    await expect(
      provisionFleet(fleet, { apiUrl: api.url, token: 'wrong', tariffId: 'T', timezone: 'UTC', secretKey, log: () => {} }),
    ).rejects.toThrow('POST /v1/accounts: HTTP 401 unauthorized: bad token');
  });
});

describe('deviceSecret', () => {
  it('is stable per key and device, differs across devices and keys, and fits the API secret rules', () => {
    expect(deviceSecret('k', 'MTR-000001')).toBe(deviceSecret('k', 'MTR-000001'));
    expect(deviceSecret('k', 'MTR-000001')).not.toBe(deviceSecret('k', 'MTR-000002'));
    expect(deviceSecret('k', 'MTR-000001')).not.toBe(deviceSecret('other', 'MTR-000001'));
    expect(deviceSecret('k', 'MTR-000001')).toMatch(/^[A-Za-z0-9_-]{32}$/);
  });
});
