/**
 * `pve-calendar-event`: PVE's systemd-like schedule syntax (proxmox-time), as backup, replication
 * and realm-sync jobs take it:
 *
 *   [WEEKDAYS] [[YEARS-]MONTHS-DAYS] [HOURS:MINUTES[:SECONDS]]   or a name such as `daily`
 *
 * where each field is a comma list of `*`, values, ranges `a..b` and repetitions `x/step`, and a
 * lone time field means minutes (`*\/15`). This is a parser of that grammar written for the
 * simulator, not PVE's own code; it refuses what the grammar does not produce.
 */
import { type FormatCheck, problem } from '../problem.js';

const NAMED = new Set([
  'minutely',
  'hourly',
  'daily',
  'weekly',
  'monthly',
  'yearly',
  'annually',
  'quarterly',
  'semiannually',
  'semi-annually',
]);

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const FULL_DAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'];

const dayIndex = (d: string): number => {
  const i = DAYS.indexOf(d);
  return i >= 0 ? i : FULL_DAYS.indexOf(d);
};

function weekdays(token: string): boolean {
  return token.split(',').every((item) => {
    const [a, b, ...rest] = item.split('..');
    if (rest.length > 0 || a === undefined) return false;
    if (dayIndex(a) < 0) return false;
    return b === undefined || dayIndex(b) >= 0;
  });
}

const looksLikeWeekdays = (token: string): boolean => /^[a-z]/.test(token);

/** One comma list of a numeric field within [min, max]. */
function field(text: string, min: number, max: number): boolean {
  if (text === '') return false;
  return text.split(',').every((item) => {
    const [base, step, ...rest] = item.split('/');
    if (rest.length > 0 || base === undefined) return false;
    if (step !== undefined && !(/^\d+$/.test(step) && Number(step) > 0)) return false;
    if (base === '*') return true;
    const range = /^(\d+)(?:\.\.(\d+))?$/.exec(base);
    if (!range) return false;
    const a = Number(range[1]);
    const b = range[2] === undefined ? a : Number(range[2]);
    return a >= min && b <= max && a <= b;
  });
}

function date(token: string): boolean {
  const parts = token.split('-');
  if (parts.length === 3) {
    const [y, m, d] = parts as [string, string, string];
    return field(y, 1970, 9999) && field(m, 1, 12) && field(d, 1, 31);
  }
  if (parts.length === 2) return field(parts[0] as string, 1, 12) && field(parts[1] as string, 1, 31);
  return false;
}

function time(token: string): boolean {
  const parts = token.split(':');
  if (parts.length === 1) return field(parts[0] as string, 0, 59);
  if (parts.length > 3) return false;
  const [h, m, s] = parts as [string, string, string | undefined];
  return field(h, 0, 23) && field(m, 0, 59) && (s === undefined || field(s, 0, 59));
}

export function isCalendarEvent(value: string): boolean {
  const tokens = value.trim().toLowerCase().split(/\s+/);
  if (tokens.length === 1 && NAMED.has(tokens[0] as string)) return true;
  let i = 0;
  if (tokens[i] !== undefined && looksLikeWeekdays(tokens[i] as string)) {
    if (!weekdays(tokens[i] as string)) return false;
    i++;
  }
  if (tokens[i] !== undefined && (tokens[i] as string).includes('-') && !(tokens[i] as string).includes(':')) {
    if (!date(tokens[i] as string)) return false;
    i++;
  }
  if (tokens[i] !== undefined) {
    if (!time(tokens[i] as string)) return false;
    i++;
  }
  return i > 0 && i === tokens.length && value.trim() !== '';
}

export const CALENDAR_FORMATS: Record<string, FormatCheck> = {
  'pve-calendar-event': (v) =>
    isCalendarEvent(v) ? undefined : problem((show) => `unable to parse calendar event '${show(v)}'`),
};
