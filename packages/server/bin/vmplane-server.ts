/**
 * `node --conditions=vmplane-source --import tsx packages/server/bin/vmplane-server.ts --data-dir D --port P [--config F] [--host H]`:
 * startServer in a process of its own (tests kill it with SIGKILL mid-install and start it again).
 */
import { startServer } from '../src/index.js';

const args = process.argv.slice(2);
const flag = (name: string): string | undefined => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const dataDir = flag('data-dir');
if (!dataDir) {
  process.stderr.write('--data-dir is required\n');
  process.exit(2);
}
const opts: Parameters<typeof startServer>[0] = {
  dataDir,
  port: Number(flag('port') ?? 0),
  host: flag('host') ?? '127.0.0.1',
};
const config = flag('config');
if (config) opts.configPath = config;
await startServer(opts);
