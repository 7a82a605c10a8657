/** Transitional: authentication lives in http/auth.ts (this path is still imported by the tariffs routes). */
export * from './http/auth.js';
