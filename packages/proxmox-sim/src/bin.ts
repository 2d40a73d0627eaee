#!/usr/bin/env node
import { parseCli, USAGE } from './cli.js';
import { startSimulator } from './server.js';

const cli = parseCli(process.argv.slice(2));
if (cli.kind === 'help') {
  process.stdout.write(USAGE);
  process.exit(0);
}
if (cli.kind === 'error') {
  process.stderr.write(`vmplane-proxmox-sim: ${cli.message}\n${USAGE}`);
  process.exit(2);
}

let sim: Awaited<ReturnType<typeof startSimulator>>;
try {
  sim = await startSimulator(cli.options);
} catch (e) {
  process.stderr.write(`vmplane-proxmox-sim: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}

const out = [
  `Proxmox VE simulator listening on ${sim.url}`,
  `API:         ${sim.apiUrl}`,
  `user:        ${sim.credentials.username}`,
  `password:    ${sim.credentials.password}`,
  `token:       ${sim.credentials.tokenId}=${sim.credentials.tokenSecret}`,
  `header:      Authorization: ${sim.credentials.tokenHeader}`,
  ...(sim.fingerprint ? [`fingerprint: ${sim.fingerprint}`] : []),
  `schema:      PVE ${sim.schema.pveVersion}, ${sim.schema.operationCount} operations; modelled:`,
  ...(cli.quiet ? [`  (${sim.modelledPaths().length} operations)`] : sim.modelledPaths().map((p) => `  ${p}`)),
  'every other operation answers data shaped by its schema',
];
process.stdout.write(`${out.join('\n')}\n`);

const stop = () => {
  sim.close().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
