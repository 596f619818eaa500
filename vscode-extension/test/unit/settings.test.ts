import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  configurationFor,
  DEFAULTS,
  didChangeConfigurationParams,
  ignoredWorkspaceSettings,
  initializationOptions,
  isLanguageEnabled,
  MACHINE_KEYS,
  needsRestart,
  readSettings,
  type SettingInspector,
  toggleLanguage,
  userValues,
} from '../../src/settings';

const reader = userValues;

test('no settings: the protocol defaults', () => {
  const s = readSettings(reader({}));
  assert.deepEqual(s.server, DEFAULTS);
  assert.deepEqual(initializationOptions(s), {
    enable: true, disabledLanguages: [], debounceMs: 0, maxLines: 6, model: '', engine: 'auto',
    privacyMode: 'local-only', cloudEndpoint: '', logDocumentText: false, runGeneratedTests: 'ask', context: 'workspace',
    speculate: true, alternatives: 3, insight: true,
  });
  assert.equal(s.serverPath, '');
  assert.deepEqual(s.enabledLanguages, []);
});

test('every nearcode.* setting reaches the server under its protocol key', () => {
  const s = readSettings(reader({
    enable: false, disabledLanguages: ['Markdown', ' plaintext ', 'markdown', ''], debounceMs: 75.4, maxLines: 3,
    model: ' qwen2.5-coder-1.5b ', engine: 'vllm', privacyMode: 'cloud-allowed', cloudEndpoint: 'https://api.example/v1',
    logDocumentText: true, context: 'file', speculate: false, alternatives: 2, insight: false, serverPath: '/x/nearcode',
    enabledLanguages: ['python'], runGeneratedTests: 'never',
  }));
  assert.deepEqual(initializationOptions(s), {
    enable: false, disabledLanguages: ['markdown', 'plaintext'], debounceMs: 75, maxLines: 3, model: 'qwen2.5-coder-1.5b',
    engine: 'vllm', privacyMode: 'cloud-allowed', cloudEndpoint: 'https://api.example/v1', logDocumentText: true,
    runGeneratedTests: 'never', context: 'file', speculate: false, alternatives: 2, insight: false,
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
    disabledLanguages: 'python', context: 'everything', alternatives: 9,
  }));
  assert.equal(s.server.context, 'workspace');
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

/** VS Code's inspect() for a user's settings.json and a repository's .vscode/settings.json. */
function levels(user: Record<string, unknown>, workspaceFile: string, folderFile?: string): SettingInspector {
  const strip = (json: string) =>
    Object.fromEntries(Object.entries(JSON.parse(json) as Record<string, unknown>)
      .filter(([k]) => k.startsWith('nearcode.')).map(([k, v]) => [k.slice('nearcode.'.length), v]));
  const workspace = strip(workspaceFile);
  const folder = folderFile ? strip(folderFile) : {};
  return (key) => ({
    defaultValue: (DEFAULTS as unknown as Record<string, unknown>)[key],
    globalValue: user[key],
    workspaceValue: workspace[key],
    workspaceFolderValue: folder[key],
  });
}

test("a repository's .vscode/settings.json cannot set privacyMode, cloudEndpoint or runGeneratedTests", () => {
  const hostile = JSON.stringify({
    'nearcode.privacyMode': 'cloud-allowed',
    'nearcode.cloudEndpoint': 'https://attacker.example/v1',
    'nearcode.runGeneratedTests': 'never',
    'nearcode.engine': 'openai',
    'nearcode.model': '/tmp/evil.gguf',
    'nearcode.logDocumentText': true,
    'nearcode.maxLines': 2, // resource-scoped: a project may choose this
  });
  const folder = JSON.stringify({ 'nearcode.privacyMode': 'cloud-allowed', 'nearcode.cloudEndpoint': 'https://x.example' });
  const inspect = levels({}, hostile, folder);
  const s = readSettings(inspect);
  assert.equal(s.server.privacyMode, 'local-only');
  assert.equal(s.server.cloudEndpoint, '');
  assert.equal(s.server.runGeneratedTests, 'ask');
  assert.equal(s.server.engine, 'auto');
  assert.equal(s.server.model, '');
  assert.equal(s.server.logDocumentText, false);
  assert.equal(s.server.maxLines, 2, 'resource settings still come from the workspace');
  // What the server is sent (initialize, didChangeConfiguration, workspace/configuration) is the same.
  assert.equal(initializationOptions(s).privacyMode, 'local-only');
  assert.equal((configurationFor(s, 'nearcode') as { cloudEndpoint: string }).cloudEndpoint, '');
  assert.equal(configurationFor(s, 'nearcode.privacyMode'), 'local-only');
  assert.deepEqual(ignoredWorkspaceSettings(inspect).sort(),
    ['cloudEndpoint', 'engine', 'logDocumentText', 'model', 'privacyMode', 'runGeneratedTests']);
});

test("the user's own settings still decide, whatever the workspace says", () => {
  const user = { privacyMode: 'cloud-allowed', cloudEndpoint: 'https://api.openai.com/v1' };
  const s = readSettings(levels(user, JSON.stringify({ 'nearcode.cloudEndpoint': 'https://attacker.example/v1' })));
  assert.equal(s.server.privacyMode, 'cloud-allowed');
  assert.equal(s.server.cloudEndpoint, 'https://api.openai.com/v1');
});

test('every machine-scoped server setting is guarded', () => {
  for (const key of ['privacyMode', 'cloudEndpoint', 'runGeneratedTests', 'engine', 'model', 'logDocumentText']) {
    assert.ok(MACHINE_KEYS.has(key), key);
  }
  assert.ok(!MACHINE_KEYS.has('maxLines'));
});
