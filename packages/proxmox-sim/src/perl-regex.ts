/**
 * Translation of the Perl regular expressions in PVE's schema (`pattern`) into JavaScript ones.
 *
 * PVE writes patterns as Perl `qr//` objects, which its apidoc stringifies with their flags, e.g.
 * `(?^i:[a-z0-9_][a-z0-9_\-\+\.]*)`. JavaScript (Node 20) has no inline flag groups, no atomic
 * groups or possessive quantifiers, no `\A`/`\z`/`\h`, no POSIX classes and no `\Q…\E`, and reads
 * `{,n}` as text. Each is rewritten into an equivalent: case-insensitive groups by spelling out both
 * cases, atomic groups by the lookahead-and-backreference idiom, and so on. What cannot be
 * expressed throws an UnsupportedPatternError.
 */

export class UnsupportedPatternError extends Error {}

const POSIX_CLASSES: Record<string, string> = {
  alpha: 'a-zA-Z',
  digit: '0-9',
  alnum: 'a-zA-Z0-9',
  upper: 'A-Z',
  lower: 'a-z',
  space: '\\s',
  blank: ' \\t',
  punct: '!-\\/:-@\\[-`{-~',
  xdigit: '0-9A-Fa-f',
  word: '\\w',
  cntrl: '\\x00-\\x1f\\x7f',
  print: '\\x20-\\x7e',
  graph: '\\x21-\\x7e',
};

// Perl's \h and \v (horizontal and vertical white space), as class contents.
const HSPACE = '\\t\\x20\\xa0\\u1680\\u180e\\u2000-\\u200a\\u202f\\u205f\\u3000';
const VSPACE = '\\n\\x0b\\f\\r\\x85\\u2028\\u2029';

const escapeLiteral = (s: string): string => s.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');

interface Flags {
  i: boolean;
  s: boolean;
}

/** Both cases of a letter as a class, e.g. `[aA]`; other characters unchanged. */
function caseless(ch: string, flags: Flags): string {
  if (!flags.i) return ch;
  const lo = ch.toLowerCase();
  const up = ch.toUpperCase();
  return lo === up ? ch : `[${lo}${up}]`;
}

class Translator {
  private pos = 0;
  private atomic = 0;
  private backrefs = false;

  constructor(private readonly src: string) {}

  translate(): string {
    const out = this.alternation({ i: false, s: false });
    if (this.pos < this.src.length) throw new UnsupportedPatternError(`unbalanced ')' at ${this.pos}`);
    // The groups that emulate atomicity capture, which would shift numbered back-references.
    if (this.atomic > 0 && this.backrefs) throw new UnsupportedPatternError('back-references with atomic groups');
    return out;
  }

  private peek(offset = 0): string | undefined {
    return this.src[this.pos + offset];
  }

  private alternation(flags: Flags): string {
    let out = '';
    while (this.pos < this.src.length) {
      const c = this.peek() as string;
      if (c === ')') break;
      if (c === '|') {
        this.pos++;
        out += '|';
        continue;
      }
      const atom = this.atom(flags);
      out += this.quantified(atom);
    }
    return out;
  }

  /** An atom followed by its quantifier, with possessive quantifiers made atomic. */
  private quantified(atom: string): string {
    const q = this.quantifier();
    if (q === undefined) return atom;
    if (this.peek() === '+') {
      this.pos++;
      return this.atomicGroup(`(?:${atom})${q}`);
    }
    if (this.peek() === '?') {
      this.pos++;
      return `${atom}${q}?`;
    }
    return `${atom}${q}`;
  }

  private quantifier(): string | undefined {
    const c = this.peek();
    if (c === '*' || c === '+' || c === '?') {
      this.pos++;
      return c;
    }
    if (c !== '{') return undefined;
    const m = /^\{(\d*)(,?)(\d*)\}/.exec(this.src.slice(this.pos));
    if (!m || (m[1] === '' && m[3] === '') || (m[1] === '' && m[2] === '')) return undefined;
    this.pos += m[0].length;
    // Perl (since 5.34) reads {,n} as {0,n}; JavaScript would read it as text.
    return `{${m[1] === '' ? '0' : m[1]}${m[2]}${m[3]}}`;
  }

  private atomicGroup(body: string): string {
    const name = `atomic${++this.atomic}`;
    return `(?:(?=(?<${name}>${body}))\\k<${name}>)`;
  }

