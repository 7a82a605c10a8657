/** Transitional: the error helpers live in http/errors.ts (this path is still imported by the tariffs and charges files). */
export * from './http/errors.js';
