/** The CLI as a library: the pieces its commands are made of, for embedding and for tests. */
export { Client, segment } from './client.js';
export * from './config.js';
export * from './errors.js';
export { run } from './main.js';
export type { Io } from './program.js';
export {
  createStageRenderer,
  formatElapsed,
  PlainRenderer,
  type StageEvent,
  type StageRenderer,
  TtyRenderer,
} from './render/stages.js';
export * from './sse.js';
