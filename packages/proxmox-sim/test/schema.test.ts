import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  extractApiSchemaArray,
  findPveSchema,
  loadSchemaIndex,
  type PveApiSchema,
  parseSchemaText,
  readPveSchema,
  reduceApidoc,
  SHIPPED_SCHEMA,
  serializeSchema,
  startSimulator,
} from '@vmplane/proxmox-sim';
import { runProcess } from '../../../tools/readme-examples.js';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const repo = join(pkg, '..', '..');
const scratch = mkdtempSync(join(tmpdir(), 'pve-schema-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

type Env = Record<string, string | undefined>;

function applyEnv(vars: Env): Env {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, value] of Object.entries(vars)) {
    if (value === undefined) delete process.env[k];
    else process.env[k] = value;
  }
  return saved;
}

/** Runs `fn` with environment variables set (undefined deletes), restoring them afterwards. */
function withEnv<T>(vars: Env, fn: () => T): T {
  const saved = applyEnv(vars);
  try {
    return fn();
  } finally {
    applyEnv(saved);
  }
}

async function withEnvAsync<T>(vars: Env, fn: () => Promise<T>): Promise<T> {
  const saved = applyEnv(vars);
  try {
    return await fn();
  } finally {
    applyEnv(saved);
  }
}

// A small apidoc in the official shape, with the documentation the reduction must drop.
const tinyApidoc = [
  {
    path: '/version',
    text: 'version',
    leaf: 1,
    info: {
      GET: {
        method: 'GET',
        name: 'version',
        description: 'API version details ] with a bracket "and quotes" }',
        allowtoken: 1,
        permissions: { user: 'all', description: 'anyone' },
        parameters: { additionalProperties: 0 },
        returns: {
          type: 'object',
          properties: {
            release: { type: 'string', description: 'The current Proxmox VE point release in `x.y` format.' },
            version: { type: 'string', typetext: '<string>' },
          },
        },
      },
    },
  },
  {
    path: '/nodes',
    text: 'nodes',
    leaf: 0,
    children: [
      {
        path: '/nodes/{node}',
        text: '{node}',
        leaf: 0,
        info: {
          GET: {
            method: 'GET',
            name: 'index',
            parameters: {
              additionalProperties: 0,
              properties: {
                node: { type: 'string', format: 'pve-node', description: 'The cluster node name.' },
                'net[n]': { type: 'string', optional: '1', description: 'A NIC (n is 0 to 7).', minimum: '0' },
              },
            },
            returns: {
              type: 'array',
              items: { type: 'object', properties: {} },
              links: [{ rel: 'child', href: '{name}' }],
            },
          },
        },
      },
    ],
  },
];

test('the shipped schema is found by default; schemaPath wins over $VMPLANE_PVE_SCHEMA; given paths must exist', () => {
  const other = join(scratch, 'other.json');
  writeFileSync(other, JSON.stringify(tinyApidoc));
  withEnv({ VMPLANE_PVE_SCHEMA: undefined }, () => {
    assert.equal(findPveSchema(), SHIPPED_SCHEMA);
    assert.equal(findPveSchema({ schemaPath: other }), other);
  });
  withEnv({ VMPLANE_PVE_SCHEMA: other }, () => {
    assert.equal(findPveSchema(), other);
    assert.equal(findPveSchema({ schemaPath: SHIPPED_SCHEMA }), SHIPPED_SCHEMA, 'explicit beats the environment');
    assert.throws(() => findPveSchema({ schemaPath: join(scratch, 'missing.json') }), /missing\.json \(schemaPath\)/);
  });
  withEnv({ VMPLANE_PVE_SCHEMA: join(scratch, 'gone.json') }, () => {
    assert.throws(() => findPveSchema(), /gone\.json \(\$VMPLANE_PVE_SCHEMA\)/);
  });
  withEnv({ VMPLANE_PVE_SCHEMA: '' }, () => assert.equal(findPveSchema(), SHIPPED_SCHEMA));
});

test('the simulator never looks for ../shared/specs: no source file names it or VMPLANE_SPECS_DIR', () => {
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts')) files.push(p);
    }
  };
  walk(join(pkg, 'src'));
  assert.ok(files.length > 10);
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const needle of ['shared/specs', 'pve-apidoc.json', 'VMPLANE_SPECS_DIR', '/work/']) {
      assert.ok(!text.includes(needle), `${file} mentions ${needle}`);
    }
  }
  // And a simulator starts with the variable pointing nowhere.
  return withEnvAsync({ VMPLANE_SPECS_DIR: '/nonexistent', VMPLANE_PVE_SCHEMA: undefined }, async () => {
    const sim = await startSimulator({ nodes: 1, guests: 0 });
    try {
      assert.equal(sim.schema.pveVersion, '9.1.3');
    } finally {
      await sim.close();
    }
  });
});

