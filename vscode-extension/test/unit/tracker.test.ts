import assert from 'node:assert/strict';
import { test } from 'node:test';

import { completionIdOf, SuggestionTracker, WireInlineItem } from '../../src/tracker';

const item = (id: string, text: string): WireInlineItem => ({
  insertText: text,
  range: { start: { line: 3, character: 4 }, end: { line: 3, character: 10 } },
  command: { title: 'accept', command: 'nearcode.didAcceptCompletion', arguments: [id] },
});

test('the completion id comes from the accept command', () => {
  assert.equal(completionIdOf(item('c1', 'x')), 'c1');
  assert.equal(completionIdOf({ insertText: 'x' }), undefined);
  assert.equal(completionIdOf({ insertText: 'x', command: { title: '', command: 'other', arguments: ['c'] } }), undefined);
});

test('each suggestion is reported as shown once', () => {
  const t = new SuggestionTracker();
  assert.ok(t.shown('file:///a.py', item('c1', 'return a + b')));
  assert.ok(!t.shown('file:///a.py', item('c1', 'return a + b')));
  assert.ok(t.shown('file:///a.py', item('c2', 'return a - b')));
  assert.equal(t.counts.shown, 2);
  // Items without an id are told apart by document, range and text.
  assert.ok(t.shown('file:///a.py', { insertText: 'foo' }));
  assert.ok(!t.shown('file:///a.py', { insertText: 'foo' }));
  assert.ok(t.shown('file:///b.py', { insertText: 'foo' }));
});

test('partial acceptance adds up, counts the text before the cursor, and is capped', () => {
  const t = new SuggestionTracker();
  t.shown('file:///a.py', item('c1', 'return a + b'), 3); // "ret" already typed
  assert.deepEqual(t.partiallyAccepted('file:///a.py', 4), { item: item('c1', 'return a + b'), acceptedLength: 7, acceptKind: 'word' });
  assert.equal(t.partiallyAccepted('file:///a.py', 0, 'line'), undefined);
  assert.equal(t.partiallyAccepted('file:///a.py', 2, 'line')?.acceptKind, 'line');
  assert.equal(t.partiallyAccepted('file:///a.py', 100)?.acceptedLength, 12);
  assert.equal(t.partiallyAccepted('file:///other.py', 1), undefined);
  assert.equal(t.partiallyAccepted('file:///a.py', 0), undefined);
});

test('full acceptance clears the current suggestion', () => {
  const t = new SuggestionTracker();
  t.shown('file:///a.py', item('c1', 'abc'));
  t.accepted('c1');
  assert.equal(t.currentItem, undefined);
  assert.equal(t.counts.accepted, 1);
  assert.equal(t.partiallyAccepted('file:///a.py', 1), undefined);
});

test('snippet insert text is measured by its value', () => {
  const t = new SuggestionTracker();
  t.shown('u', { insertText: { kind: 'snippet', value: 'abcd' } });
  assert.equal(t.partiallyAccepted('u', 10)?.acceptedLength, 4);
});
