import assert from 'node:assert/strict';
import { test } from 'node:test';

import { contextDocument } from '../../src/context';

test('a report shows the server text and the prompt', () => {
  const doc = contextDocument({
    available: true,
    text: 'nearcode context: a.py (workspace mode)\n  kept     definition pkg/b.py:1-3   20 tokens  B: imported as B\n',
    prompt: '<|repo_name|>ws\n<|file_sep|>pkg/b.py\nclass B: ...\n',
  });
  assert.match(doc, /kept {5}definition pkg\/b\.py:1-3/);
  assert.match(doc, /## The prompt the engine received/);
  assert.ok(doc.includes('<|file_sep|>pkg/b.py'));
});

test('no report yet says why', () => {
  assert.match(contextDocument({ available: false, reason: 'no completion yet' }), /no completion yet/);
  assert.match(contextDocument(null), /No completion has been asked for/);
});
