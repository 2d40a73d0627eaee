import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readmeExamples, runExample } from '../../../tools/readme-examples.js';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const examples = await readmeExamples(join(packageDir, 'README.md'));

test('the README has its examples', () => {
  assert.equal(examples.length, 2);
});

for (const example of examples) {
  test(`README example at line ${example.line} runs`, async () => {
    const run = await runExample(packageDir, example);
    assert.equal(run.code, 0, `exit ${run.code}\n${run.stderr}\n${run.stdout}`);
  });
}
