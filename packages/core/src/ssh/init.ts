import { type CallOptions, deadline } from '@vmplane/common';
import type { PackageManager } from '../images/catalogue.js';
import type { SshConnection } from './connect.js';
import { SshCommandError } from './errors.js';
import { quote, type RunOptions, type RunResult, runOnConnection } from './run.js';
import { shellQuote } from './shell.js';

/**
 * The OS init step of an install (`VM initialization > SSH initialization`): what cloud-init does
 * not do, run as separate commands so that each is logged with its output. It makes sure the
 * requested account exists (cloud-init's `ciuser` normally made it), sets its password (`chpasswd`,
 * the secret on stdin only), adds its authorized keys, sets the host name, and installs and
 * enables the QEMU guest agent with the OS's package manager. It changes nothing else: no package
 * mirror, time zone or firewall, unless a caller adds `extraCommands`.
 */

/** Runs one shell line in the guest: over SSH, or through the guest agent. */
export interface GuestShell {
  run(command: string, opts: RunOptions): Promise<RunResult>;
}

/** A GuestShell over an open SSH connection. */
export function sshShell(conn: SshConnection): GuestShell {
  return { run: (command, opts) => runOnConnection(conn, command, opts) };
}

export interface GuestInitPlan {
  /** Who vmplane is logged in as (cloud-init's user); commands go through `sudo -n` unless root. */
  loginUser: string;
  /** The account to set up; the login user when absent. */
  user?: string;
  /** A secret: set with chpasswd, on stdin. */
  password?: string;
  /** `authorized_keys` lines to make sure of for `user`. */
  authorizedKeys?: readonly string[];
  hostname?: string;
  packageManager: PackageManager;
  /** Install and enable qemu-guest-agent (default true). */
  installAgent?: boolean;
  /** Run after the rest, as they are, as root: for sites that want a mirror, a time zone, ... */
  extraCommands?: readonly string[];
}

export interface GuestInitOptions extends CallOptions {
  /** Progress: each command (`$ ...`) and its output lines, indented. */
  log?: (line: string) => void | Promise<void>;
}

/** The admin group sudo knows on the OS family. */
const ADMIN_GROUP: Record<PackageManager, string> = { apt: 'sudo', dnf: 'wheel' };

// Appends each key read on stdin to the user's authorized_keys unless it is there already, with
// the modes sshd insists on. The user's name is `$1`, never part of the script's text.
const AUTHORIZE_SCRIPT = [
  'set -e',
  'h=$(getent passwd "$1" | cut -d: -f6)',
  '[ -n "$h" ]',
  'install -d -m 700 "$h/.ssh"',
  'touch "$h/.ssh/authorized_keys"',
  'while IFS= read -r k; do [ -z "$k" ] || grep -qxF -- "$k" "$h/.ssh/authorized_keys" || printf "%s\\n" "$k" >> "$h/.ssh/authorized_keys"; done',
  'chmod 600 "$h/.ssh/authorized_keys"',
  'chown -R "$1:" "$h/.ssh"',
].join('\n');

export function isValidUserName(name: string): boolean {
  // useradd's own rule (shadow-utils' default NAME_REGEX), without the trailing `$` of machine accounts.
  return /^[a-z_][a-z0-9_-]{0,31}$/.test(name);
}

export function isValidHostname(name: string): boolean {
  return /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(
    name,
  );
}

/** The commands of a plan, without running them: what `initGuest` runs, in order. */
export interface InitStep {
  command: string;
  /** What the log shows of the command (the key script's text says nothing). */
  display: string;
  stdin?: string;
  what: string;
  /** A failure is logged and the next step runs. */
  optional?: boolean;
}

