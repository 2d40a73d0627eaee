/**
 * The wording of journal messages, as go-pve-qemu's streams read: `[*] start <stage>`,
 * `[+] <stage> (0.02s)`, `[-] <stage>: <why>`, and a command's output as indented lines. Its
 * clients and users grep for these prefixes, so they are kept exactly.
 */

export function startMessage(stage: string): string {
  return `[*] start ${stage}`;
}

export function successMessage(stage: string, seconds: number, note?: string): string {
  return `[+] ${stage}${note ? ` ${note}` : ''} (${seconds.toFixed(2)}s)`;
}

export function errorMessage(stage: string, why: string): string {
  return `[-] ${stage}: ${why}`;
}

/** A line of streamed output, indented under its stage; CR and the line's own end removed. */
export function outputLine(line: string): string {
  return `    ${line.replace(/\r?\n$/, '').replace(/\r/g, '')}`;
}

/** Seconds, rounded as the messages show them, so the event's `elapsed` matches its text. */
export function elapsedSeconds(startedAt: number, now: number): number {
  return Math.round((now - startedAt) / 10) / 100;
}
