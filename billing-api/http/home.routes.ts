/**
 * GET /: a small HTML page (public) that says what this service is and links its documentation: the API
 * docs (/docs), the OpenAPI document (/openapi.json), the service information (GET /v1, with the MQTT
 * broker address) and readiness (/readyz).
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorResponses } from './responses.js';

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Smart-meter billing gateway</title>
<style>body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;line-height:1.5}code{background:#f3f3f3;padding:0 .2em}</style>
</head>
<body>
<h1>Smart-meter billing gateway</h1>
<p>Meters and concentrators publish interval readings over MQTT; this service stores them (or quarantines
them with a reason), rates them against tariffs (native documents or URDB rates) and closes immutable bills
per account and billing cycle. This is its REST API.</p>
<ul>
<li><a href="/docs">API documentation</a>: every operation, its inputs, answers, errors and examples</li>
<li><a href="/openapi.json">OpenAPI document</a> (JSON, OpenAPI 3.1)</li>
<li><a href="/v1">GET /v1</a>: API version and the MQTT broker address devices publish to</li>
<li><a href="/readyz">Readiness</a></li>
</ul>
<p>Every <code>/v1</code> operation except <code>GET /v1</code> needs <code>Authorization: Bearer &lt;token&gt;</code>
(roles admin, reader, customer). The first start prints the bootstrap admin token unless
<code>BILLING_ADMIN_TOKEN</code> is set.</p>
</body>
</html>
`;

export const homeRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get(
    '/',
    {
      config: { public: true },
      schema: {
        tags: ['operations'],
        summary: 'What this service is, with links to its documentation (HTML)',
        produces: ['text/html'],
        response: { 200: z.string().describe('an HTML page').meta({ examples: ['<!doctype html>...'] }), ...errorResponses({ public: true }, 429) },
      },
    },
    async (_req, reply) => reply.type('text/html; charset=utf-8').send(PAGE),
  );
};
