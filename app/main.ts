/** `npm start`: broker, gateway and billing API in one process, on embedded defaults. */
import { startAllInOne } from './all-in-one.js';
import { runProcess } from './process.js';

await runProcess('smart-meter-billing', startAllInOne);
