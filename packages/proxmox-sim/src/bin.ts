#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { startSimulator } from './server.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '3' },
    guests: { type: 'string', default: '50' },
    port: { type: 'string', default: '8006' },
    host: { type: 'string', default: '127.0.0.1' },
    tls: { type: 'boolean', default: false },
    password: { type: 'string' },
    'token-secret': { type: 'string' },
    latency: { type: 'string', default: '0' },
    'task-duration': { type: 'string', default: '1000' },
    schema: { type: 'string' },
    quiet: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (values.help) {
  process.stdout.write(
    'usage: vmplane-proxmox-sim [--nodes 3] [--guests 50] [--port 8006] [--host 127.0.0.1] [--tls]\n' +
      '                           [--password PW] [--token-secret S] [--latency MS] [--task-duration MS] [--schema PATH] [--quiet]\n',
  );
  process.exit(0);
}

const sim = await startSimulator({
  nodes: Number(values.nodes),
  guests: Number(values.guests),
  port: Number(values.port),
  host: values.host,
  tls: values.tls,
  latency: Number(values.latency),
  taskDuration: Number(values['task-duration']),
  ...(values.password ? { rootPassword: values.password } : {}),
  ...(values['token-secret'] ? { tokenSecret: values['token-secret'] } : {}),
  ...(values.schema ? { schemaPath: values.schema } : {}),
});

const out = [
  `Proxmox VE simulator listening on ${sim.url}`,
  `API:         ${sim.apiUrl}`,
  `user:        ${sim.credentials.username}`,
  `password:    ${sim.credentials.password}`,
  `token:       ${sim.credentials.tokenId}=${sim.credentials.tokenSecret}`,
  `header:      Authorization: ${sim.credentials.tokenHeader}`,
  ...(sim.fingerprint ? [`fingerprint: ${sim.fingerprint}`] : []),
  `schema:      ${sim.schema.operationCount} operations; modelled:`,
  ...(values.quiet ? [`  (${sim.modelledPaths().length} operations)`] : sim.modelledPaths().map((p) => `  ${p}`)),
  'every other operation answers data shaped by its schema',
];
process.stdout.write(`${out.join('\n')}\n`);

const stop = () => {
  sim.close().then(() => process.exit(0));
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
