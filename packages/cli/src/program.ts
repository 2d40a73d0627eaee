/**
 * The commands, declared with commander. Each action resolves to an exit code; every failure is
 * thrown and rendered once, by main.ts. Modules that pull in the server or the store are imported
 * inside their actions, so that `vmplane --help` and the HTTP commands start quickly.
 */
import { Command, Option } from 'commander';
import { Client } from './client.js';
import { resolveClientConfig } from './config.js';
import { ExitCode } from './errors.js';

export interface Io {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
  signals: NodeJS.Process;
}

/** Commander collects a repeated option into an array. */
const collect = (value: string, previous: string[] = []) => [...previous, value];

/**
 * The program. Commander copies a parent's output and exit settings into each subcommand when it is
 * created, so they are set first: its own messages then go to `io`, and it throws instead of
 * exiting, leaving the exit code to main.ts.
 */
export function buildProgram(io: Io, setExit: (code: number) => void): Command {
  const client = async () => {
    const config = await resolveClientConfig(io.env);
    return new Client(config.url, config.token);
  };
  const program = new Command('vmplane')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .description("One control plane for LXD and Proxmox VE: go-pve-qemu's provisioning API and hypeman's instance API.")
    .version('0.1.0', '-V, --version')
    // The root's options only before the command: `install --version 12` is the OS version.
    .enablePositionalOptions()
    .showHelpAfterError('(add --help for usage)')
    .addHelpText(
      'after',
      '\nThe commands other than serve and token talk to the server at VMPLANE_URL with VMPLANE_TOKEN,\n' +
        'or use the client config that `vmplane serve` writes (~/.config/vmplane/config.json).',
    );

  program
    .command('serve')
    .description('run the control plane server (binds 127.0.0.1 unless --host says otherwise)')
    .requiredOption('--data-dir <dir>', 'where the server keeps its state (SQLite, keys)')
    .option('--port <port>', 'TCP port; 0 picks a free one', '4780')
    .option('--config <file>', 'YAML or JSON config: providers, defaultProvider, gopveqemu settings')
    .option('--host <addr>', 'address to bind', '127.0.0.1')
    .option('--no-client-config', 'do not write ~/.config/vmplane/config.json')
    .action(async (flags) => {
      const { serve } = await import('./commands/serve.js');
      setExit(await serve(flags, { ...io, ppid: () => process.ppid }));
    });

  const token = program.command('token').description('manage API tokens (reads the data directory directly)');
  token
    .command('create')
    .description('create a token and print it, alone, on stdout (it is shown only once)')
    .requiredOption('--data-dir <dir>', "the server's data directory")
    .addOption(
      new Option('--scope <scope>', 'what it may do').choices(['read', 'write', 'admin']).makeOptionMandatory(),
    )
    .option('--name <name>', 'a name to revoke it by')
    .action(async (flags) => {
      const { createToken } = await import('./commands/token.js');
      io.stdout.write(`${await createToken(flags)}\n`);
    });
  token
    .command('list')
    .description('list tokens (never their secrets)')
    .requiredOption('--data-dir <dir>', "the server's data directory")
    .option('--json', 'print JSON')
    .action(async (flags: { dataDir: string; json?: boolean }) => {
      const { listTokens, tokenTable } = await import('./commands/token.js');
      const records = await listTokens(flags);
      io.stdout.write(flags.json ? `${JSON.stringify(records, null, 2)}\n` : tokenTable(records));
    });
  token
    .command('revoke')
    .description('revoke a token by its id or name; the server refuses it at once')
    .argument('<id|name>')
    .requiredOption('--data-dir <dir>', "the server's data directory")
    .action(async (idOrName: string, flags: { dataDir: string }) => {
      const { revokeToken } = await import('./commands/token.js');
      await revokeToken(flags, idOrName);
      io.stderr.write(`revoked ${idOrName}\n`);
    });

  program
    .command('install')
    .description("provision a guest through go-pve-qemu's POST /api/vm/install, showing each stage live")
    .option('--os <os>', 'debian, ubuntu, rockylinux (on LXD: the image is <os>/<version>, or an alias)')
    .option('--version <version>', 'the OS version, e.g. 12')
    .option('--name <name>', 'guest name')
    .option('--id <n>', 'VMID (default: allocated)')
    .option('--node <node>', 'Proxmox node to migrate to after configuration')
    .option('--cpu <n>', 'vCPUs')
    .option('--ram <mb>', 'memory in MiB')
    .option('--disk <size>', 'disk size, e.g. 20G')
    .option('--user <user>', 'login user')
    .option('--passwd-stdin', "read the user's password from stdin")
    .option('--ask-passwd', 'prompt for the password (no echo)')
    .option('--pubkey <file>', 'an SSH public key file to authorise')
    .option('--provider <name>', "provider to use (default: the server's defaultProvider)")
    .option('--plain', 'plain lines even in a terminal')
    .action(async (flags) => {
      const { installBody, followInstall } = await import('./commands/install.js');
      const { createStageRenderer } = await import('./render/stages.js');
      const { readSecretFromStdin, promptSecret } = await import('./prompt.js');
      const body = await installBody(flags);
      if (flags.passwdStdin) body.passwd = await readSecretFromStdin(io.stdin);
      else if (flags.askPasswd) body.passwd = await promptSecret('password: ', io.stdin, io.stderr);
      const c = await client();
      const renderer = createStageRenderer(io.stdout, { plain: flags.plain === true, notes: io.stderr });
      const result = await followInstall({ client: c, body, renderer, signals: io.signals });
      setExit(result.exitCode);
    });

  program
    .command('list')
    .alias('ls')
    .description('list instances (GET /instances)')
    .option('--json', 'print the instances as JSON')
    .option('--state <state>', 'only instances in this state (Running, Stopped, ...)')
    .action(async (flags: { json?: boolean; state?: string }) => {
      const { listInstances, instanceTable } = await import('./commands/instances.js');
      const instances = await listInstances(await client(), flags.state === undefined ? {} : { state: flags.state });
      io.stdout.write(flags.json ? `${JSON.stringify(instances, null, 2)}\n` : instanceTable(instances));
    });

  program
    .command('exec')
    .description('run a command in an instance (hypeman exec WebSocket); exits with its exit code')
    .argument('<id>', 'instance id or name')
    .argument('[command...]', 'the command, after --')
    .option('-t, --tty', 'allocate a terminal (raw mode, resized with the window)')
    .option('-i, --interactive', 'forward stdin even when it is a terminal')
    .option('-e, --env <KEY=VALUE>', 'environment variable (repeatable)', collect, [])
    .option('--cwd <dir>', 'working directory')
    .option('--timeout <seconds>', 'kill the command after this long')
    .action(async (id: string, command: string[], flags) => {
      const { execInInstance } = await import('./commands/exec.js');
      setExit(await execInInstance(await client(), id, command, flags, io));
    });

  program
    .command('logs')
    .description("print an instance's log (GET /instances/{id}/logs)")
    .argument('<id>', 'instance id or name')
    .option('-f, --follow', 'keep printing new lines')
    .option('--tail <n>', 'the last n lines')
    .option('--source <source>', 'app (the console), vmm or hypeman (its operations)')
    .action(async (id: string, flags) => {
      const { streamLogs } = await import('./commands/instances.js');
      await streamLogs(await client(), id, flags, io.stdout);
    });

  program
    .command('rm')
    .description('delete an instance (DELETE /instances/{id})')
    .argument('<id>', 'instance id or name')
    .action(async (id: string) => {
      const { removeInstance } = await import('./commands/instances.js');
      await removeInstance(await client(), id);
      io.stderr.write(`deleted ${id}\n`);
    });

  return program;
}

export { ExitCode };