export function initCommands(plan: GuestInitPlan): InitStep[] {
  const user = plan.user ?? plan.loginUser;
  if (!isValidUserName(user)) {
    throw new SshCommandError({ message: `${JSON.stringify(user)} is not a user name useradd takes`, exitCode: -1 });
  }
  if (plan.hostname !== undefined && !isValidHostname(plan.hostname)) {
    throw new SshCommandError({ message: `${JSON.stringify(plan.hostname)} is not a host name`, exitCode: -1 });
  }
  const sudo = plan.loginUser === 'root' ? '' : 'sudo -n ';
  const q = shellQuote(user);
  const group = ADMIN_GROUP[plan.packageManager];
  const steps: InitStep[] = [];
  const add = (what: string, command: string, more: Partial<InitStep> = {}) =>
    steps.push({ what, command, display: command, ...more });
  // The image's first boot may still hold the package manager's lock.
  add('waiting for cloud-init to finish', 'cloud-init status --wait', { optional: true });
  if (user !== plan.loginUser) {
    add(`creating user ${user}`, `${sudo}useradd -m -s /bin/bash ${q}`, { optional: true });
    add(`adding ${user} to ${group}`, `${sudo}usermod -aG ${group} ${q}`);
  }
  if (plan.password !== undefined) {
    add(`setting the password of ${user}`, `${sudo}chpasswd`, { stdin: `${user}:${plan.password}\n` });
  }
  const keys = (plan.authorizedKeys ?? []).map((k) => k.trim()).filter(Boolean);
  if (keys.length > 0) {
    add(
      `authorizing ${keys.length} SSH key${keys.length === 1 ? '' : 's'} for ${user}`,
      `${sudo}sh -c ${shellQuote(AUTHORIZE_SCRIPT)} sh ${q}`,
      {
        display: `${sudo}sh -c '<append stdin to ~${user}/.ssh/authorized_keys>' sh ${q}`,
        stdin: `${keys.join('\n')}\n`,
      },
    );
  }
  if (plan.hostname !== undefined) {
    add(`setting the host name to ${plan.hostname}`, `${sudo}hostnamectl set-hostname ${shellQuote(plan.hostname)}`);
  }
  if (plan.installAgent ?? true) {
    if (plan.packageManager === 'apt') {
      const apt = `${sudo}env DEBIAN_FRONTEND=noninteractive apt-get -q`;
      add('reading the package lists', `${apt} update`);
      add('installing qemu-guest-agent', `${apt} -y install qemu-guest-agent`);
    } else {
      add('installing qemu-guest-agent', `${sudo}dnf -q -y install qemu-guest-agent`);
    }
    add('enabling qemu-guest-agent', `${sudo}systemctl enable --now qemu-guest-agent`);
  }
  for (const extra of plan.extraCommands ?? []) add(`running ${quote(extra)}`, `${sudo}sh -c ${shellQuote(extra)}`);
  return steps;
}

/**
 * Runs the plan's commands in order and stops at the first that fails (an SshCommandError with
 * the output's tail); `optional` ones (waiting for cloud-init, a user that exists already) only
 * log their failure. The password travels on stdin and appears in no log line or error.
 */
export async function initGuest(shell: GuestShell, plan: GuestInitPlan, opts: GuestInitOptions = {}): Promise<void> {
  const log = opts.log ?? (() => {});
  const steps = initCommands(plan);
  // `timeout` bounds the whole init, not each command.
  const d = deadline(opts);
  try {
    for (const step of steps) {
      await log(step.what);
      await log(`  $ ${step.display}`);
      const result = await shell.run(step.command, {
        ...(step.stdin !== undefined ? { stdin: step.stdin } : {}),
        signal: d.signal,
        onLine: (line) => log(`    ${line}`),
      });
      if (result.exitCode === 0) continue;
      if (step.optional) {
        await log(`  (exit ${result.exitCode}; going on)`);
        continue;
      }
      throw new SshCommandError({
        message: `${step.what} failed: ${quote(step.command)} exited with ${result.exitCode}`,
        exitCode: result.exitCode,
        signal: result.signal,
        tail: result.tail,
      });
    }
  } catch (error) {
    throw d.reason() ?? error;
  } finally {
    d.dispose();
  }
}