  private atom(flags: Flags): string {
    const c = this.peek() as string;
    switch (c) {
      case '(':
        return this.group(flags);
      case '[':
        return this.charClass(flags);
      case '\\':
        return this.escape(flags);
      case '.':
        this.pos++;
        return flags.s ? '[\\s\\S]' : '.';
      case '^':
      case '$':
        this.pos++;
        return c;
      case '{': {
        // A brace that does not start a quantifier is a literal in Perl.
        this.pos++;
        return '\\{';
      }
      case '}':
        this.pos++;
        return '\\}';
      case '/':
        this.pos++;
        return '\\/';
      default:
        this.pos++;
        return caseless(c, flags);
    }
  }

  private group(outer: Flags): string {
    this.pos++; // (
    let open = '(';
    let flags = outer;
    let atomic = false;
    if (this.peek() === '?') {
      const rest = this.src.slice(this.pos);
      const flagGroup = /^\?(\^?)([a-zA-Z]*)(?:-([a-zA-Z]*))?:/.exec(rest);
      const plain = /^\?(:|=|!|<=|<!)/.exec(rest);
      const named = /^\?(?:<([A-Za-z_]\w*)>|'([A-Za-z_]\w*)'|P<([A-Za-z_]\w*)>)/.exec(rest);
      if (flagGroup) {
        // (?^flags:...) resets to the defaults, (?flags-flags:...) adds and removes.
        flags = flagGroup[1] ? { i: false, s: false } : { ...outer };
        for (const f of flagGroup[2] ?? '') flags = setFlag(flags, f, true);
        for (const f of flagGroup[3] ?? '') flags = setFlag(flags, f, false);
        open = '(?:';
        this.pos += flagGroup[0].length;
      } else if (rest.startsWith('?>')) {
        atomic = true;
        open = '(?:';
        this.pos += 2;
      } else if (plain) {
        open = `(${plain[0]}`;
        this.pos += plain[0].length;
      } else if (named) {
        open = `(?<${named[1] ?? named[2] ?? named[3]}>`;
        this.pos += named[0].length;
      } else if (rest.startsWith('?#')) {
        const end = this.src.indexOf(')', this.pos);
        if (end < 0) throw new UnsupportedPatternError('unterminated comment');
        this.pos = end + 1;
        return '';
      } else throw new UnsupportedPatternError(`unsupported group (${rest.slice(0, 4)}`);
    }
    const body = this.alternation(flags);
    if (this.peek() !== ')') throw new UnsupportedPatternError('missing )');
    this.pos++;
    return atomic ? this.atomicGroup(body) : `${open}${body})`;
  }

  /** An escape outside a character class. */
  private escape(flags: Flags): string {
    const next = this.peek(1);
    if (next === 'A' || next === 'z' || next === 'Z' || next === 'N' || next === 'Q') {
      this.pos += 2;
      if (next === 'A') return '^';
      if (next === 'z') return '$';
      if (next === 'Z') return '(?=\\n?$)';
      if (next === 'N') return '[^\\n]';
      return [...this.quoted()].map((ch) => caseless(escapeLiteral(ch), flags)).join('');
    }
    const e = this.classEscape();
    if (e.code !== undefined) return caseless(e.text, { ...flags, i: flags.i && /^[a-zA-Z]$/.test(e.text) });
    return e.set ? `[${e.text}]` : e.text;
  }

  /** The text up to `\E` (or the end), after a `\Q`. */
  private quoted(): string {
    const end = this.src.indexOf('\\E', this.pos);
    const text = this.src.slice(this.pos, end < 0 ? undefined : end);
    this.pos = end < 0 ? this.src.length : end + 2;
    return text;
  }

  /**
   * An escape as a class member: its JavaScript text, its character code when it stands for one
   * character (so it can end a range), and whether it is a set to wrap in brackets outside a class.
   */
  private classEscape(): ClassAtom {
    const next = this.peek(1);
    if (next === undefined) throw new UnsupportedPatternError('trailing backslash');
    this.pos += 2;
    switch (next) {
      case 'h':
        return { text: HSPACE, set: true };
      case 'v':
        return { text: VSPACE, set: true };
      case 'H':
      case 'V':
        throw new UnsupportedPatternError(`\\${next} is only supported outside a class`);
      case 'e':
        return { text: '\\x1b', code: 0x1b };
      case 'a':
        return { text: '\\x07', code: 0x07 };
      case 'n':
        return { text: '\\n', code: 0x0a };
      case 'r':
        return { text: '\\r', code: 0x0d };
      case 't':
        return { text: '\\t', code: 0x09 };
      case 'f':
        return { text: '\\f', code: 0x0c };
      case 'x': {
        const rest = this.src.slice(this.pos);
        const m = /^\{([0-9a-fA-F]+)\}/.exec(rest) ?? /^([0-9a-fA-F]{1,2})/.exec(rest);
        const code = m ? Number.parseInt(m[1] as string, 16) : 0;
        if (m) this.pos += m[0].length;
        if (code > 0xffff) throw new UnsupportedPatternError('code point above U+FFFF');
        return { text: `\\u${code.toString(16).padStart(4, '0')}`, code };
      }
      case '0': {
        const m = /^[0-7]{0,2}/.exec(this.src.slice(this.pos));
        const digits = m?.[0] ?? '';
        this.pos += digits.length;
        const code = Number.parseInt(`0${digits}`, 8);
        return { text: `\\u${code.toString(16).padStart(4, '0')}`, code };
      }
      case 'd':
      case 'D':
      case 'w':
      case 'W':
      case 's':
      case 'S':
        return { text: `\\${next}` };
      case 'b':
      case 'B':
        return { text: `\\${next}` };
      default:
        if (/[0-9]/.test(next)) {
          this.backrefs = true;
          return { text: `\\${next}` };
        }
        if (/[a-zA-Z]/.test(next)) throw new UnsupportedPatternError(`\\${next} has no JavaScript equivalent`);
        // Any other escaped character stands for itself.
        return { text: escapeLiteral(next), code: next.charCodeAt(0) };
    }
  }