test('the shipped file records version, source and licence, has every operation and no documentation text', () => {
  const text = readFileSync(SHIPPED_SCHEMA, 'utf8');
  const schema = JSON.parse(text) as PveApiSchema;
  assert.equal(schema.schema, 'vmplane-pve-api/1');
  assert.equal(schema.pveVersion, '9.1.3');
  assert.equal(schema.source, 'proxmox/pve-docs api-viewer/apidata.js');
  assert.equal(schema.license, 'AGPL-3.0-or-later');
  const index = loadSchemaIndex(SHIPPED_SCHEMA);
  assert.equal(index.operationCount, 649);
  assert.equal(index.routes.size, 435);
  const docKeys = new Set([
    'description',
    'verbose_description',
    'typetext',
    'format_description',
    'title',
    'renderer',
  ]);
  const found: string[] = [];
  // Property maps are keyed by parameter names (a VM has a `description` parameter): only schema keys count.
  const schemaWalk = (s: unknown, where: string): void => {
    if (typeof s !== 'object' || s === null) return;
    for (const [k, v] of Object.entries(s)) {
      if (docKeys.has(k)) found.push(`${where}.${k}`);
      if (k === 'properties' || (k === 'format' && typeof v === 'object')) {
        for (const [name, sub] of Object.entries(v as object)) schemaWalk(sub, `${where}.${name}`);
      } else if (k === 'items' || k === 'additionalProperties') schemaWalk(v, `${where}.${k}`);
      else if (k === 'oneOf') for (const [i, sub] of (v as unknown[]).entries()) schemaWalk(sub, `${where}.oneOf${i}`);
    }
  };
  for (const [path, methods] of Object.entries(schema.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      for (const k of Object.keys(op)) if (docKeys.has(k)) found.push(`${method} ${path}.${k}`);
      schemaWalk(op.parameters, `${method} ${path} parameters`);
      schemaWalk(op.returns, `${method} ${path} returns`);
    }
  }
  assert.deepEqual(found.slice(0, 10), []);
  assert.equal(text, serializeSchema(schema), 'the file is in its canonical, deterministic form');
});

test('apidoc.js is read by scanning, not evaluating: brackets inside strings, code after the array', () => {
  const js = `/* pve-docs */\nconst apiSchema = ${JSON.stringify(tinyApidoc, null, 1)}\n;\nlet method2cmd = { "GET": "get" };\nfunction f() { return "]"; }\nthrow new Error('never run');\n`;
  assert.deepEqual(extractApiSchemaArray(js), tinyApidoc);
  assert.throws(() => extractApiSchemaArray(js.slice(0, js.indexOf('"/nodes/{node}"'))), /not closed/);
  assert.throws(() => extractApiSchemaArray('var x = [1];'), /no `apiSchema = \[`/);
  const file = join(scratch, 'apidoc.js');
  writeFileSync(file, js);
  assert.deepEqual(readPveSchema(file), parseSchemaText(JSON.stringify(tinyApidoc)));
});

test('the reduction keeps structure, normalises the quirks and drops the documentation', () => {
  const schema = reduceApidoc(tinyApidoc, { pveVersion: '9.0.0' });
  assert.equal(schema.pveVersion, '9.0.0');
  assert.deepEqual(Object.keys(schema.paths), ['/version', '/nodes', '/nodes/{node}']);
  assert.deepEqual(schema.paths['/nodes'], {});
  assert.deepEqual(schema.paths['/version']?.GET, {
    allowtoken: 1,
    name: 'version',
    parameters: { additionalProperties: 0 },
    permissions: { user: 'all' },
    returns: { properties: { release: { type: 'string' }, version: { type: 'string' } }, type: 'object' },
  });
  assert.deepEqual(schema.paths['/nodes/{node}']?.GET?.parameters.properties, {
    'net[n]': { indexMax: 7, minimum: 0, optional: 1, type: 'string' },
    node: { format: 'pve-node', type: 'string' },
  });
  const index = loadSchemaIndex(SHIPPED_SCHEMA);
  assert.deepEqual(index.routes.get('/nodes/{node}/qemu/{vmid}')?.subdirs.slice(0, 3), ['firewall', 'agent', 'rrd']);
});

