import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readmeExamples, runExample } from '../../../tools/readme-examples.js';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const examples = await readmeExamples(join(packageDir, 'README.md'));

test('README has an example', () => assert.ok(examples.length >= 1));
for (const example of examples) {
  test(`README example at line ${example.line} runs`, async () => {
    const run = await runExample(packageDir, example, { NO_COLOR: '1' });
    assert.equal(run.code, 0, `exit ${run.code}\n${run.stdout}\n${run.stderr}`);
    assert.match(run.stdout, /\[preparation > checking VMID\] \[\+\] auto-assigned VMID: 101/);
    assert.match(run.stdout, /0\.1\.0\nexit code 0\n/);
  });
}
