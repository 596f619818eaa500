import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  configurationFor,
  DEFAULTS,
  didChangeConfigurationParams,
  initializationOptions,
  isLanguageEnabled,
  needsRestart,
  readSettings,
  toggleLanguage,
} from '../../src/settings';

const reader = (values: Record<string, unknown>) => (key: string) => values[key];

test('no settings: the protocol defaults', () => {
  const s = readSettings(reader({}));
  assert.deepEqual(s.server, DEFAULTS);
  assert.deepEqual(initializationOptions(s), {
    enable: true, disabledLanguages: [], debounceMs: 0, maxLines: 6, model: '', engine: 'auto',
    privacyMode: 'local-only', cloudEndpoint: '', logDocumentText: false, speculate: true, alternatives: 3,
    insight: true,
  });
  assert.equal(s.serverPath, '');
  assert.deepEqual(s.enabledLanguages, []);
});

test('every nearcode.* setting reaches the server under its protocol key', () => {
  const s = readSettings(reader({
    enable: false, disabledLanguages: ['Markdown', ' plaintext ', 'markdown', ''], debounceMs: 75.4, maxLines: 3,
    model: ' qwen2.5-coder-1.5b ', engine: 'vllm', privacyMode: 'cloud-allowed', cloudEndpoint: 'https://api.example/v1',
    logDocumentText: true, speculate: false, alternatives: 2, insight: false, serverPath: '/x/nearcode',
    enabledLanguages: ['python'],
  }));
  assert.deepEqual(initializationOptions(s), {
    enable: false, disabledLanguages: ['markdown', 'plaintext'], debounceMs: 75, maxLines: 3, model: 'qwen2.5-coder-1.5b',
    engine: 'vllm', privacyMode: 'cloud-allowed', cloudEndpoint: 'https://api.example/v1', logDocumentText: true,
    speculate: false, alternatives: 2, insight: false,
  });
  // Client-only settings are not sent.
  const sent = initializationOptions(s) as unknown as Record<string, unknown>;
  assert.equal(sent.serverPath, undefined);
  assert.equal(sent.enabledLanguages, undefined);
  assert.deepEqual(didChangeConfigurationParams(s), { settings: { nearcode: initializationOptions(s) } });
});

test('bad values fall back to defaults or are clamped', () => {
  const s = readSettings(reader({
    enable: 'yes', engine: 'gpt', privacyMode: 'everything', debounceMs: -5, maxLines: 1000, model: 42,
    disabledLanguages: 'python', alternatives: 9,
  }));
  assert.equal(s.server.alternatives, 3);
  assert.equal(s.server.enable, true);
  assert.equal(s.server.engine, 'auto');
  assert.equal(s.server.privacyMode, 'local-only');
  assert.equal(s.server.debounceMs, 0);
  assert.equal(s.server.maxLines, 50);
  assert.equal(s.server.model, '');
  assert.deepEqual(s.server.disabledLanguages, []);
  assert.equal(readSettings(reader({ maxLines: Number.NaN })).server.maxLines, 6);
});

test('languages: global switch, allow list, deny list', () => {
  const all = readSettings(reader({}));
  assert.ok(isLanguageEnabled(all, 'python'));
  assert.ok(!isLanguageEnabled(readSettings(reader({ enable: false })), 'python'));
  const allow = readSettings(reader({ enabledLanguages: ['python', 'go'] }));
  assert.ok(isLanguageEnabled(allow, 'Python'));
  assert.ok(!isLanguageEnabled(allow, 'rust'));
  const deny = readSettings(reader({ enabledLanguages: ['python'], disabledLanguages: ['python'] }));
  assert.ok(!isLanguageEnabled(deny, 'python'));
});

test('toggle for this language adds and removes it', () => {
  assert.deepEqual(toggleLanguage([], 'Python'), ['python']);
  assert.deepEqual(toggleLanguage(['go', 'python'], 'python'), ['go']);
});

test('workspace/configuration answers for the nearcode section and its keys', () => {
  const s = readSettings(reader({ maxLines: 2 }));
  assert.equal((configurationFor(s, 'nearcode') as { maxLines: number }).maxLines, 2);
  assert.equal(configurationFor(s, 'nearcode.maxLines'), 2);
  assert.equal(configurationFor(s, 'nearcode.unknown'), null);
  assert.deepEqual(configurationFor(s, undefined), { nearcode: initializationOptions(s) });
  assert.equal(configurationFor(s, 'editor'), undefined);
});

test('only a new server path needs a new process', () => {
  const a = readSettings(reader({ serverPath: '/a' }));
  assert.ok(needsRestart(a, readSettings(reader({ serverPath: '/b' }))));
  assert.ok(!needsRestart(a, readSettings(reader({ serverPath: '/a', model: 'other', engine: 'vllm' }))));
});