test('a simulator started on another schema (an apidoc.js) serves exactly that schema', async () => {
  const file = join(scratch, 'other-apidoc.js');
  writeFileSync(file, `const apiSchema = ${JSON.stringify(tinyApidoc)};\n`);
  const sim = await withEnvAsync({ VMPLANE_PVE_SCHEMA: SHIPPED_SCHEMA }, () =>
    startSimulator({ schemaPath: file, nodes: 1 }),
  );
  try {
    assert.equal(sim.schema.operationCount, 2);
    const headers = { Authorization: sim.credentials.tokenHeader };
    assert.equal((await fetch(`${sim.apiUrl}/version`, { headers })).status, 200);
    assert.equal((await fetch(`${sim.apiUrl}/nodes/pve1/qemu`, { headers })).status, 501, 'not in this schema');
  } finally {
    await sim.close();
  }
});

test('tools/gen-pve-schema.ts writes the reduced schema of an apidoc.js, with the version given', async () => {
  const input = join(scratch, 'tool-apidoc.js');
  const out = join(scratch, 'tool-out.json');
  writeFileSync(input, `// served by pve-docs\nconst apiSchema = ${JSON.stringify(tinyApidoc, null, 2)};\n`);
  const r = await runProcess(
    process.execPath,
    ['--import', 'tsx', join(repo, 'tools', 'gen-pve-schema.ts'), input, out, '--pve-version', '8.4.1'],
    { cwd: repo, timeout: 60_000 },
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /PVE 8\.4\.1, 3 paths, 2 operations/);
  assert.equal(readFileSync(out, 'utf8'), serializeSchema(reduceApidoc(tinyApidoc, { pveVersion: '8.4.1' })));
});

test('the index resolves templates, including ones with encoded slashes and colons', () => {
  const index = loadSchemaIndex(SHIPPED_SCHEMA);
  const m = index.lookup(['nodes', 'pve1', 'storage', 'local', 'content', 'local:iso/x.iso']);
  assert.equal(m?.route.template, '/nodes/{node}/storage/{storage}/content/{volume}');
  assert.equal(m?.params.volume, 'local:iso/x.iso');
  assert.equal(
    index.lookup(['nodes', 'pve1', 'qemu', '100', 'status', 'current'])?.route.template,
    '/nodes/{node}/qemu/{vmid}/status/current',
  );
  assert.equal(index.lookup(['nope']), undefined);
});

// Only this test reads the official apidoc; every other test runs on the shipped file alone.
const specsDir = process.env.VMPLANE_SPECS_DIR || join(repo, '..', 'shared', 'specs');
const apidocPath = join(specsDir, 'pve-apidoc.json');
const apidocMissing = existsSync(apidocPath)
  ? false
  : `NOT RUN: ${apidocPath} is absent, so the shipped schema was not compared with the official apidoc`;

/** Where two JSON values differ, as `path: shipped … apidoc …` lines (at most `limit`). */
function differences(a: unknown, b: unknown, where: string, out: string[], limit: number): void {
  if (out.length >= limit) return;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) {
    if (!Object.is(a, b)) out.push(`${where}: shipped ${JSON.stringify(a)}, apidoc ${JSON.stringify(b)}`);
    return;
  }
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    const av = (a as Record<string, unknown>)[k];
    const bv = (b as Record<string, unknown>)[k];
    if (av === undefined) out.push(`${where}.${k}: missing from the shipped file`);
    else if (bv === undefined) out.push(`${where}.${k}: not in the apidoc`);
    else differences(av, bv, `${where}.${k}`, out, limit);
    if (out.length >= limit) return;
  }
}

test('the shipped schema matches the official apidoc exactly, on every path, method and parameter', {
  skip: apidocMissing,
}, () => {
  const shipped = readPveSchema(SHIPPED_SCHEMA);
  const fresh = parseSchemaText(readFileSync(apidocPath, 'utf8'), { pveVersion: shipped.pveVersion });
  const diff: string[] = [];
  differences(shipped, fresh, '', diff, 20);
  assert.deepEqual(diff, [], `regenerate with tools/gen-pve-schema.ts; first differences:\n${diff.join('\n')}`);
  assert.deepEqual(shipped, fresh);
  assert.equal(readFileSync(SHIPPED_SCHEMA, 'utf8'), serializeSchema(fresh), 'byte for byte what the tool writes');
});
