#!/usr/bin/env node
// The `vmplane` command. A published package runs its built dist/. In the repository, where
// nothing need be built, it runs the TypeScript sources in this same process: tsx compiles them,
// and a resolve hook adds the private `vmplane-source` export condition so that the workspace
// packages (@vmplane/server, @vmplane/core, ...) resolve to their src/ too. Staying in one process
// (rather than re-spawning node with flags) keeps signals, the TTY and exit codes the user's own.
import { existsSync } from 'node:fs';
import { register } from 'node:module';

const built = new URL('../dist/main.js', import.meta.url);
let entry = built;
if (!existsSync(built)) {
  const conditions = `export async function resolve(specifier, context, next) {
    const conditions = context.conditions.includes('vmplane-source')
      ? context.conditions : [...context.conditions, 'vmplane-source'];
    return next(specifier, { ...context, conditions });
  }`;
  register(`data:text/javascript,${encodeURIComponent(conditions)}`);
  const { register: registerTsx } = await import('tsx/esm/api');
  registerTsx();
  entry = new URL('../src/main.ts', import.meta.url);
}
const { main } = await import(entry.href);
await main(process.argv.slice(2));
