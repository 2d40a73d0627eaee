/**
 * `npm start`: a container from the locally built busybox image, a command run in it, a file
 * pushed and pulled, the lifecycle events the daemon sent meanwhile, and the container deleted.
 */
import { randomBytes } from 'node:crypto';
import { LxdClient, type LxdEvent } from '@vmplane/lxd';

const alias = process.env.VMPLANE_IMAGE_ALIAS ?? 'vmplane-busybox';
const started = performance.now();
const step = (text: string) =>
  console.log(`[${((performance.now() - started) / 1000).toFixed(2).padStart(6)} s] ${text}`);

const lxd = await LxdClient.connect();
const server = await lxd.server.get();
step(
  `connected to LXD ${server.environment.server_version} (${server.environment.storage} storage, ${server.api_extensions.length} API extensions)`,
);

const name = `vmplane-demo-${randomBytes(3).toString('hex')}`;
const events = lxd.events({ types: ['lifecycle'] });
await events.ready();
const seen: LxdEvent[] = [];
const collecting = (async () => {
  for await (const event of events)
    if (event.type === 'lifecycle' && event.metadata.source.endsWith(`/${name}`)) seen.push(event);
})();

try {
  await (await lxd.instances.createFromImage(name, { alias }, { description: 'vmplane demo' })).wait();
  step(`created container ${name} from image ${alias}`);
  await lxd.instances.start(name);
  const state = await lxd.instances.state(name);
  step(`started: ${state.status}, pid ${state.pid}`);

  const run = await lxd.instances.exec(name, {
    command: ['sh', '-c', 'echo "hello from $(hostname), kernel $(uname -r)"; exit 0'],
  });
  step(`exec -> exit ${run.exitCode}: ${run.stdout.toString().trim()}`);

  const payload = randomBytes(64 * 1024);
  await lxd.instances.files.push(name, '/root/payload.bin', payload, { mode: 0o640 });
  const back = await lxd.instances.files.pull(name, '/root/payload.bin');
  const same = back.type === 'file' && back.content.equals(payload);
  step(`pushed and pulled 64 KiB: ${same ? 'identical' : 'DIFFERENT'}, mode ${back.mode.toString(8)}`);
  if (!same) process.exitCode = 1;

  await lxd.instances.stop(name);
  step('stopped cleanly');
} finally {
  await lxd.instances.delete(name, { force: true }).catch((e: unknown) => console.error('delete failed:', e));
  step(`deleted ${name}`);
  // Give the last lifecycle events a moment to arrive, then close the stream.
  await new Promise((r) => setTimeout(r, 300));
  events.close();
  await collecting;
  lxd.close();
}

console.log('\nLifecycle events seen:');
for (const e of seen) if (e.type === 'lifecycle') console.log(`  ${e.timestamp}  ${e.metadata.action}`);
