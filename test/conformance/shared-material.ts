/** The shared reference material's folders (see test/support/shared-material.ts). */
export { sharedDir, sharedFolder } from '../support/shared-material.js';
