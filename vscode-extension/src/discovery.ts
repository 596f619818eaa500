// Finding the `nearcode` executable. Plain module (no `vscode` import) so that it is unit-tested
// with Node's test runner; the file system is reached through the `FileProbe` it is given.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export type ServerSource = 'setting' | 'workspace-venv' | 'path';

export interface FoundServer {
  command: string;
  source: ServerSource;
}

export interface DiscoveryInput {
  /** `nearcode.serverPath`; empty means "look for it". */
  configuredPath?: string;
  /** Workspace folder paths, in order. */
  workspaceFolders: readonly string[];
  /** The PATH environment variable. */
  envPath?: string;
  platform?: NodeJS.Platform;
  homeDir?: string;
  /** Returns true when `p` is an executable regular file. */
  isExecutable?: (p: string) => boolean;
}

export interface DiscoveryResult {
  found?: FoundServer;
  /** Every path looked at, in order, for the log and the "not found" message. */
  tried: string[];
  /** Set when `nearcode.serverPath` is given but unusable: no fallback then. */
  error?: string;
}

export const INSTALL_HINT =
  'Install it from a checkout of the nearcode repository: "make run" (creates .venv/bin/nearcode), or ' +
  '"make wheel" and then, in any virtual environment, "pip install dist/nearcode-*.whl" and ' +
  '"nearcode model install"; or set nearcode.serverPath.';

export function defaultIsExecutable(p: string): boolean {
  try {
    const st = fs.statSync(p);
    if (!st.isFile()) return false;
    if (process.platform === 'win32') return true;
    fs.accessSync(p, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** `~`, `${workspaceFolder}` and `${env:NAME}` in a configured path; relative paths are taken
 *  from the first workspace folder. */
export function expandConfiguredPath(
  value: string,
  workspaceFolders: readonly string[],
  homeDir: string = os.homedir(),
  env: NodeJS.ProcessEnv = process.env,
  pathModule: typeof path.posix = path,
): string {
  let p = value.trim();
  const ws = workspaceFolders[0] ?? '';
  p = p.replace(/\$\{workspaceFolder\}/g, ws);
  p = p.replace(/\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => env[name] ?? '');
  if (p === '~') p = homeDir;
  else if (p.startsWith('~/') || p.startsWith('~\\')) p = pathModule.join(homeDir, p.slice(2));
  if (!pathModule.isAbsolute(p) && ws && (p.includes('/') || p.includes('\\'))) {
    p = pathModule.join(ws, p);
  }
  return p;
}

export function venvCandidates(folder: string, platform: NodeJS.Platform): string[] {
  const pathModule = platform === 'win32' ? path.win32 : path.posix;
  const out: string[] = [];
  for (const venv of ['.venv', 'venv']) {
    if (platform === 'win32') {
      out.push(pathModule.join(folder, venv, 'Scripts', 'nearcode.exe'));
    } else {
      out.push(pathModule.join(folder, venv, 'bin', 'nearcode'));
    }
  }
  return out;
}

export function pathCandidates(envPath: string | undefined, platform: NodeJS.Platform): string[] {
  if (!envPath) return [];
  const pathModule = platform === 'win32' ? path.win32 : path.posix;
  const sep = platform === 'win32' ? ';' : ':';
  const names = platform === 'win32' ? ['nearcode.exe', 'nearcode.cmd', 'nearcode'] : ['nearcode'];
  const out: string[] = [];
  const seen = new Set<string>();
  for (const dir of envPath.split(sep)) {
    if (!dir || seen.has(dir)) continue;
    seen.add(dir);
    for (const name of names) out.push(pathModule.join(dir, name));
  }
  return out;
}

/** Setting first, then the workspace's virtual environment, then PATH. */
export function findServer(input: DiscoveryInput): DiscoveryResult {
  const platform = input.platform ?? process.platform;
  const isExecutable = input.isExecutable ?? defaultIsExecutable;
  const pathModule = platform === 'win32' ? path.win32 : path.posix;
  const tried: string[] = [];

  const configured = (input.configuredPath ?? '').trim();
  if (configured) {
    const p = expandConfiguredPath(
      configured, input.workspaceFolders, input.homeDir ?? os.homedir(), process.env, pathModule);
    if (pathModule.isAbsolute(p)) {
      tried.push(p);
      if (isExecutable(p)) return { found: { command: p, source: 'setting' }, tried };
      return { tried, error: `nearcode.serverPath is "${configured}", but ${p} is not an executable file.` };
    }
    // A bare command name: look it up on PATH.
    for (const cand of pathCandidates(input.envPath, platform)) {
      const c = pathModule.join(pathModule.dirname(cand), p);
      if (tried.includes(c)) continue;
      tried.push(c);
      if (isExecutable(c)) return { found: { command: c, source: 'setting' }, tried };
    }
    return { tried, error: `nearcode.serverPath is "${configured}", which is not on PATH.` };
  }

  for (const folder of input.workspaceFolders) {
    for (const cand of venvCandidates(folder, platform)) {
      tried.push(cand);
      if (isExecutable(cand)) return { found: { command: cand, source: 'workspace-venv' }, tried };
    }
  }
  for (const cand of pathCandidates(input.envPath, platform)) {
    tried.push(cand);
    if (isExecutable(cand)) return { found: { command: cand, source: 'path' }, tried };
  }
  return { tried };
}

export function notFoundMessage(result: DiscoveryResult): string {
  if (result.error) return `nearcode: ${result.error} ${INSTALL_HINT}`;
  return `nearcode: the language server was not found (not in the workspace's .venv or venv, not on PATH). ${INSTALL_HINT}`;
}
