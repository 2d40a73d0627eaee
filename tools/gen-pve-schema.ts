/**
 * Writes packages/proxmox-sim/schema/pve-api.json, the PVE API's structure the simulator ships,
 * from the official apidoc: an `apidoc.json` array, or the `apidoc.js` every PVE node serves
 * (https://<node>:8006/pve-docs/api-viewer/apidoc.js, from proxmox/pve-docs api-viewer/apidata.js).
 *
 *   node --import tsx tools/gen-pve-schema.ts <apidoc.json|apidoc.js> [out] [--pve-version 9.1.3]
 *
 * The output keeps paths, methods, operation flags, parameters (type, format, enum, range,
 * pattern, optionality, ...) and return types, and no documentation text. The apidoc is
 * AGPL-3.0-or-later; packages/proxmox-sim/NOTICE says how the extracted file is distributed.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseSchemaText, serializeSchema } from '../packages/proxmox-sim/src/apidoc.js';

const here = dirname(fileURLToPath(import.meta.url));
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { 'pve-version': { type: 'string' } },
});
const [input, out = join(here, '..', 'packages', 'proxmox-sim', 'schema', 'pve-api.json')] = positionals;
if (!input) {
  process.stderr.write('usage: gen-pve-schema <apidoc.json|apidoc.js> [out] [--pve-version X.Y.Z]\n');
  process.exit(2);
}
// The apidoc does not say which release it documents; 9.1.3 is the release the shipped file has.
const pveVersion = values['pve-version'] ?? '9.1.3';
if (values['pve-version'] === undefined)
  process.stderr.write('no --pve-version given: recording 9.1.3; pass the release of the apidoc you read\n');
const schema = parseSchemaText(readFileSync(input, 'utf8'), { pveVersion });
const text = serializeSchema(schema);
writeFileSync(out, text);
const ops = Object.values(schema.paths).reduce((n, methods) => n + Object.keys(methods).length, 0);
process.stdout.write(
  `${out}: PVE ${schema.pveVersion}, ${Object.keys(schema.paths).length} paths, ${ops} operations, ${text.length} bytes\n`,
);
