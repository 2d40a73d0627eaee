import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readmeExamples, runExample } from '../../../tools/readme-examples.js';
import { IMAGE_ALIAS, IMAGE_DIR, removeLeftoverLogs } from './support/lxd.js';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');

for (const readme of ['README.md']) {
  const examples = await readmeExamples(join(packageDir, readme));
  test(`${readme} has runnable examples`, () => assert.ok(examples.length >= 3));
  for (const example of examples) {
    test(`${readme} example at line ${example.line} runs`, async () => {
      const run = await runExample(packageDir, example, {
        VMPLANE_IMAGE_DIR: IMAGE_DIR,
        VMPLANE_IMAGE_ALIAS: IMAGE_ALIAS,
      });
      // The examples name their instances `vmpt-readme-…-<pid>` and delete them; LXD 5.0.2 keeps
      // their log directories, which go here.
      removeLeftoverLogs((entry) => entry.startsWith('vmpt-readme-') && entry.endsWith(`-${run.pid}`));
      assert.equal(run.code, 0, `exit ${run.code}\n${run.stdout}\n${run.stderr}`);
    });
  }
}
