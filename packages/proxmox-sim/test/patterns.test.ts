import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compilePerlPattern, loadSchemaIndex, SHIPPED_SCHEMA, translatePerlPattern } from '@vmplane/proxmox-sim';
import { Raw, sim } from './helpers.js';

/** Every `pattern` of the shipped schema with the number of places it appears (parameters and returns). */
function schemaPatterns(): Map<string, number> {
  const index = loadSchemaIndex(SHIPPED_SCHEMA);
  const found = new Map<string, number>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) for (const x of v) walk(x);
    else if (v && typeof v === 'object')
      for (const [k, x] of Object.entries(v)) {
        if (k === 'pattern' && typeof x === 'string') found.set(x, (found.get(x) ?? 0) + 1);
        else walk(x);
      }
  };
  walk(index.api.paths);
  return found;
}

test('every pattern of the schema compiles, including those in Perl syntax JavaScript cannot read', () => {
  const patterns = schemaPatterns();
  let perlOnly = 0;
  for (const [p, n] of patterns) {
    try {
      new RegExp(p);
    } catch {
      perlOnly += n;
    }
    assert.doesNotThrow(() => compilePerlPattern(p), p);
  }
  assert.equal(patterns.size, 66);
  assert.equal(
    [...patterns.values()].reduce((a, b) => a + b, 0),
    281,
  );
  assert.equal(perlOnly, 79, 'occurrences that need a translation');
  const index = loadSchemaIndex(SHIPPED_SCHEMA);
  for (const route of index.routes.values()) for (const op of route.methods.values()) index.validator.operation(op);
  assert.deepEqual([...index.validator.uncompiledPatterns], []);
});

// [Perl pattern, matching values, non-matching values]; the pattern is anchored as PVE anchors it.
const CASES: Array<[string, string[], string[]]> = [
  // (?^i:...): case-insensitive group (tags)
  [
    '(?^i:[a-z0-9_][a-z0-9_\\-\\+\\.]*)(?:;(?^i:[a-z0-9_][a-z0-9_\\-\\+\\.]*))*',
    ['Prod;web-1', 'A'],
    ['a b', ';a', '-x'],
  ],
  // atomic group inside (?^:...) with its own anchors
  ['(?^:^((?>[+-]?[\\w\\-\\._=]+,?)+)$)', ['a=1,b', '+x,-y'], ['a=1,,b', ',a']],
  // {,n} means {0,n} in Perl 5.34+
  ['[A-Za-z0-9\\-_\\s]{,8}', ['', 'ACME', 'ab cd_ef'], ['abcdefghi', '{,8}']],
  // \xHH ranges in a negated class
  ['(?^:[^\\x00-\\x08\\x10-\\x1F\\x7F]+)', ['ok\tline', 'üml'], ['bad\u0001', 'x\u007f', '']],
  // \0 between assignments
  [
    '(?^:(?:\\w+=[^\\x00-\\x08\\x10-\\x1F\\x7F]*)(?:\\0\\w+=[^\\x00-\\x08\\x10-\\x1F\\x7F]*)*)',
    ['A=1\u0000B=2'],
    ['A=1\u0001B=2', '=1'],
  ],
  // a range spelled with escapes, (?^i:) widening it to both cases
  ['(?^i:[\\(\\)-_.\\w\\d\\s]{0,256})', ['Hello (World) 1.0'], ['tab\u0007', 'x'.repeat(257)]],
  // nested (?^:) groups, user@realm!token
  [
    '(?^:^(?^:[^\\s:/]+)\\@(?^:[A-Za-z][A-Za-z0-9\\.\\-_]+)(?:!(?^:[A-Za-z][A-Za-z0-9\\.\\-_]+))?$)',
    ['root@pam', 'a@pve!ci'],
    ['root', 'a b@pve', 'a@pve!1'],
  ],
  // constructs no PVE 9.1 pattern uses, but other versions may
  ['\\A[[:alnum:]]+\\z', ['abc1'], ['a-b', '']],
  ['\\Qa.b\\E\\h+x', ['a.b \tx'], ['axb x']],
  ['(?>a*)a', [], ['aaa']],
  ['a*+a', [], ['aaa']],
  ['a++b', ['aab'], ['b']],
];

test('translated patterns match what Perl matches and refuse what Perl refuses', () => {
  for (const [pattern, good, bad] of CASES) {
    const re = compilePerlPattern(pattern);
    for (const v of good) assert.ok(re.test(v), `${pattern} matches ${JSON.stringify(v)} (${re.source})`);
    for (const v of bad) assert.ok(!re.test(v), `${pattern} refuses ${JSON.stringify(v)} (${re.source})`);
  }
  assert.equal(translatePerlPattern('(?^i:ab)'), '(?:[aA][bB])');
  assert.throws(() => compilePerlPattern('\\p{L}+'), /no JavaScript equivalent/);
  assert.throws(() => compilePerlPattern('(?>a)(b)\\1'), /back-references with atomic groups/);
});

test('patterns on the wire: a Perl-syntax pattern inside a property string is enforced', async () => {
  const s = await sim({ nodes: 1, guests: [{ vmid: 100, node: 'pve1', status: 'stopped' }] });
  const api = new Raw(s).useToken();
  const ok = await api.put('/nodes/pve1/qemu/100/config', { net0: 'virtio,bridge=vmbr0,trunks=10;20-30' });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  const bad = await api.put('/nodes/pve1/qemu/100/config', { net0: 'virtio,bridge=vmbr0,trunks=10;x' });
  assert.equal(bad.status, 400);
  assert.match(bad.body.errors?.net0 ?? '', /trunks: value does not match the regex pattern/);
  const vendor = await api.put('/nodes/pve1/qemu/100/config', { scsi1: 'local:1,vendor=ACMEACMEX' });
  assert.match(vendor.body.errors?.scsi1 ?? '', /vendor: value does not match the regex pattern/);
  const wwn = await api.put('/nodes/pve1/qemu/100/config', { scsi1: 'local:1,wwn=0x12' });
  assert.match(wwn.body.errors?.scsi1 ?? '', /wwn: value does not match the regex pattern/);
});
