export * from './backoff.js';
export * from './call-options.js';
export * from './errors.js';
export * from './http.js';
export * from './logger.js';
export * from './path.js';
