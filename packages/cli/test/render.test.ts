import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { noColours } from '../src/render/ansi.js';
import { createStageRenderer, formatElapsed, type StageEvent } from '../src/render/stages.js';
import { FAILED_INSTALL, FakeTty, Sink, SUCCESSFUL_INSTALL } from './support/recorded.js';

const events = (list: readonly { step: string; status: string; message: string }[]) => list as StageEvent[];

describe('stage renderer, plain mode', () => {
  it('prints one line per event, the step in brackets, output lines as sent', () => {
    const out = new Sink();
    const r = createStageRenderer(out);
    for (const e of events(SUCCESSFUL_INSTALL)) r.event(e);
    r.finish();
    assert.equal(
      out.text,
      [
        '[*] start VM installation',
        '[preparation > checking VMID] [+] auto-assigned VMID: 101 (0.01s)',
        '[preparation > assigning IP] [+] assigned IP: 127.77.0.101/24 (0.00s)',
        '[OS preparation > getting OS image] [*] get OS image download link',
        '[OS preparation > getting OS image] [+] OS image URL obtained (0.02s)',
        '[VM initialization > SSH initialization] [*] SSH initialization',
        '  setting hostname',
        '[VM initialization > SSH initialization] [+] SSH initialization completed (1.20s)',
        '[VM initialization > finalizing] [+] VM is ready (0.10s)',
        '[VM initialization > finalizing] [*] VMID: 101',
        '[VM initialization > finalizing] [*] IP: 127.77.0.101',
        '',
      ].join('\n'),
    );
    assert.ok(!out.text.includes('\x1b'), 'no escape codes when piped');
  });

  it('is chosen for a TTY too when --plain asks for it', () => {
    const tty = new FakeTty();
    const r = createStageRenderer(tty, { plain: true });
    r.event({ step: 's', status: 'processing', message: '[*] x' });
    r.finish();
    assert.equal(tty.text, '[s] [*] x\n');
  });
});

describe('stage renderer, TTY mode', () => {
  it('keeps one line per stage, updated in place, and output lines above the live one', () => {
    const tty = new FakeTty();
    let now = 0;
    const r = createStageRenderer(tty, { now: () => now, interval: 0, palette: noColours });
    for (const e of events(SUCCESSFUL_INSTALL)) {
      now += 500;
      r.event(e);
    }
    r.finish();
    assert.deepEqual(tty.screen, [
      '• [*] start VM installation 0.5s',
      '✔ preparation > checking VMID  [+] auto-assigned VMID: 101 (0.01s)',
      '✔ preparation > assigning IP  [+] assigned IP: 127.77.0.101/24 (0.00s)',
      '✔ OS preparation > getting OS image  [+] OS image URL obtained (0.02s)',
      '  setting hostname',
      '✔ VM initialization > SSH initialization  [+] SSH initialization completed (1.20s)',
      '✔ VM initialization > finalizing  [+] VM is ready (0.10s)',
      '✔ VM initialization > finalizing  [*] VMID: 101',
      '✔ VM initialization > finalizing  [*] IP: 127.77.0.101',
    ]);
    assert.ok(tty.text.startsWith('\x1b[?25l'), 'the cursor is hidden while spinning');
    assert.ok(tty.text.endsWith('\x1b[?25h'), 'and shown again at the end');
  });

  it('advances the spinner and the elapsed time of the live stage on each tick', () => {
    const tty = new FakeTty();
    let now = 1000;
    const r = createStageRenderer(tty, { now: () => now, interval: 0, palette: noColours });
    r.event({ step: 'OS preparation > downloading OS image', status: 'processing', message: '[*] start downloading' });
    now += 2500;
    r.tick();
    assert.deepEqual(tty.screen, ['⠙ OS preparation > downloading OS image  [*] start downloading 2.5s']);
    now += 62_000;
    r.tick();
    assert.deepEqual(tty.screen, ['⠹ OS preparation > downloading OS image  [*] start downloading 1m04s']);
    r.finish();
  });

  it('marks the failing stage and the undo stages, and keeps every kept line', () => {
    const tty = new FakeTty();
    const r = createStageRenderer(tty, { now: () => 0, interval: 0, palette: noColours });
    for (const e of events(FAILED_INSTALL)) r.event(e);
    r.finish();
    const screen = tty.screen;
    assert.ok(screen.includes('✔ rollback > lxd.instance  [+] rollback > lxd.instance (0.30s)'), screen.join('\n'));
    assert.equal(screen.at(-1), '✖ VM creation > creating VM  [-] VM creation > creating VM: no space left');
  });

  it('never lets a line wrap, which would break the redraw', () => {
    const tty = new FakeTty(40);
    const r = createStageRenderer(tty, { now: () => 0, interval: 0, palette: noColours });
    r.event({ step: 'VM initialization > waiting for ready', status: 'processing', message: '[*] waiting '.repeat(9) });
    r.event({ step: 'x', status: 'processing', message: `  ${'o'.repeat(80)}` });
    r.finish();
    for (const line of tty.screen) assert.ok([...line].length <= 40, `${line} fits in 40 columns`);
  });

  it('shows notes (reconnecting, cancelling) without losing the live stage', () => {
    const tty = new FakeTty();
    const r = createStageRenderer(tty, { now: () => 0, interval: 0, palette: noColours });
    r.event({ step: 'VM creation > creating VM', status: 'processing', message: '[*] VM creation' });
    r.note('cancel requested');
    assert.deepEqual(tty.screen, ['cancel requested', '⠋ VM creation > creating VM  [*] VM creation 0.0s']);
    r.finish();
  });

  it('formats elapsed times', () => {
    assert.equal(formatElapsed(0), '0.0s');
    assert.equal(formatElapsed(59_940), '59.9s');
    assert.equal(formatElapsed(125_000), '2m05s');
  });
});
