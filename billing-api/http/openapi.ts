/**
 * The OpenAPI document (`/openapi.json`, generated from the routes' zod schemas) and its UI (`/docs`), both
 * public.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform } from 'fastify-type-provider-zod';

const DESCRIPTION =
  'Provisioning, interval data, quarantine, tariffs, charges and bills. The essentials of the contract: docs/contract.md in the repository. Lists page with limit and next (follow next as given until null); errors are {error: {code, message, details}}; corrections of accounts, meters and tariff assignments are refused with 409 where they would change billed history, and each is an event (GET /v1/events). Times are UTC with Z on output; windows are half-open [from, to) on intervalStart; energy and money are exact decimal strings; every four-digit year is read exactly (0099 is the year 99). Service window: a reading whose intervalStart is earlier than its meter\'s creation minus READING_BACKFILL_DAYS (default 1096) is quarantined as before_service_window; a meter is billed from its service start (its creation, or its first reading inside that window when earlier), never from a reading outside it. A NUL byte in any id, query string or JSON string is a 400 naming the field. GET /metrics needs a bearer token (METRICS_TOKEN, admin or reader).';

export async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Smart-meter billing gateway API', version: '0.1.0', description: DESCRIPTION },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  // Registered before the UI plugin, whose routes are added as soon as it is registered.
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/docs')) route.config = { ...(route.config as object), public: true } as never;
  });
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { docExpansion: 'list' } });
  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
}
