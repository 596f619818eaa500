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

export interface StatusView {
  state: ServerState;
  text: string;
  tooltip: string;
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
  const localOnly = s.localOnly !== false;
  if (localOnly) parts.push('$(lock) local');
  const text = parts.join(' · ').replace(' · ', ' ');

  const lines = [
    `nearcode: ${state}${detail ? ` (${detail})` : ''}`,
    `engine: ${s.engine || 'unknown'}`,
    `model: ${s.model || model || 'unknown'}`,
    `last completion: ${latency || 'none yet'}`,
    localOnly ? 'local only: no code leaves this machine' : 'cloud allowed: some requests may leave this machine',
    'Click for options',
  ];
  const view: StatusView = { state, text, tooltip: lines.join('\n') };
  if (state === 'error') view.background = 'statusBarItem.errorBackground';
  return view;
}
