// The status bar item's content from the server's `nearcode/status` notifications and the
// client's own state. Plain module: no `vscode` import, unit-tested with Node's test runner.

import type { StatusParams } from './protocol.generated';

export type ServerState = StatusParams['state'];
export const SERVER_STATES: readonly ServerState[] = ['ready', 'loading', 'working', 'error', 'off'];

/** `nearcode/status` (generated StatusParams), as merged from partial or older servers' messages. */
export type StatusNotification = Partial<Omit<StatusParams, 'state' | 'lastLatencyMs'>> & {
  state?: string;
  lastLatencyMs?: number | null;
};

/** What the client knows besides the server's word. */
export type ClientPhase = 'starting' | 'running' | 'stopped' | 'not-found' | 'failed';

export interface StatusSnapshot {
  phase: ClientPhase;
  server: StatusNotification;
  /** Completions turned off (globally or for the active editor's language) in VS Code. */
  disabledHere?: 'global' | 'language';
  languageId?: string;
}

/** Where code goes, as the server found out from the daemon (never assumed from a setting). */
export type PrivacyKind = 'local' | 'cloud-allowed' | 'remote' | 'unknown';

export interface StatusView {
  state: ServerState;
  text: string;
  tooltip: string;
  privacy: PrivacyKind;
  /** A ThemeColor id for the item's background, for states that need attention. */
  background?: 'statusBarItem.errorBackground' | 'statusBarItem.warningBackground';
}

const ICONS: Record<ServerState, string> = {
  ready: '$(check)',
  loading: '$(loading~spin)',
  working: '$(sync~spin)',
  error: '$(error)',
  off: '$(circle-slash)',
};

export function normalizeState(s: unknown): ServerState | undefined {
  return typeof s === 'string' && (SERVER_STATES as readonly string[]).includes(s) ? (s as ServerState) : undefined;
}

/** "qwen2.5-coder-0.5b-instruct-q4_k_m" -> "qwen2.5-coder-0.5b"; a path -> its file stem. */
export function shortModelName(model: string | undefined): string {
  if (!model) return '';
  let m = model.replace(/\\/g, '/');
  m = m.slice(m.lastIndexOf('/') + 1);
  m = m.replace(/\.gguf$/i, '');
  m = m.replace(/[-_.](q\d(_[a-z0-9]+)*|f16|f32|bf16|fp16)$/i, '');
  m = m.replace(/[-_]instruct$/i, '');
  return m;
}

export function formatLatency(ms: number | null | undefined): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Merges a notification into what is known: missing fields keep their last value. */
export function mergeStatus(prev: StatusNotification, next: StatusNotification): StatusNotification {
  const out: StatusNotification = { ...prev };
  for (const [k, v] of Object.entries(next)) {
    if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  }
  if (next.message === undefined) delete out.message;
  return out;
}

/** The privacy badge: "remote" (the daemon sends every prompt off this machine) is its own state,
 *  shown with a warning background; "local" only when the server says nothing leaves the machine. */
export function privacyOf(s: StatusNotification): { kind: PrivacyKind; badge: string; line: string } {
  if (s.codeLeavesMachine === true) {
    const where = s.promptDestination || 'a remote server';
    return { kind: 'remote', badge: '$(cloud-upload) remote', line: `code leaves this machine: the daemon sends prompts to ${where}` };
  }
  if (s.localOnly === true) {
    return { kind: 'local', badge: '$(lock) local', line: 'local only: no code leaves this machine' };
  }
  // An older server has no cloudAllowed: there localOnly false meant cloud allowed.
  if (s.cloudAllowed === true || (s.cloudAllowed === undefined && s.localOnly === false)) {
    return { kind: 'cloud-allowed', badge: '$(unlock) cloud allowed',
      line: 'cloud allowed: explicit cloud actions may send a selection off this machine' };
  }
  return { kind: 'unknown', badge: '', line: 'where prompts go: not known yet (no answer from the daemon)' };
}

export function statusView(snap: StatusSnapshot): StatusView {
  const s = snap.server;
  let state: ServerState;
  let detail = s.message ?? '';
  switch (snap.phase) {
    case 'not-found':
      state = 'error';
      detail = detail || 'language server not found';
      break;
    case 'failed':
      state = 'error';
      detail = detail || 'language server stopped';
      break;
    case 'stopped':
      state = 'off';
      detail = detail || 'language server stopped';
      break;
    case 'starting':
      state = 'loading';
      detail = detail || 'starting the language server';
      break;
    default:
      state = normalizeState(s.state) ?? 'loading';
  }
  if (snap.disabledHere && state !== 'error') {
    state = 'off';
    detail = snap.disabledHere === 'global'
      ? 'completions turned off'
      : `completions turned off for ${snap.languageId ?? 'this language'}`;
  }

  const parts = [`${ICONS[state]} nearcode`];
  const model = shortModelName(s.model);
  const engineModel = [s.engine, model].filter(Boolean).join('/');
  if (engineModel) parts.push(engineModel);
  const latency = formatLatency(s.lastLatencyMs);
  if (state !== 'off' && state !== 'error' && latency) parts.push(latency);
  const privacy = privacyOf(s);
  if (privacy.badge) parts.push(privacy.badge);
  const text = parts.join(' · ').replace(' · ', ' ');

  const lines = [
    `nearcode: ${state}${detail ? ` (${detail})` : ''}`,
    `engine: ${s.engine || 'unknown'}`,
    `model: ${s.model || model || 'unknown'}`,
    `last completion: ${latency || 'none yet'}`,
    privacy.line,
    'Click for options',
  ];
  const view: StatusView = { state, text, tooltip: lines.join('\n'), privacy: privacy.kind };
  if (state === 'error') view.background = 'statusBarItem.errorBackground';
  else if (privacy.kind === 'remote') view.background = 'statusBarItem.warningBackground';
  return view;
}
