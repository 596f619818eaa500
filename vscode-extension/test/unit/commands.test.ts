import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { SERVER_COMMANDS } from '../../src/protocol.generated';

// vscode-languageclient registers every command the server lists in executeCommandProvider as a
// VS Code command; an extension command of the same name makes the client fail to start
// ("command 'nearcode.showContext' already exists"), so the two sets must stay apart.
test('no command the extension contributes is also a server command', () => {
  const manifest = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as {
    contributes: { commands: { command: string }[] };
  };
  const extensionCommands = new Set(manifest.contributes.commands.map((c) => c.command));
  const source = readFileSync(join(__dirname, '..', '..', '..', 'src', 'extension.ts'), 'utf8');
  for (const match of source.matchAll(/reg\('([^']+)'/g)) extensionCommands.add(match[1]);
  assert.ok(extensionCommands.size > 5, 'the manifest and extension.ts were read');
  const clashes = Object.values(SERVER_COMMANDS).filter((name) => extensionCommands.has(name));
  assert.deepEqual(clashes, []);
});
