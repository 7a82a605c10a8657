/** Transitional: the bootstrap admin token lives in provisioning/admin-token.ts (this path is still imported by common/stack.ts). */
export * from './provisioning/admin-token.js';
