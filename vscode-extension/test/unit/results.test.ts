import assert from 'node:assert/strict';
import { test } from 'node:test';

import { describeCommandResult, levelOf } from '../../src/results';

// Shapes as lsp/code_actions/tests_command.py, docstring_command.py and lsp/cloud/handoff.py return them.
const testsResult = (outcome: string, summary: string, extra: Record<string, unknown> = {}) => ({
  framework: 'pytest',
  testFile: 'file:///home/me/shop/tests/test_calc.py',
  createFile: true,
  offered: true,
  applied: true,
  tests: 'from calc import clamp\n…',
  run: { outcome, summary, output: '…', seconds: 0.9 },
  edit: null,
  ...extra,
});

test('nothing to say about no result, strings (shown as documents) and arrays', () => {
  for (const value of [undefined, null, '', 'an answer', 42, true, []]) {
    assert.equal(describeCommandResult(value), undefined);
  }
  assert.equal(describeCommandResult({ unrelated: 1 }), undefined);
});

test('tests that passed: an information message with the file, the outcome and pytest\'s summary', () => {
  const m = describeCommandResult(testsResult('passed', '2 passed in 0.01s'), 'nearcode.generateTests');
  assert.deepEqual(m, {
    level: 'info',
    text: 'nearcode: pytest tests added to test_calc.py; ran before insertion: passed (2 passed in 0.01s)',
  });
});

test('tests that failed are a warning, tests that could not run an error', () => {
  const failed = describeCommandResult(testsResult('failed', '1 failed, 1 passed in 0.03s'));
  assert.equal(failed?.level, 'warning');
  assert.match(failed?.text ?? '', /ran before insertion: failed \(1 failed, 1 passed in 0\.03s\)$/);
  const error = describeCommandResult(testsResult('error', 'timed out after 60s'));
  assert.equal(error?.level, 'error');
  assert.match(error?.text ?? '', /error \(timed out after 60s\)/);
});

test('tests whose outcome the server already showed are not announced twice', () => {
  assert.equal(describeCommandResult(testsResult('failed', '1 failed', { notified: true })), undefined);
  const preview = describeCommandResult(testsResult('passed', '1 passed', { notified: true, applied: false }));
  assert.equal(preview?.level, 'warning');
  assert.match(preview?.text ?? '', /not applied/);
});

test('tests in other languages are not run: information', () => {
  const m = describeCommandResult({
    framework: 'jest', testFile: 'file:///p/src/add.test.ts', offered: true, applied: true,
    run: { outcome: 'not run', summary: '', output: '', seconds: 0 },
  });
  assert.deepEqual(m, { level: 'info', text: 'nearcode: jest tests added to add.test.ts; not run' });
});

test('tests offered but not applied by the editor: a warning', () => {
  const m = describeCommandResult(testsResult('passed', '2 passed', { applied: false }));
  assert.equal(m?.level, 'warning');
  assert.match(m?.text ?? '', /ready for test_calc\.py \(not applied\)/);
});

test('no tests offered: a warning with the server\'s reason; cancelled: information', () => {
  const none = describeCommandResult({ framework: 'pytest', testFile: 'file:///p/tests/test_a.py', offered: false, reason: 'the model wrote no test', raw: '' });
  assert.deepEqual(none, { level: 'warning', text: 'nearcode: no unit tests offered: the model wrote no test' });
  // A cancelled run carries no fields that say which command it was: the command id does.
  const cancelled = describeCommandResult({ offered: false, reason: 'cancelled' }, 'nearcode.generateTests');
  assert.deepEqual(cancelled, { level: 'info', text: 'nearcode: unit tests cancelled' });
});

test('docstrings: inserted, not offered, cancelled', () => {
  const base = { style: 'google', symbol: 'scale', params: ['values', 'factor'], finishReason: 'stop', signatureCheck: {} };
  assert.deepEqual(describeCommandResult({ ...base, offered: true, applied: true, docstring: '"""…"""' }), {
    level: 'info',
    text: 'nearcode: docstring for scale inserted (google style)',
  });
  const refused = describeCommandResult({ ...base, offered: false, applied: false, reason: 'undocumented parameters: factor' });
  assert.deepEqual(refused, { level: 'warning', text: 'nearcode: no docstring for scale offered: undocumented parameters: factor' });
  const cancelled = describeCommandResult({ offered: false, applied: false, reason: 'cancelled' }, 'nearcode.generateDocstring');
  assert.deepEqual(cancelled, { level: 'info', text: 'nearcode: docstring cancelled' });
  assert.equal(describeCommandResult({ ...base, offered: true, applied: false, docstring: 'x' })?.level, 'warning');
});

test('cloud answer: what was sent where, and the answer to open beside unless it was applied', () => {
  const sent = {
    sent: true, applied: false, text: 'It adds two numbers.', destination: 'https://api.example.com/v1/chat/completions',
    model: 'm', task: 'explain', bytes: 812, redactions: { aws_key: 1, password: 1 }, redactedLines: [3], withheldFiles: ['.env'],
    auditLog: '/home/me/.local/state/nearcode/cloud-audit.jsonl',
  };
  assert.deepEqual(describeCommandResult(sent, 'nearcode.askCloud'), {
    level: 'info',
    text: 'nearcode: the cloud model answered (explain): sent 812 bytes to https://api.example.com/v1/chat/completions (2 secrets redacted, 1 file withheld)',
    detail: 'It adds two numbers.',
    detailLanguage: 'markdown',
  });
  const applied = describeCommandResult({ ...sent, task: 'improve', applied: true, redactions: {}, withheldFiles: [] });
  assert.equal(applied?.detail, undefined);
  assert.match(applied?.text ?? '', /\(improve\): sent 812 bytes to \S+; applied to the editor$/);
});

test('cloud preview: nothing sent, the payload opens as JSON', () => {
  const m = describeCommandResult({ sent: false, destination: 'https://x/v1/chat/completions', bytes: 1, redactions: {}, withheldFiles: [], body: '{"model":"m"}' });
  assert.deepEqual(m, {
    level: 'info',
    text: 'nearcode: would send 1 byte to https://x/v1/chat/completions; nothing was sent',
    detail: '{"model":"m"}',
    detailLanguage: 'json',
  });
});

test('generic results: status / outcome with summary / message, level from the outcome', () => {
  assert.deepEqual(describeCommandResult({ status: 'refused', message: 'nearcode: privacyMode is local-only' }), {
    level: 'warning',
    text: 'nearcode: refused: privacyMode is local-only',
  });
  assert.deepEqual(describeCommandResult({ outcome: 'error', summary: 'exit code 2' }), { level: 'error', text: 'nearcode: error: exit code 2' });
  assert.deepEqual(describeCommandResult({ message: 'nearcode: done' }), { level: 'info', text: 'nearcode: done' });
  assert.deepEqual(describeCommandResult({ offered: false, reason: 'cancelled' }), { level: 'info', text: 'nearcode: suggestion cancelled' });
});

test('long or multi-line text is cut to one short line', () => {
  const m = describeCommandResult({ outcome: 'failed', summary: `line one\nline two ${'x'.repeat(400)}` });
  assert.ok(m && m.text.length <= 200 && !m.text.includes('\n') && m.text.endsWith('…'));
});

test('levels', () => {
  assert.equal(levelOf('passed'), 'info');
  assert.equal(levelOf('not run'), 'info');
  assert.equal(levelOf(undefined), 'info');
  assert.equal(levelOf('failed'), 'warning');
  assert.equal(levelOf('Refused'), 'warning');
  assert.equal(levelOf('error'), 'error');
});
