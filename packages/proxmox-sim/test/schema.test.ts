import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { findPveSchema, loadSchemaIndex } from '@vmplane/proxmox-sim';

test('findPveSchema honours schemaPath and VMPLANE_PVE_SCHEMA, and finds shared/specs beside an ancestor', () => {
  const real = findPveSchema();
  assert.match(real, /pve-apidoc\.json$/);
  assert.equal(findPveSchema({ schemaPath: real }), real);
  assert.throws(() => findPveSchema({ schemaPath: '/nonexistent/pve-apidoc.json' }));
  const dir = mkdtempSync(join(tmpdir(), 'pve-schema-'));
  try {
    mkdirSync(join(dir, 'shared', 'specs'), { recursive: true });
    symlinkSync(real, join(dir, 'shared', 'specs', 'pve-apidoc.json'));
    mkdirSync(join(dir, 'clone', 'packages', 'x'), { recursive: true });
    assert.equal(
      findPveSchema({ from: [join(dir, 'clone', 'packages', 'x')] }),
      join(dir, 'shared', 'specs', 'pve-apidoc.json'),
    );
    const saved = process.env.VMPLANE_PVE_SCHEMA;
    process.env.VMPLANE_PVE_SCHEMA = join(dir, 'shared', 'specs', 'pve-apidoc.json');
    try {
      assert.equal(findPveSchema(), process.env.VMPLANE_PVE_SCHEMA);
    } finally {
      if (saved === undefined) delete process.env.VMPLANE_PVE_SCHEMA;
      else process.env.VMPLANE_PVE_SCHEMA = saved;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the index resolves templates, including ones with encoded slashes and colons', () => {
  const index = loadSchemaIndex(findPveSchema());
  assert.equal(index.operationCount, 649);
  const m = index.lookup(['nodes', 'pve1', 'storage', 'local', 'content', 'local:iso/x.iso']);
  assert.equal(m?.route.template, '/nodes/{node}/storage/{storage}/content/{volume}');
  assert.equal(m?.params.volume, 'local:iso/x.iso');
  assert.equal(
    index.lookup(['nodes', 'pve1', 'qemu', '100', 'status', 'current'])?.route.template,
    '/nodes/{node}/qemu/{vmid}/status/current',
  );
  assert.equal(index.lookup(['nope']), undefined);
});
