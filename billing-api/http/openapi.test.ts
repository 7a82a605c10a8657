/**
 * Documentation that answers, on the application production runs (buildApp over createBillingApi), over
 * real HTTP: every operation of the OpenAPI document has a summary, a documented success answer with its
 * schema (a 201 where it creates), documented error answers with examples; `/` is an HTML page that says
 * what this is and links the docs, the OpenAPI document and GET /v1.
 */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/logger.js';
import { createMetrics } from '../../common/metrics.js';
import { createTestDatabase, storageModes, type TestDatabase } from '../../test/support/database.js';
import { buildApp, createBillingApi } from '../index.js';

let db: TestDatabase;
let app: FastifyInstance;
let base = '';

beforeAll(async () => {
  db = await createTestDatabase(storageModes()[0], 'openapi');
  const log = createLogger('silent');
  app = await buildApp({
    services: createBillingApi(db.pool, log, { scryptN: 1024, graceDays: 3, live: false, cacheMeters: 0 }),
    log,
    metrics: createMetrics(),
    readiness: [],
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

interface Operation {
  summary?: string;
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: unknown; example?: unknown; examples?: unknown }> }>;
}

/** What an operation's documentation lacks, one line per missing item ("PATCH /v1/x: no summary"). */
function missingDocumentation(method: string, path: string, op: Operation): string[] {
  const name = `${method.toUpperCase()} ${path}`;
  const missing: string[] = [];
  if (!op.summary?.trim()) missing.push(`${name}: no summary`);
  const responses = op.responses ?? {};
  const statuses = Object.keys(responses);
  const success = statuses.filter((s) => /^2\d\d$/.test(s));
  if (!success.length) missing.push(`${name}: no documented success response (2xx)`);
  for (const s of success) {
    if (s === '204') continue;
    const content = Object.values(responses[s].content ?? {});
    if (!content.some((c) => c.schema)) missing.push(`${name}: success response ${s} has no schema`);
  }
  const errors = statuses.filter((s) => /^[45]\d\d$/.test(s));
  if (!errors.length) missing.push(`${name}: no documented error responses (4xx/5xx)`);
  for (const s of errors) {
    const content = Object.values(responses[s].content ?? {});
    if (!content.some((c) => c.schema)) missing.push(`${name}: error response ${s} has no schema`);
    else if (!content.some((c) => c.example !== undefined || c.examples !== undefined)) missing.push(`${name}: error response ${s} has no example`);
  }
  const authenticated = path.startsWith('/v1/') || path === '/metrics';
  if (authenticated && !statuses.includes('401')) missing.push(`${name}: 401 (no or bad token) not documented`);
  if (method === 'post' && statuses.includes('201') && statuses.includes('200')) missing.push(`${name}: documents both 200 and 201`);
  return missing;
}

describe('the OpenAPI document', () => {
  it('documents every operation: summary, success answer with schema, error answers with examples', async () => {
    const doc: any = await (await fetch(`${base}/openapi.json`)).json();
    const missing: string[] = [];
    let operations = 0;
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, Operation>>)) {
      for (const method of METHODS) {
        if (!item[method]) continue;
        operations++;
        missing.push(...missingDocumentation(method, path, item[method]));
      }
    }
    expect(operations).toBeGreaterThan(30);
    expect(missing, `undocumented:\n${missing.join('\n')}`).toEqual([]);
  });

  it('documents the contract\'s creations as 201 with the created resource\'s schema', async () => {
    const doc: any = await (await fetch(`${base}/openapi.json`)).json();
    for (const path of ['/v1/accounts', '/v1/meters', '/v1/concentrators', '/v1/tokens', '/v1/tariffs', '/v1/tariffs/urdb']) {
      const responses = doc.paths[path].post.responses;
      expect(Object.keys(responses), path).toContain('201');
      expect(Object.keys(responses), path).not.toContain('200');
      const schema = responses['201'].content['application/json'].schema;
      expect(schema.properties, path).toHaveProperty('id');
    }
    // The answer to a bad request is documented with the error shape and an example naming a field.
    const bad = doc.paths['/v1/accounts'].post.responses['400'].content['application/json'];
    expect(Object.keys(bad.schema.properties)).toEqual(['error']);
    expect(bad.example.error.details[0].field).toMatch(/^body\./);
  });

  it('has the corrections, silent-meter and list operations', async () => {
    const doc: any = await (await fetch(`${base}/openapi.json`)).json();
    expect(doc.paths['/v1/accounts/{id}'].patch).toBeDefined();
    expect(doc.paths['/v1/meters/{id}'].patch).toBeDefined();
    expect(doc.paths['/v1/meters/{id}/tariff-assignments/{assignmentId}'].patch).toBeDefined();
    expect(doc.paths['/v1/meters/{id}/tariff-assignments/{assignmentId}'].delete).toBeDefined();
    expect(doc.paths['/v1/meters/{id}/tariff-assignments/{assignmentId}'].patch.responses['409']).toBeDefined();
    const meters = doc.paths['/v1/meters'].get.parameters.map((p: { name: string }) => p.name);
    expect(meters).toEqual(expect.arrayContaining(['accountId', 'concentratorId', 'silentForMinutes', 'sort', 'limit', 'after']));
    for (const path of ['/v1/events', '/v1/accounts/{id}/events', '/v1/concentrators', '/v1/tokens', '/v1/bills']) expect(doc.paths[path]?.get, path).toBeDefined();
  });
});

describe('GET /', () => {
  it('is an HTML page that says what this is and links the docs, the OpenAPI document and GET /v1, without a token', async () => {
    const res = await fetch(`${base}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toMatch(/^<!doctype html>/i);
    expect(html).toContain('billing');
    for (const href of ['/docs', '/openapi.json', '/v1']) {
      expect(html).toContain(`href="${href}"`);
      expect((await fetch(base + href)).status, href).toBe(200);
    }
  });
});
