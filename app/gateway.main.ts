/** `npm run gateway`: the MQTT gateway (embedded broker or external subscriber) as its own process; loads no API. */
import { runProcess } from './process.js';
import { startGatewayService } from './wire-gateway.js';

await runProcess('gateway', startGatewayService);
