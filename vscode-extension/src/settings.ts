// `nearcode.*` settings of VS Code mapped to the language server's settings (docs/protocol.md,
// "Settings"). Plain module: no `vscode` import, unit-tested with Node's test runner.

import { SERVER_SETTING_DEFAULTS, SERVER_SETTING_SPECS, type ServerSettings } from './protocol.generated';

export type { ServerSettings } from './protocol.generated';
export type Engine = ServerSettings['engine'];
export type PrivacyMode = ServerSettings['privacyMode'];

/** The extension's own view of its settings (server settings plus client-only ones). */
export interface ExtensionSettings {
  serverPath: string;
  enabledLanguages: string[];
  server: ServerSettings;
}

/** Reads one key of the `nearcode` section (like `WorkspaceConfiguration.get`). */
export type SettingReader = (key: string) => unknown;

/** The server's defaults, generated from its settings model (nearcode/shared/protocol/settings.py). */
export const DEFAULTS: ServerSettings = SERVER_SETTING_DEFAULTS;

const ENGINES = SERVER_SETTING_SPECS.engine.enum;
const PRIVACY = SERVER_SETTING_SPECS.privacyMode.enum;
const DEBOUNCE = SERVER_SETTING_SPECS.debounceMs;
const MAX_LINES = SERVER_SETTING_SPECS.maxLines;
const ALTERNATIVES = SERVER_SETTING_SPECS.alternatives;

function asBool(v: unknown, dflt: boolean): boolean {
  return typeof v === 'boolean' ? v : dflt;
}

function asInt(v: unknown, dflt: number, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) return dflt;
  return Math.min(max, Math.max(min, Math.round(v)));
}

function asString(v: unknown, dflt: string): string {
  return typeof v === 'string' ? v.trim() : dflt;
}

function asEnum<T extends string>(v: unknown, allowed: readonly T[], dflt: T): T {
  return typeof v === 'string' && (allowed as readonly string[]).includes(v) ? (v as T) : dflt;
}

/** Language ids: trimmed, lower-cased, no empties, no duplicates, order kept. */
export function asLanguageList(v: unknown): string[] {
  if (!Array.isArray(v)) return [];
  const out: string[] = [];
  for (const item of v) {
    if (typeof item !== 'string') continue;
    const id = item.trim().toLowerCase();
    if (id && !out.includes(id)) out.push(id);
  }
  return out;
}

export function readSettings(get: SettingReader): ExtensionSettings {
  const server: ServerSettings = {
    enable: asBool(get('enable'), DEFAULTS.enable),
    disabledLanguages: asLanguageList(get('disabledLanguages')),
    debounceMs: asInt(get('debounceMs'), DEFAULTS.debounceMs, DEBOUNCE.minimum, DEBOUNCE.maximum),
    maxLines: asInt(get('maxLines'), DEFAULTS.maxLines, MAX_LINES.minimum, MAX_LINES.maximum),
    model: asString(get('model'), DEFAULTS.model),
    engine: asEnum(get('engine'), ENGINES, DEFAULTS.engine),
    privacyMode: asEnum(get('privacyMode'), PRIVACY, DEFAULTS.privacyMode),
    cloudEndpoint: asString(get('cloudEndpoint'), DEFAULTS.cloudEndpoint),
    logDocumentText: asBool(get('logDocumentText'), DEFAULTS.logDocumentText),
    speculate: asBool(get('speculate'), DEFAULTS.speculate),
    alternatives: asInt(get('alternatives'), DEFAULTS.alternatives, ALTERNATIVES.minimum, ALTERNATIVES.maximum),
    insight: asBool(get('insight'), DEFAULTS.insight),
  };
  return {
    serverPath: asString(get('serverPath'), ''),
    enabledLanguages: asLanguageList(get('enabledLanguages')),
    server,
  };
}

/** Whether completions are wanted for a language: global switch, then the allow list (empty
 *  means every language), then the deny list. */
export function isLanguageEnabled(settings: ExtensionSettings, languageId: string): boolean {
  if (!settings.server.enable) return false;
  const id = languageId.toLowerCase();
  if (settings.enabledLanguages.length > 0 && !settings.enabledLanguages.includes(id)) return false;
  return !settings.server.disabledLanguages.includes(id);
}

/** The `initializationOptions` sent at start. */
export function initializationOptions(settings: ExtensionSettings): ServerSettings {
  return { ...settings.server, disabledLanguages: [...settings.server.disabledLanguages] };
}

/** The `workspace/didChangeConfiguration` params sent on change. */
export function didChangeConfigurationParams(settings: ExtensionSettings): { settings: { nearcode: ServerSettings } } {
  return { settings: { nearcode: initializationOptions(settings) } };
}

/** Answer to a `workspace/configuration` item for `section` (the server may pull). */
export function configurationFor(settings: ExtensionSettings, section: string | undefined): unknown {
  const s = initializationOptions(settings);
  if (!section) return { nearcode: s };
  if (section === 'nearcode') return s;
  if (section.startsWith('nearcode.')) {
    const key = section.slice('nearcode.'.length) as keyof ServerSettings;
    return key in s ? s[key] : null;
  }
  return undefined;
}

/** Settings whose change needs the server process restarted, not just told. */
export function needsRestart(before: ExtensionSettings, after: ExtensionSettings): boolean {
  return before.serverPath !== after.serverPath;
}

/** New disabledLanguages after "toggle for this language". */
export function toggleLanguage(disabled: readonly string[], languageId: string): string[] {
  const id = languageId.toLowerCase();
  return disabled.includes(id) ? disabled.filter((l) => l !== id) : [...disabled, id];
}
