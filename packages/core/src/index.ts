export * from './engine/bus.js';
export * from './engine/messages.js';
export * from './engine/runner.js';
export * from './engine/stage.js';
export * from './errors.js';
export * from './model/instance.js';
export * from './providers/provider.js';
export * from './store/contract.js';
