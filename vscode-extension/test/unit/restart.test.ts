import assert from 'node:assert/strict';
import { test } from 'node:test';

import { RestartPolicy } from '../../src/restart';

test('restarts at most maxRestarts times in a row, then gives up with a message', () => {
  const p = new RestartPolicy(3, 60_000);
  let t = 0;
  for (let i = 1; i <= 3; i++) {
    p.onRunning(t);
    t += 1000;
    assert.deepEqual(p.onClosed(t), { restart: true, attempt: i });
  }
  p.onRunning(t);
  const d = p.onClosed(t + 1000);
  assert.equal(d.restart, false);
  assert.match(d.message ?? '', /4 times in a row/);
});

test('a server that dies before it ever runs also counts', () => {
  const p = new RestartPolicy(2, 60_000);
  assert.ok(p.onClosed(0).restart);
  assert.ok(p.onClosed(1).restart);
  assert.ok(!p.onClosed(2).restart);
});

test('a healthy run starts a new row', () => {
  const p = new RestartPolicy(2, 60_000);
  p.onRunning(0);
  assert.ok(p.onClosed(10).restart);
  p.onRunning(20);
  assert.ok(p.onClosed(30).restart);
  p.onRunning(40);
  const d = p.onClosed(40 + 60_000);
  assert.deepEqual(d, { restart: true, attempt: 1 });
});

test('a user restart resets the count', () => {
  const p = new RestartPolicy(1, 60_000);
  assert.ok(p.onClosed(0).restart);
  assert.ok(!p.onClosed(1).restart);
  p.reset();
  assert.equal(p.crashes, 0);
  assert.ok(p.onClosed(2).restart);
});
