import { CLEAR_LINE, HIDE_CURSOR, SHOW_CURSOR } from '../../src/render/ansi.js';

/** A recorded install stream, as vmplane's server sends it: go-pve-qemu's events with `id:` lines. */
export interface Recorded {
  step: string;
  status: string;
  message: string;
  vm_id?: number;
  ip?: string;
}

export const SUCCESSFUL_INSTALL: Recorded[] = [
  { step: '', status: 'processing', message: '[*] start VM installation' },
  { step: 'preparation > checking VMID', status: 'success', message: '[+] auto-assigned VMID: 101 (0.01s)' },
  { step: 'preparation > assigning IP', status: 'success', message: '[+] assigned IP: 127.77.0.101/24 (0.00s)' },
  { step: 'OS preparation > getting OS image', status: 'processing', message: '[*] get OS image download link' },
  { step: 'OS preparation > getting OS image', status: 'success', message: '[+] OS image URL obtained (0.02s)' },
  { step: 'VM initialization > SSH initialization', status: 'processing', message: '[*] SSH initialization' },
  { step: 'VM initialization > SSH initialization', status: 'processing', message: '  setting hostname' },
  {
    step: 'VM initialization > SSH initialization',
    status: 'success',
    message: '[+] SSH initialization completed (1.20s)',
  },
  { step: 'VM initialization > finalizing', status: 'success', message: '[+] VM is ready (0.10s)' },
  {
    step: 'VM initialization > finalizing',
    status: 'success',
    message: '[*] VMID: 101',
    vm_id: 101,
    ip: '127.77.0.101',
  },
  {
    step: 'VM initialization > finalizing',
    status: 'success',
    message: '[*] IP: 127.77.0.101',
    vm_id: 101,
    ip: '127.77.0.101',
  },
];

export const FAILED_INSTALL: Recorded[] = [
  { step: '', status: 'processing', message: '[*] start VM installation' },
  { step: 'VM creation > creating VM', status: 'processing', message: '[*] VM creation' },
  { step: 'VM creation > creating VM', status: 'processing', message: '[-] VM creation > creating VM: no space left' },
  { step: 'rollback > lxd.instance', status: 'processing', message: '[*] start rollback > lxd.instance' },
  { step: 'rollback > lxd.instance', status: 'success', message: '[+] rollback > lxd.instance (0.30s)' },
  { step: 'VM creation > creating VM', status: 'error', message: '[-] VM creation > creating VM: no space left' },
];

/** The SSE bytes of events numbered from `firstId`, optionally ending with go-pve-qemu's close. */
export function sse(events: readonly Recorded[], opts: { firstId?: number; close?: boolean } = {}): string {
  let id = opts.firstId ?? 1;
  let out = '';
  for (const e of events) out += `id: ${id++}\ndata: ${JSON.stringify(e)}\n\n`;
  if (opts.close !== false) out += 'event: close\ndata: {}\n\n';
  return out;
}

/** The same events as /v1/operations/{id}/events sends them: named `stage`, ending with `end`. */
export function nativeSse(operationId: string, events: readonly Recorded[], firstId: number): string {
  let seq = firstId;
  let out = ': heartbeat\n\n';
  for (const e of events) {
    const data = { seq, operation_id: operationId, ...e, at: '2026-01-01T00:00:00.000Z' };
    out += `id: ${seq++}\nevent: stage\ndata: ${JSON.stringify(data)}\n\n`;
  }
  return `${out}event: end\ndata: ${JSON.stringify({ id: operationId, status: 'succeeded' })}\n\n`;
}

/** A terminal stand-in: records what is written, says it is a TTY of the given width. */
export class FakeTty {
  readonly isTTY = true;
  columns: number;
  chunks: string[] = [];
  constructor(columns = 100) {
    this.columns = columns;
  }
  write(chunk: string): boolean {
    this.chunks.push(chunk);
    return true;
  }
  get text(): string {
    return this.chunks.join('');
  }
  /** What a terminal would show: `\r\x1b[2K` wipes the line, cursor codes vanish. */
  get screen(): string[] {
    const lines: string[] = [''];
    const text = this.text.replaceAll(HIDE_CURSOR, '').replaceAll(SHOW_CURSOR, '');
    for (const part of text.split(new RegExp(`(${CLEAR_LINE.replace(/[[\]]/g, '\\$&')}|\n)`))) {
      if (part === '\n') lines.push('');
      else if (part === '\r\x1b[2K') lines[lines.length - 1] = '';
      else lines[lines.length - 1] += part;
    }
    return lines.filter((l, i) => l !== '' || i < lines.length - 1);
  }
}

export class Sink {
  chunks: string[] = [];
  write(chunk: string | Uint8Array): boolean {
    this.chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  }
  get text(): string {
    return this.chunks.join('');
  }
}
