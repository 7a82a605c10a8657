/** `npm start`: broker, gateway and billing API in one process, on embedded defaults. */
import { run } from './run.js';

await run('smart-meter-billing', { gateway: true, api: true });
