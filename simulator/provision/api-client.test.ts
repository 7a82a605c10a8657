/** The simulator's API client against a real HTTP server that rate-limits the way the billing API does. */
import { createServer } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { ApiClient } from './api-client.js';

const seen: number[] = [];
const server = createServer((req, res) => {
  seen.push(Date.now());
  // The first two requests are refused with Retry-After: 1, as @fastify/rate-limit answers.
  if (seen.length <= 2) {
    res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '1' });
    res.end(JSON.stringify({ error: { code: 'rate_limited', message: 'too many requests' } }));
    return;
  }
  res.writeHead(201, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ ok: true, url: req.url }));
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('ApiClient', () => {
  it('waits out a 429 as Retry-After says and then succeeds (rate limiting uses up no retries)', async () => {
    const { port } = server.address() as { port: number };
    const client = new ApiClient(`http://127.0.0.1:${port}`, 'token');
    const answer = await client.post('/v1/meters', { id: 'M' });
    expect(answer).toMatchObject({ status: 201, body: { ok: true, url: '/v1/meters' } });
    expect(Date.parse(answer.date!)).not.toBeNaN(); // the server's clock, for what was received during a run
    expect(seen).toHaveLength(3);
    expect(seen[1] - seen[0]).toBeGreaterThanOrEqual(950);
    expect(seen[2] - seen[1]).toBeGreaterThanOrEqual(950);
  });
});
