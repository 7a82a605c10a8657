/** `npm run billing-api`: the REST API, as its own process. */
import { run } from '../common/run.js';

await run('billing-api', { gateway: false, api: true });
