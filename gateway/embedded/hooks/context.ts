/**
 * What the Aedes hooks of the embedded gateway share: the ingestion pipeline, the device authenticator,
 * the connection limits and the gateway's state. Each hook is one named step, as aedes names its handlers:
 * pre-connect -> authenticate -> authorize-subscribe | authorize-publish.
 */
import type { Client } from 'aedes';
import type { Logger } from '../../../common/logger.js';
import type { Metrics } from '../../../common/metrics.js';
import type { IngestionPipeline } from '../../ingestion/pipeline.js';
import type { Device } from '../../topics.js';
import type { ConnectionLimits } from '../connection-limits.js';
import type { DeviceAuthenticator } from '../device-auth.js';

/** An Aedes client as the hooks annotate it. */
export type DeviceClient = Client & {
  device?: Device;
  /** the remote address key charged in preConnect, until authentication settles it */
  limitedAddress?: string | null;
  /** the CONNECT had an empty client id, so the broker assigned a fresh one */
  serverAssignedId?: boolean;
  /** accepted publishes of this connection whose callback (and so PUBACK) is still to come */
  publishesInFlight?: number;
  /** called once publishesInFlight is back to 0 */
  whenIdle?: (() => void)[];
};

export interface HookContext {
  log: Logger;
  metrics?: Metrics;
  pipeline: IngestionPipeline;
  auth: DeviceAuthenticator;
  limits: ConnectionLimits;
  maxConnections: number;
  highWaterReadings: number;
  /** false once close() began: new connections are refused */
  readonly accepting: boolean;
  /** authenticated connections now */
  readonly connected: number;
}
