/**
 * A validation failure in two spellings: `full`, PVE's message as the caller gets it (with the
 * offending value quoted), and `safe`, the same with every caller-supplied value replaced, for
 * what the simulator stores (`sim.violations`), where passwords and other secrets must not land.
 */
export class Problem {
  constructor(
    readonly full: string,
    readonly safe: string,
  ) {}

  /** `prefix` + this message, e.g. `net0: ` before a property string's error. */
  prefixed(prefix: string): Problem {
    return new Problem(`${prefix}${this.full}`, `${prefix}${this.safe}`);
  }
}

/** Quotes a caller-supplied value inside a message. */
export type Show = (value: string) => string;

export const REDACTED = '***';

/** A message with no caller values (a string), or one built with `show` around each caller value. */
export function problem(text: string | ((show: Show) => string)): Problem {
  if (typeof text === 'string') return new Problem(text, text);
  return new Problem(
    text((v) => v),
    text(() => REDACTED),
  );
}

/** Joins problems line by line, as PVE lists the errors of a property string. */
export function joinProblems(head: string, parts: Problem[]): Problem {
  return new Problem([head, ...parts.map((p) => p.full)].join('\n'), [head, ...parts.map((p) => p.safe)].join('\n'));
}

/** A format's verdict on a value: nothing when it is valid. */
export type FormatCheck = (value: string) => Problem | undefined;
