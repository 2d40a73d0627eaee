import { InvalidArgumentError } from '@vmplane/common';

/** LXD instance names are hostnames: letters, digits and '-', not starting with a digit or '-'. */
const INSTANCE_NAME = /^[a-zA-Z][a-zA-Z0-9-]{0,62}$/;

export function checkInstanceName(name: unknown, argument = 'name'): string {
  if (typeof name !== 'string' || !INSTANCE_NAME.test(name) || name.endsWith('-')) {
    throw new InvalidArgumentError({
      message: `Invalid instance name ${JSON.stringify(name)}: use 1-63 letters, digits and '-', starting with a letter and not ending with '-'`,
      argument,
      backend: 'lxd',
    });
  }
  return name;
}

/** Names of snapshots, profiles, networks, pools, volumes, aliases: non-empty, no '/', no control characters. */
export function checkObjectName(name: unknown, argument: string): string {
  if (
    typeof name !== 'string' ||
    name === '' ||
    name.includes('/') ||
    hasControlCharacter(name) ||
    name === '.' ||
    name === '..'
  ) {
    throw new InvalidArgumentError({
      message: `Invalid ${argument} ${JSON.stringify(name)}`,
      argument,
      backend: 'lxd',
    });
  }
  return name;
}

/** A path inside an instance: absolute, no NUL, and no '..' segment (which would escape where the caller meant). */
export function checkInstancePath(path: unknown, argument = 'path'): string {
  if (typeof path !== 'string' || !path.startsWith('/') || path.includes('\0') || path.split('/').includes('..')) {
    throw new InvalidArgumentError({
      message: `Invalid path ${JSON.stringify(path)}: it must be absolute and contain no '..' segment`,
      argument,
      backend: 'lxd',
    });
  }
  return path;
}

function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) < 0x20) return true;
  return false;
}
