/**
 * GET /v1: what this service is, the API version, where devices publish (the MQTT broker this deployment
 * serves) and links to the documentation. Public: a client learns the broker before it holds a token, and
 * the meter simulator uses it to publish only where this API's gateway listens.
 *
 * The broker addresses come from the environment of the process: MQTT_PUBLIC_URL (comma-separated, for a
 * deployment behind NAT or a load balancer) when set; else, with MQTT_MODE=external, MQTT_URL; else the
 * embedded gateway's ports (MQTT_PORT, and MQTT_TLS_PORT with TLS, MQTT_WS_PORT) on the host name the client
 * used to reach this API.
 */
import { readFileSync } from 'node:fs';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { loadConfig, type Config } from '../../common/config.js';
import { errorResponses } from './responses.js';

const packageVersion = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export const serviceInfoSchema = z.object({
  service: z.string(),
  version: z.string().describe('version of this build'),
  apiVersion: z.literal('v1'),
  mqtt: z.object({
    urls: z.array(z.string()).describe('broker addresses devices publish to, preferred first'),
    source: z.enum(['MQTT_PUBLIC_URL', 'MQTT_URL', 'ports']).describe('where the addresses come from'),
  }),
  links: z.object({ home: z.string().describe('an HTML page with these links'), docs: z.string(), openapi: z.string(), readyz: z.string() }),
});
export type ServiceInfo = z.infer<typeof serviceInfoSchema>;

export const serviceInfoRoutes: FastifyPluginAsyncZod<{ env?: NodeJS.ProcessEnv }> = async (app, opts) => {
  const env = opts.env ?? process.env;
  let config: Config | null;
  try {
    config = loadConfig(env);
  } catch {
    config = null; // the process started with its own configuration; only MQTT_PUBLIC_URL can be told here
  }
  app.get(
    '/v1',
    {
      config: { public: true },
      schema: {
        tags: ['operations'],
        summary: 'Service information: API version, MQTT broker address, documentation links',
        response: { 200: serviceInfoSchema, ...errorResponses({ public: true }, 429) },
      },
    },
    async (request): Promise<ServiceInfo> => ({
      service: 'smart-meter-billing-gateway',
      version: packageVersion,
      apiVersion: 'v1',
      mqtt: brokerUrls(env.MQTT_PUBLIC_URL, config, request.hostname),
      links: { home: '/', docs: '/docs', openapi: '/openapi.json', readyz: '/readyz' },
    }),
  );
};

function brokerUrls(publicUrl: string | undefined, config: Config | null, hostname: string): ServiceInfo['mqtt'] {
  const listed = (text: string | undefined) => (text ?? '').split(',').map((u) => u.trim()).filter(Boolean);
  if (listed(publicUrl).length > 0) return { urls: listed(publicUrl), source: 'MQTT_PUBLIC_URL' };
  if (config?.MQTT_MODE === 'external' && config.MQTT_URL) return { urls: [config.MQTT_URL], source: 'MQTT_URL' };
  const host = hostname.replace(/:\d+$/, '') || 'localhost';
  const tls = Boolean(config?.TLS_CERT_FILE && config.TLS_KEY_FILE);
  const ports: [string, number][] = [
    ['mqtt', config?.MQTT_PORT ?? 1883],
    ...(tls ? ([['mqtts', config?.MQTT_TLS_PORT ?? 8883]] as [string, number][]) : []),
    [tls ? 'wss' : 'ws', config?.MQTT_WS_PORT ?? 8083],
  ];
  return { urls: ports.filter(([, port]) => port > 0).map(([scheme, port]) => `${scheme}://${host}:${port}`), source: 'ports' };
}
