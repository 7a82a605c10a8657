/**
 * GET /v1 names the broker devices publish to: MQTT_PUBLIC_URL when set, the external broker in external
 * mode, else the embedded gateway's ports on the host name the client used (the route alone, on Fastify).
 */
import Fastify from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { describe, expect, it } from 'vitest';
import { serviceInfoRoutes } from './service-info.routes.js';

async function serviceInfo(env: Record<string, string>, host = 'billing.example:3000') {
  const app = Fastify();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  await app.register(serviceInfoRoutes, { env });
  const res = await app.inject({ method: 'GET', url: '/v1', headers: { host } });
  await app.close();
  expect(res.statusCode).toBe(200);
  return res.json();
}

describe('GET /v1', () => {
  it('lists the embedded gateway\'s ports on the host the client used, and links the documentation', async () => {
    const info = await serviceInfo({ MQTT_PORT: '18830', MQTT_WS_PORT: '18083' });
    expect(info).toEqual({
      service: 'smart-meter-billing-gateway',
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      apiVersion: 'v1',
      mqtt: { urls: ['mqtt://billing.example:18830', 'ws://billing.example:18083'], source: 'ports' },
      links: { home: '/', docs: '/docs', openapi: '/openapi.json', readyz: '/readyz' },
    });
    expect((await serviceInfo({ MQTT_WS_PORT: '0' }, '127.0.0.1:3000')).mqtt.urls).toEqual(['mqtt://127.0.0.1:1883']);
  });

  it('prefers MQTT_PUBLIC_URL (behind NAT), then the external broker', async () => {
    expect((await serviceInfo({ MQTT_PUBLIC_URL: 'mqtts://meters.example:8883, mqtt://meters.example:1883' })).mqtt).toEqual({
      urls: ['mqtts://meters.example:8883', 'mqtt://meters.example:1883'],
      source: 'MQTT_PUBLIC_URL',
    });
    expect((await serviceInfo({ MQTT_MODE: 'external', MQTT_URL: 'mqtt://mosquitto:1883' })).mqtt).toEqual({ urls: ['mqtt://mosquitto:1883'], source: 'MQTT_URL' });
  });
});
