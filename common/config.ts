/**
 * Configuration from the environment (contract section 1, plus the project's own variables), validated
 * once at start-up by one zod schema. An invalid configuration stops start-up with ONE message that lists
 * every bad variable.
 */
import { IANAZone } from 'luxon';
import cron from 'node-cron';
import { z } from 'zod';

const port = (fallback: number) =>
  z.coerce.number({ error: 'must be an integer' }).int('must be an integer').min(0, 'must be 0..65535').max(65535, 'must be 0..65535').default(fallback);
const positiveInt = (fallback: number) => z.coerce.number({ error: 'must be an integer' }).int('must be an integer').positive('must be > 0').default(fallback);
const flag = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no', ''])
  .default('')
  .transform((v) => v === '1' || v === 'true' || v === 'yes');

export const configSchema = z.object({
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  MQTT_PORT: port(1883),
  MQTT_WS_PORT: port(8083),
  MQTT_HOST: z.string().min(1).default('0.0.0.0'),
  API_PORT: port(3000),
  API_HOST: z.string().min(1).default('0.0.0.0'),
  BILLING_ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  /** Bearer token that may read the API's GET /metrics and nothing else (admin and reader tokens may too). */
  METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Where the embedded PostgreSQL keeps its cluster when DATABASE_URL is unset. */
  DATA_DIR: z.string().min(1).default('./data'),
  /** auto: hypertable when TimescaleDB can be created, plain table otherwise; timescaledb: required; plain: never. */
  READINGS_STORAGE: z.enum(['auto', 'timescaledb', 'plain']).default('auto'),
  /** Same as READINGS_STORAGE=timescaledb (the CI switch). */
  REQUIRE_TIMESCALEDB: flag,
  MAX_PAYLOAD_BYTES: positiveInt(256 * 1024),
  /** Readings starting more than this many seconds after the gateway's clock are quarantined as `future`. */
  /**
   * A reading whose intervalStart is earlier than its meter's creation minus this many days is quarantined as
   * `before_service_window` (a reset clock reporting 1970), and billing never starts earlier than that. Every
   * process writes it into the database at start-up (the ingest function reads it there), so all gateway and
   * API processes of one database must agree on it.
   */
  READING_BACKFILL_DAYS: z.coerce.number({ error: 'must be an integer' }).int('must be an integer').min(0, 'must be 0..36500').max(36500, 'must be 0..36500').default(1096),
  FUTURE_TOLERANCE_SECONDS: z.coerce.number({ error: 'must be an integer' }).int('must be an integer').min(0).default(300),
  INGEST_MAX_BATCH_ROWS: positiveInt(5000),
  INGEST_MAX_INFLIGHT_BATCHES: positiveInt(2),
  /** Above this many readings waiting for commit, new MQTT connections are refused. */
  INGEST_HIGH_WATER_READINGS: positiveInt(200_000),
  MQTT_MAX_CONNECTIONS: positiveInt(100_000),
  /** scrypt cost (N) for device secrets; a power of two. */
  DEVICE_SECRET_SCRYPT_N: z.coerce
    .number({ error: 'must be an integer' })
    .int('must be an integer')
    .refine((n) => n >= 1024 && (n & (n - 1)) === 0, 'must be a power of two >= 1024')
    .default(16384),
  PG_POOL_MAX: positiveInt(10),
  /** Schedule of the billing run (node-cron syntax, 5 or 6 fields), or `off`. */
  BILLING_CRON: z
    .string()
    .refine((v) => v === 'off' || cron.validate(v), 'must be a cron expression (e.g. "15 0 * * *") or off')
    .default('15 0 * * *'),
  /** IANA zone in which BILLING_CRON is read. */
  BILLING_CRON_TZ: z.string().refine((v) => IANAZone.isValidZone(v), 'must be an IANA time zone such as UTC or Europe/London').default('UTC'),
  /** Days after a cycle's end before a run closes it (late data still lands on the bill meanwhile). */
  BILLING_GRACE_DAYS: z.coerce.number({ error: 'must be an integer' }).int('must be an integer').min(0, 'must be >= 0').max(365, 'must be <= 365').default(3),
  /** auto: running charges from memory fed by this process's gateway (a full re-read when there is none); database: always re-read. */
  RUNNING_CHARGES_SOURCE: z.enum(['auto', 'database']).default('auto'),
  /** Meters whose open-cycle intervals the API keeps in memory for running charges (~75 KB per 15-minute meter). */
  RUNNING_CHARGES_CACHE_METERS: positiveInt(10_000),

  /** A gateway process without the API serves GET /healthz, /readyz and /metrics on this port (unset: none). */
  GATEWAY_HTTP_PORT: z.coerce.number({ error: 'must be an integer' }).int('must be an integer').min(0, 'must be 0..65535').max(65535, 'must be 0..65535').optional(),

  // --- Transport security. Both files set: MQTT over TLS on MQTT_TLS_PORT, MQTT over secure
  // WebSocket on MQTT_WS_PORT, and the API over HTTPS. Neither set: plaintext (a front proxy terminates TLS).
  TLS_CERT_FILE: z.string().min(1).optional(),
  TLS_KEY_FILE: z.string().min(1).optional(),
  /** MQTT over TLS (used only when TLS_CERT_FILE and TLS_KEY_FILE are set). */
  MQTT_TLS_PORT: port(8883),

  // --- Limits. Each refusal is counted in mqtt_refused_total{reason} / http_rate_limited_total.
  /** Connection attempts allowed per device id (or per remote address before authentication) per minute. */
  MQTT_CONNECT_RATE_PER_MINUTE: positiveInt(30),
  /** Sustained PUBLISH rate allowed per device (messages per second); bursts up to MQTT_PUBLISH_BURST. */
  MQTT_PUBLISH_RATE_PER_SECOND: positiveInt(50),
  MQTT_PUBLISH_BURST: positiveInt(2000),
  /** API requests per minute per token (per address when unauthenticated); 0 would be meaningless, so >= 1. */
  API_RATE_LIMIT_PER_MINUTE: positiveInt(6000),

  // --- Scale-out. external: the gateway subscribes to an existing broker cluster instead of
  // embedding Aedes; device authentication is then the broker's (see gateway/README.md).
  MQTT_MODE: z.enum(['embedded', 'external']).default('embedded'),
  /** The external broker, e.g. mqtt://emqx:1883 or mqtts://broker.example:8883 (MQTT_MODE=external). */
  MQTT_URL: z.string().regex(/^(mqtts?|wss?|tcp|ssl):\/\//, 'must be an mqtt://, mqtts://, ws:// or wss:// URL').optional(),
  MQTT_USERNAME: z.string().min(1).optional(),
  MQTT_PASSWORD: z.string().min(1).optional(),
  /** Stable client id of this gateway instance (its persistent session); default gateway-<hostname>. */
  MQTT_CLIENT_ID: z.string().min(1).max(128).optional(),
  /** Shared-subscription group: every instance in the group shares one stream. */
  MQTT_SHARE_GROUP: z.string().regex(/^[^/#+]+$/, 'must not contain / # or +').default('billing-gateway'),
  /** Subscriber connections per gateway instance (client ids <MQTT_CLIENT_ID>, <MQTT_CLIENT_ID>-2 .. -n, same group), all feeding one group commit; up to 100 unacknowledged messages in flight each. */
  MQTT_SUBSCRIBER_CONNECTIONS: z.coerce.number({ error: 'must be an integer' }).int('must be an integer').min(1, 'must be 1..64').max(64, 'must be 1..64').default(1),
  /** CA bundle for an mqtts:// broker with a private CA. */
  MQTT_CA_FILE: z.string().min(1).optional(),
});

export type Config = z.output<typeof configSchema>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    // One line (start-up failures are one clear line on stderr), listing every bad variable.
    super(`invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

/** Validates the environment; throws one ConfigError listing every bad variable. Empty strings count as unset. */
export function loadConfig(env: NodeJS.ProcessEnv | Record<string, string | undefined> = process.env): Config {
  const input: Record<string, string> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') input[key] = value;
  }
  const result = configSchema
    .superRefine((c, ctx) => {
      if (Boolean(c.TLS_CERT_FILE) !== Boolean(c.TLS_KEY_FILE))
        ctx.addIssue({ code: 'custom', path: [c.TLS_CERT_FILE ? 'TLS_KEY_FILE' : 'TLS_CERT_FILE'], message: 'TLS_CERT_FILE and TLS_KEY_FILE must be set together' });
      if (c.MQTT_MODE === 'external' && !c.MQTT_URL)
        ctx.addIssue({ code: 'custom', path: ['MQTT_URL'], message: 'required when MQTT_MODE=external' });
    })
    .safeParse(input);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => {
        const name = String(issue.path[0] ?? '?');
        return `${name}=${JSON.stringify(input[name] ?? '')}: ${issue.message}`;
      }),
    );
  }
  return result.data;
}

/** Whether the configuration demands TimescaleDB (a missing extension is then an error, not a narrowing). */
export function timescaleRequired(config: Pick<Config, 'READINGS_STORAGE' | 'REQUIRE_TIMESCALEDB'>): boolean {
  return config.READINGS_STORAGE === 'timescaledb' || config.REQUIRE_TIMESCALEDB;
}
