/** `npm run gateway`: the embedded MQTT broker and ingestion, as its own process. */
import { run } from '../common/run.js';

await run('gateway', { gateway: true, api: false });
