import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';

import { expandConfiguredPath, findServer, INSTALL_HINT, notFoundMessage } from '../../src/discovery';

const only = (...ok: string[]) => (p: string) => ok.includes(p);

test('a configured absolute path wins over the venv and PATH', () => {
  const r = findServer({
    configuredPath: '/opt/nc/bin/nearcode',
    workspaceFolders: ['/ws'],
    envPath: '/usr/bin',
    platform: 'linux',
    isExecutable: only('/opt/nc/bin/nearcode', '/ws/.venv/bin/nearcode', '/usr/bin/nearcode'),
  });
  assert.deepEqual(r.found, { command: '/opt/nc/bin/nearcode', source: 'setting' });
});

test('a configured path that is missing is an error, with no silent fallback', () => {
  const r = findServer({
    configuredPath: '/nope/nearcode',
    workspaceFolders: ['/ws'],
    envPath: '/usr/bin',
    platform: 'linux',
    isExecutable: only('/usr/bin/nearcode'),
  });
  assert.equal(r.found, undefined);
  assert.match(r.error ?? '', /nearcode\.serverPath.*\/nope\/nearcode/);
  assert.match(notFoundMessage(r), /pip install dist\/nearcode-\*\.whl/);
});

test('~, ${workspaceFolder} and relative paths in the setting are expanded', () => {
  assert.equal(expandConfiguredPath('~/bin/nearcode', ['/ws'], '/home/u', {}, path.posix), '/home/u/bin/nearcode');
  assert.equal(expandConfiguredPath('${workspaceFolder}/.venv/bin/nearcode', ['/ws'], '/h', {}, path.posix), '/ws/.venv/bin/nearcode');
  assert.equal(expandConfiguredPath('tools/nearcode', ['/ws'], '/h', {}, path.posix), '/ws/tools/nearcode');
  assert.equal(expandConfiguredPath('${env:NC_HOME}/nearcode', [], '/h', { NC_HOME: '/nc' }, path.posix), '/nc/nearcode');
  const r = findServer({
    configuredPath: '~/bin/nearcode', workspaceFolders: [], envPath: '', platform: 'linux', homeDir: '/home/u',
    isExecutable: only('/home/u/bin/nearcode'),
  });
  assert.equal(r.found?.command, '/home/u/bin/nearcode');
});

test('a bare command name in the setting is looked up on PATH', () => {
  const r = findServer({
    configuredPath: 'nearcode-dev', workspaceFolders: [], envPath: '/a:/b', platform: 'linux',
    isExecutable: only('/b/nearcode-dev'),
  });
  assert.deepEqual(r.found, { command: '/b/nearcode-dev', source: 'setting' });
});

test('the workspace .venv comes before venv and before PATH', () => {
  const exe = only('/ws/venv/bin/nearcode', '/ws/.venv/bin/nearcode', '/usr/bin/nearcode');
  const r = findServer({ workspaceFolders: ['/ws'], envPath: '/usr/bin', platform: 'linux', isExecutable: exe });
  assert.deepEqual(r.found, { command: '/ws/.venv/bin/nearcode', source: 'workspace-venv' });
  const r2 = findServer({
    workspaceFolders: ['/ws'], envPath: '/usr/bin', platform: 'linux', isExecutable: only('/ws/venv/bin/nearcode', '/usr/bin/nearcode'),
  });
  assert.deepEqual(r2.found, { command: '/ws/venv/bin/nearcode', source: 'workspace-venv' });
});

test('every workspace folder is searched, in order', () => {
  const r = findServer({
    workspaceFolders: ['/a', '/b'], envPath: '', platform: 'linux', isExecutable: only('/b/.venv/bin/nearcode'),
  });
  assert.equal(r.found?.command, '/b/.venv/bin/nearcode');
  assert.deepEqual(r.tried, ['/a/.venv/bin/nearcode', '/a/venv/bin/nearcode', '/b/.venv/bin/nearcode']);
});

test('PATH is the last resort, first match wins, empty entries skipped', () => {
  const r = findServer({
    workspaceFolders: ['/ws'], envPath: '::/x:/y:/z', platform: 'linux', isExecutable: only('/y/nearcode', '/z/nearcode'),
  });
  assert.deepEqual(r.found, { command: '/y/nearcode', source: 'path' });
  assert.ok(!r.tried.includes('nearcode'));
  const dup = findServer({ workspaceFolders: [], envPath: '/x:/x:/y', platform: 'linux', isExecutable: () => false });
  assert.deepEqual(dup.tried, ['/x/nearcode', '/y/nearcode']);
});

test('nothing found: a message that says how to install', () => {
  const r = findServer({ workspaceFolders: ['/ws'], envPath: '/usr/bin', platform: 'linux', isExecutable: () => false });
  assert.equal(r.found, undefined);
  assert.equal(r.error, undefined);
  assert.deepEqual(r.tried, ['/ws/.venv/bin/nearcode', '/ws/venv/bin/nearcode', '/usr/bin/nearcode']);
  const msg = notFoundMessage(r);
  assert.ok(msg.includes(INSTALL_HINT));
  assert.match(msg, /make wheel/);
  assert.match(msg, /make run/);
});

test('Windows layout: Scripts\\nearcode.exe and ; separated PATH', () => {
  const r = findServer({
    workspaceFolders: ['C:\\ws'], envPath: 'C:\\py;C:\\tools', platform: 'win32', isExecutable: only('C:\\tools\\nearcode.exe'),
  });
  assert.equal(r.found?.command, 'C:\\tools\\nearcode.exe');
  assert.ok(r.tried.includes('C:\\ws\\.venv\\Scripts\\nearcode.exe'));
});

test('the default probe checks real files: executable yes, plain file and directory no', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nearcode-disc-'));
  try {
    const bin = path.join(dir, '.venv', 'bin');
    fs.mkdirSync(bin, { recursive: true });
    const exe = path.join(bin, 'nearcode');
    fs.writeFileSync(exe, '#!/bin/sh\n');
    fs.chmodSync(exe, 0o644);
    fs.mkdirSync(path.join(dir, 'venv', 'bin', 'nearcode'), { recursive: true });
    assert.equal(findServer({ workspaceFolders: [dir], envPath: '' }).found, undefined);
    fs.chmodSync(exe, 0o755);
    assert.deepEqual(findServer({ workspaceFolders: [dir], envPath: '' }).found, { command: exe, source: 'workspace-venv' });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
