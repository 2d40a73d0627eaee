/**
 * The wording of journal messages, as go-pve-qemu's streams read: `[*] <what starts>`,
 * `[+] <what was done> (0.02s)`, `[-] <stage>: <why>`, and a command's output as lines indented by two spaces. Its
 * clients and users grep for these prefixes, so they are kept exactly.
 */

export function startMessage(text: string): string {
  return `[*] ${text}`;
}

export function successMessage(text: string, seconds: number): string {
  return `[+] ${text} (${seconds.toFixed(2)}s)`;
}

export function errorMessage(stage: string, why: string): string {
  return `[-] ${stage}: ${why}`;
}

/** A line of streamed output, indented under its stage; CR and the line's own end removed. */
export function outputLine(line: string): string {
  return `  ${line.replace(/\r?\n$/, '').replace(/\r/g, '')}`;
}

/** Seconds, rounded as the messages show them, so the event's `elapsed` matches its text. */
export function elapsedSeconds(startedAt: number, now: number): number {
  return Math.round((now - startedAt) / 10) / 100;
}
