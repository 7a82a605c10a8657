/** `npm run billing-api`: the REST API and the scheduled billing run, as their own process. */
import { runProcess } from './process.js';
import { startBillingApiService } from './wire-billing-api.js';

await runProcess('billing-api', startBillingApiService);
