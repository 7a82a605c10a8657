/** Transitional: the shared schemas live in http/schemas.ts (this path is still imported by the tariffs routes). */
export * from './http/schemas.js';
