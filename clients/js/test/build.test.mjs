// The browser build is one ES module with no imports (so no Node
// built-ins), exporting the same API as the Node build.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');

test('dist/browser.js: one module, no imports, the Node build\'s exports', async () => {
  const src = readFileSync(join(dist, 'browser.js'), 'utf8');
  assert.doesNotMatch(src, /(^|\n)\s*import[\s{*'"]/, 'an import statement');
  assert.doesNotMatch(src, /\bimport\(|\brequire\(|['"]node:/, 'a dynamic import, require or node: module');
  const browser = await import(join(dist, 'browser.js'));
  const node = await import(join(dist, 'index.js'));
  assert.deepEqual(Object.keys(browser).sort(), Object.keys(node).sort());
  await assert.rejects(browser.connect({ servers: ['127.0.0.1:1'], channel: browser.channelFromName('x') }),
    (e) => e instanceof browser.SocketbusError && e.code === 'unsupported');
});
