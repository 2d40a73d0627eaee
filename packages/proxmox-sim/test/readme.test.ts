import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readmeExamples, runExample } from '../../../tools/readme-examples.js';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const examples = await readmeExamples(join(pkg, 'README.md'));

test('the README has examples', () => {
  assert.ok(examples.length >= 3);
});

for (const example of examples) {
  test(`README example at line ${example.line} runs`, async () => {
    const r = await runExample(pkg, example);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  });
}
