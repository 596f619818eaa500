// `nearcode.*` settings of VS Code mapped to the language server's settings (docs/protocol.md,
// "Settings"). Plain module: no `vscode` import, unit-tested with Node's test runner.
//
// Machine-scoped settings (privacy mode, cloud endpoint, whether generated tests may run, engine,
// model, logging of document text: `scope: "machine"` in the generated SERVER_SETTING_SPECS) decide
// where code goes and what runs. A repository's own .vscode/settings.json (or a workspace file)
// must never set them: they are read with `inspect()`, and only the user's own (global) value or
// the default counts. The declared scope in package.json says the same to VS Code; this does not
// rely on it.

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

/** What `WorkspaceConfiguration.inspect(key)` reports: the value at each level. */
export interface SettingLevels {
  defaultValue?: unknown;
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
  defaultLanguageValue?: unknown;
  globalLanguageValue?: unknown;
  workspaceLanguageValue?: unknown;
  workspaceFolderLanguageValue?: unknown;
}

/** Inspects one key of the `nearcode` section (like `WorkspaceConfiguration.inspect`). */
export type SettingInspector = (key: string) => SettingLevels | undefined;

/** Server settings a workspace may never set (generated from the server's model). */
export const MACHINE_KEYS: ReadonlySet<string> = new Set(
  Object.entries(SERVER_SETTING_SPECS)
    .filter(([, spec]) => (spec as { scope?: string }).scope === 'machine')
    .map(([key]) => key),
);

/** An inspector over plain user-level values (tests, and callers without levels). */
export function userValues(values: Record<string, unknown>): SettingInspector {
  return (key) => (key in values ? { globalValue: values[key] } : {});
}

/** The value that counts: for machine keys the user's own or the default, never a workspace's. */
export function effectiveValue(key: string, levels: SettingLevels | undefined): unknown {
  if (!levels) return undefined;
  if (MACHINE_KEYS.has(key)) return levels.globalValue ?? levels.defaultValue;
  return levels.workspaceFolderValue ?? levels.workspaceValue ?? levels.globalValue ?? levels.defaultValue;
}

/** Machine keys the workspace (or a workspace folder) tried to set: ignored, and worth telling the user. */
export function ignoredWorkspaceSettings(inspect: SettingInspector): string[] {
  const ignored: string[] = [];
  for (const key of MACHINE_KEYS) {
    const levels = inspect(key);
    if (!levels) continue;
    const fromWorkspace = [levels.workspaceValue, levels.workspaceFolderValue, levels.workspaceLanguageValue,
      levels.workspaceFolderLanguageValue].some((v) => v !== undefined);
    if (fromWorkspace) ignored.push(key);
  }
  return ignored;
}

/** The server's defaults, generated from its settings model (nearcode/shared/protocol/settings.py). */
export const DEFAULTS: ServerSettings = SERVER_SETTING_DEFAULTS;

const ENGINES = SERVER_SETTING_SPECS.engine.enum;
const PRIVACY = SERVER_SETTING_SPECS.privacyMode.enum;
const RUN_TESTS = SERVER_SETTING_SPECS.runGeneratedTests.enum;
const CONTEXT = SERVER_SETTING_SPECS.context.enum;
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

export function readSettings(inspect: SettingInspector): ExtensionSettings {
  const get = (key: string) => effectiveValue(key, inspect(key));
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
    runGeneratedTests: asEnum(get('runGeneratedTests'), RUN_TESTS, DEFAULTS.runGeneratedTests),
    context: asEnum(get('context'), CONTEXT, DEFAULTS.context),
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