  private classAtom(): ClassAtom {
    const c = this.peek() as string;
    if (c === '\\') return this.classEscape();
    if (c === '[') {
      const m = /^\[:(\^?)([a-z]+):\]/.exec(this.src.slice(this.pos));
      if (m) {
        const contents = POSIX_CLASSES[m[2] as string];
        if (contents === undefined || m[1]) throw new UnsupportedPatternError(`POSIX class [:${m[1]}${m[2]}:]`);
        this.pos += m[0].length;
        return { text: contents, set: true };
      }
    }
    this.pos++;
    return { text: /[\\\]^[-]/.test(c) ? `\\${c}` : c, code: c.charCodeAt(0) };
  }

  private charClass(flags: Flags): string {
    this.pos++; // [
    let negated = false;
    if (this.peek() === '^') {
      negated = true;
      this.pos++;
    }
    let body = '';
    const letters = new Set<string>();
    const note = (from: number, to: number) => {
      for (let code = from; code <= to && code < 128; code++) letters.add(String.fromCharCode(code));
    };
    // A `]` right after `[` or `[^` is a member, as in Perl.
    if (this.peek() === ']') {
      this.pos++;
      body += '\\]';
    }
    for (;;) {
      const c = this.peek();
      if (c === undefined) throw new UnsupportedPatternError('unterminated character class');
      if (c === ']') {
        this.pos++;
        break;
      }
      const a = this.classAtom();
      if (this.peek() === '-' && this.peek(1) !== ']' && this.peek(1) !== undefined && a.code !== undefined) {
        this.pos++; // -
        const b = this.classAtom();
        if (b.code !== undefined) {
          if (b.code < a.code) throw new UnsupportedPatternError('range out of order');
          note(a.code, b.code);
          body += `${a.text}-${b.text}`;
          continue;
        }
        // `a-\d`: Perl takes the dash literally.
        note(a.code, a.code);
        body += `${a.text}\\-${b.text}`;
        continue;
      }
      if (a.code !== undefined) note(a.code, a.code);
      body += a.text;
    }
    if (flags.i) {
      for (const ch of [...letters]) {
        const other = ch === ch.toLowerCase() ? ch.toUpperCase() : ch.toLowerCase();
        if (other !== ch && !letters.has(other)) {
          letters.add(other);
          body += other;
        }
      }
    }
    return `[${negated ? '^' : ''}${body}]`;
  }
}

interface ClassAtom {
  text: string;
  code?: number;
  set?: boolean;
}

function setFlag(flags: Flags, f: string, on: boolean): Flags {
  switch (f) {
    case 'i':
      return { ...flags, i: on };
    case 's':
      return { ...flags, s: on };
    case 'd':
    case 'u':
    case 'a':
    case 'l':
      return flags; // character-set semantics: the patterns PVE uses are ASCII
    default:
      throw new UnsupportedPatternError(`inline flag ${f}`);
  }
}

/** The JavaScript source equivalent to a Perl pattern (without anchors or flags). */
export function translatePerlPattern(pattern: string): string {
  return new Translator(pattern).translate();
}

const compiled = new Map<string, RegExp>();

/**
 * The pattern as PVE applies it, `m/^$pattern$/`, compiled for JavaScript (cached). Unlike Perl's
 * `$`, the end anchor does not also match before a final newline: a trailing newline is refused.
 */
export function compilePerlPattern(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (!re) {
    const source = translatePerlPattern(pattern);
    try {
      re = new RegExp(`^(?:${source})$`);
    } catch (e) {
      throw new UnsupportedPatternError(`${pattern}: ${(e as Error).message}`);
    }
    compiled.set(pattern, re);
  }
  return re;
}
