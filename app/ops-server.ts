/**
 * The operations endpoints of a process that runs no API (`npm run gateway` as its own service): GET
 * /healthz, /readyz and /metrics on GATEWAY_HTTP_PORT, with the same meaning and format as the API's, so
 * compose health checks and Prometheus scrape the gateway service directly. Plain node:http: three
 * read-only routes need no framework.
 */
import { createServer } from 'node:http';
import type { Registry } from 'prom-client';

export interface OpsCheck {
  name: string;
  check: () => Promise<boolean>;
}

export interface OpsServer {
  port: number;
  close(): Promise<void>;
}

export async function startOpsServer(opts: { host: string; port: number; checks: OpsCheck[]; registry: Registry }): Promise<OpsServer> {
  const server = createServer(async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    try {
      if (req.method !== 'GET') {
        res.writeHead(405, { 'content-type': 'application/json', allow: 'GET' }).end(JSON.stringify({ error: { code: 'method_not_allowed', message: 'only GET' } }));
      } else if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'ok' }));
      } else if (path === '/readyz') {
        const checks: Record<string, boolean> = {};
        await Promise.all(opts.checks.map(async (c) => (checks[c.name] = await c.check().catch(() => false))));
        const ready = Object.values(checks).every(Boolean);
        res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ status: ready ? 'ready' : 'not_ready', checks }));
      } else if (path === '/metrics') {
        const body = await opts.registry.metrics();
        res.writeHead(200, { 'content-type': opts.registry.contentType }).end(body);
      } else {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'not_found', message: `${path}: only /healthz, /readyz and /metrics here` } }));
      }
    } catch (err) {
      res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'internal', message: (err as Error).message } }));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  return {
    port: (server.address() as { port: number }).port,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
