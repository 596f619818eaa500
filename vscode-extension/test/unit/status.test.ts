import assert from 'node:assert/strict';
import { test } from 'node:test';

import { formatLatency, mergeStatus, SERVER_STATES, shortModelName, statusView } from '../../src/status';

const ready = { state: 'ready', engine: 'llamacpp', model: 'qwen2.5-coder-0.5b-instruct-q4_k_m', lastLatencyMs: 412, localOnly: true };

test('ready: engine/model, latency and the local-only badge in the text', () => {
  const v = statusView({ phase: 'running', server: ready });
  assert.equal(v.state, 'ready');
  assert.equal(v.text, '$(check) nearcode llamacpp/qwen2.5-coder-0.5b · 412 ms · $(lock) local');
  assert.match(v.tooltip, /^nearcode: ready/);
  assert.match(v.tooltip, /model: qwen2.5-coder-0.5b-instruct-q4_k_m/);
  assert.match(v.tooltip, /local only/);
  assert.equal(v.background, undefined);
});

test('each server state has its own icon', () => {
  const texts = new Set<string>();
  for (const state of SERVER_STATES) {
    const v = statusView({ phase: 'running', server: { ...ready, state } });
    assert.equal(v.state, state);
    texts.add(v.text.split(' ')[0]);
  }
  assert.equal(texts.size, SERVER_STATES.length);
  assert.equal(statusView({ phase: 'running', server: { ...ready, state: 'error', message: 'daemon died' } }).background,
    'statusBarItem.errorBackground');
  assert.match(statusView({ phase: 'running', server: { ...ready, state: 'error', message: 'daemon died' } }).tooltip,
    /error \(daemon died\)/);
});

test('an unknown or missing server state while running reads as loading', () => {
  assert.equal(statusView({ phase: 'running', server: {} }).state, 'loading');
  assert.equal(statusView({ phase: 'running', server: { state: 'dreaming' } }).state, 'loading');
});

test('client phases: starting is loading; not found and failed are errors; stopped is off', () => {
  assert.equal(statusView({ phase: 'starting', server: {} }).state, 'loading');
  const nf = statusView({ phase: 'not-found', server: {} });
  assert.equal(nf.state, 'error');
  assert.match(nf.tooltip, /not found/);
  assert.equal(statusView({ phase: 'failed', server: ready }).state, 'error');
  assert.equal(statusView({ phase: 'stopped', server: ready }).state, 'off');
});

test('turned off in VS Code (globally or for the language) shows off, no latency', () => {
  const g = statusView({ phase: 'running', server: ready, disabledHere: 'global' });
  assert.equal(g.state, 'off');
  assert.ok(!g.text.includes('412 ms'));
  assert.match(g.tooltip, /turned off/);
  const l = statusView({ phase: 'running', server: ready, disabledHere: 'language', languageId: 'markdown' });
  assert.match(l.tooltip, /off for markdown/);
});

test('cloud allowed: no lock badge', () => {
  const v = statusView({ phase: 'running', server: { ...ready, localOnly: false, cloudAllowed: true } });
  assert.ok(!v.text.includes('$(lock)'));
  assert.ok(v.text.includes('$(unlock) cloud allowed'));
  assert.match(v.tooltip, /cloud allowed/);
  assert.equal(v.privacy, 'cloud-allowed');
});

test('a daemon that sends prompts off the machine is its own state, never "local"', () => {
  const remote = {
    ...ready, engine: 'openai', localOnly: false, cloudAllowed: false, codeLeavesMachine: true,
    promptDestination: 'https://llm.example.com/v1',
  };
  const v = statusView({ phase: 'running', server: remote });
  assert.equal(v.privacy, 'remote');
  assert.ok(v.text.includes('$(cloud-upload) remote') && !v.text.includes('$(lock)'), v.text);
  assert.match(v.tooltip, /code leaves this machine: the daemon sends prompts to https:\/\/llm\.example\.com\/v1/);
  assert.equal(v.background, 'statusBarItem.warningBackground');
  // Even if a (stale) localOnly says true, the destination wins.
  assert.equal(statusView({ phase: 'running', server: { ...remote, localOnly: true } }).privacy, 'remote');
});

test('before the daemon has answered, no badge claims "local" (nor "remote")', () => {
  for (const server of [
    { state: 'loading' },
    { state: 'loading', localOnly: false, cloudAllowed: false, codeLeavesMachine: false, promptDestination: '' },
  ]) {
    const v = statusView({ phase: 'running', server });
    assert.equal(v.privacy, 'unknown');
    assert.ok(!v.text.includes('$(lock)') && !v.text.includes('remote'), v.text);
    assert.match(v.tooltip, /not known yet/);
  }
});

test('model names are shortened; latency formatted', () => {
  assert.equal(shortModelName('qwen2.5-coder-0.5b-instruct-q4_k_m'), 'qwen2.5-coder-0.5b');
  assert.equal(shortModelName('/models/Qwen2.5-Coder-1.5B-Instruct-Q4_K_M.gguf'), 'Qwen2.5-Coder-1.5B');
  assert.equal(shortModelName('phi-3-mini-f16.gguf'), 'phi-3-mini');
  assert.equal(shortModelName(undefined), '');
  assert.equal(formatLatency(412.4), '412 ms');
  assert.equal(formatLatency(1520), '1.5 s');
  assert.equal(formatLatency(null), '');
  assert.equal(formatLatency(-1), '');
});

test('notifications merge: missing fields keep their value, message does not stick', () => {
  const a = mergeStatus({}, { ...ready, message: 'warming up' });
  const b = mergeStatus(a, { state: 'working' });
  assert.equal(b.state, 'working');
  assert.equal(b.model, ready.model);
  assert.equal(b.lastLatencyMs, 412);
  assert.equal(b.message, undefined);
  assert.equal(mergeStatus(b, { state: 'ready', lastLatencyMs: 90 }).lastLatencyMs, 90);
});
