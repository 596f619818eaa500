// A short, human-readable line for the structured results of nearcode's server commands
// (nearcode.generateDocstring, nearcode.generateTests, nearcode.askCloud,
// nearcode.previewCloudPayload), and how loudly to show it. Plain module (unit-tested).
//
// Result shapes: DocstringResult, TestsResult and CloudResult in protocol.generated.ts (generated
// from nearcode/shared/protocol/editor.py). Results arrive as JSON from any server version, so
// fields are still read defensively; anything else with status / outcome / summary / message /
// reason fields gets a generic line.

export type ResultLevel = 'info' | 'warning' | 'error';

export interface ResultMessage {
  level: ResultLevel;
  text: string;
  /** Longer text worth opening beside the editor (a cloud answer, a payload preview). */
  detail?: string;
  detailLanguage?: 'markdown' | 'json';
}

type Obj = Record<string, unknown>;

const MAX_TEXT = 200;

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function str(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() ? value.trim() : undefined;
}

function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** "failed", "error", "refused" and friends call for more than an information message. */
export function levelOf(outcome: string | undefined): ResultLevel {
  const o = (outcome ?? '').toLowerCase();
  if (/^(error|errors|errored|crashed|timeout|timed out)$/.test(o)) return 'error';
  if (/^(failed|failure|refused|rejected|denied|not offered|not applied)$/.test(o)) return 'warning';
  return 'info';
}

function fileName(uri: unknown): string | undefined {
  const u = str(uri);
  if (!u) return undefined;
  const path = u.replace(/[?#].*$/, '');
  let name = path.slice(path.lastIndexOf('/') + 1);
  try {
    name = decodeURIComponent(name);
  } catch {
    // not percent-encoded: keep it as it is
  }
  return name || undefined;
}

function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > MAX_TEXT ? `${flat.slice(0, MAX_TEXT - 1)}…` : flat;
}

function prefixed(text: string): string {
  const line = text.trim();
  return oneLine(/^nearcode\b/i.test(line) ? line : `nearcode: ${line}`);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function notOffered(what: string, result: Obj): ResultMessage {
  const reason = str(result.reason) ?? 'no reason given';
  if (reason === 'cancelled') return { level: 'info', text: prefixed(`${what} cancelled`) };
  return { level: 'warning', text: prefixed(`no ${what} offered: ${reason}`) };
}

function describeTests(result: Obj): ResultMessage | undefined {
  if (result.offered === false) return notOffered('unit tests', result);
  // The server already showed the outcome (window/showMessage): one message, not two.
  if (result.notified === true && result.applied !== false) return undefined;
  const run = isObject(result.run) ? result.run : {};
  const outcome = str(run.outcome) ?? 'not run';
  const summary = str(run.summary);
  const file = fileName(result.testFile) ?? 'the test file';
  const framework = str(result.framework);
  const where = result.applied === false ? `ready for ${file} (not applied)` : `added to ${file}`;
  const ran = outcome === 'not run'
    ? (summary && /^not run\b/.test(summary) ? summary : 'not run')
    : `ran before insertion: ${outcome}${summary ? ` (${summary})` : ''}`;
  let level = levelOf(outcome);
  if (result.applied === false && level === 'info') level = 'warning';
  return { level, text: prefixed(`${framework ? `${framework} ` : ''}tests ${where}; ${ran}`) };
}

function describeDocstring(result: Obj): ResultMessage {
  const symbol = str(result.symbol);
  const what = symbol ? `docstring for ${symbol}` : 'docstring';
  if (result.offered === false) return notOffered(what, result);
  if (result.applied === false) return { level: 'warning', text: prefixed(`${what} ready but not applied`) };
  const style = str(result.style);
  return { level: 'info', text: prefixed(`${what} inserted${style ? ` (${style} style)` : ''}`) };
}

function describeCloud(result: Obj): ResultMessage {
  const destination = str(result.destination) ?? 'the cloud endpoint';
  const bytes = num(result.bytes);
  const size = bytes !== undefined ? `${plural(bytes, 'byte')} ` : '';
  const extras: string[] = [];
  const redactions = isObject(result.redactions)
    ? Object.values(result.redactions).reduce<number>((n, v) => n + (num(v) ?? 0), 0)
    : num(result.redactions);
  if (redactions) extras.push(`${plural(redactions, 'secret')} redacted`);
  const withheld = Array.isArray(result.withheldFiles) ? result.withheldFiles.length : 0;
  if (withheld) extras.push(`${plural(withheld, 'file')} withheld`);
  const more = extras.length ? ` (${extras.join(', ')})` : '';
  if (result.sent === false) {
    return {
      level: 'info',
      text: prefixed(`would send ${size}to ${destination}${more}; nothing was sent`),
      detail: str(result.body),
      detailLanguage: 'json',
    };
  }
  const task = str(result.task);
  const answer = str(result.text);
  const applied = result.applied === true ? '; applied to the editor' : '';
  return {
    level: 'info',
    text: prefixed(`the cloud model answered${task ? ` (${task})` : ''}: sent ${size}to ${destination}${more}${applied}`),
    detail: result.applied === true ? undefined : answer,
    detailLanguage: 'markdown',
  };
}

function describeGeneric(result: Obj): ResultMessage | undefined {
  const outcome = str(result.outcome) ?? str(result.status);
  const words = (str(result.summary) ?? str(result.message) ?? str(result.reason))?.replace(/^nearcode:\s*/i, '');
  if (!outcome && !words) return undefined;
  const text = outcome && words ? `${outcome}: ${words}` : (outcome ?? words)!;
  return { level: levelOf(outcome), text: prefixed(text) };
}

const COMMAND_KINDS: Record<string, 'tests' | 'docstring' | 'cloud'> = {
  'nearcode.generateTests': 'tests',
  'nearcode.generateDocstring': 'docstring',
  'nearcode.askCloud': 'cloud',
  'nearcode.previewCloudPayload': 'cloud',
};

/** What to tell the user about a server command's result; undefined when there is nothing to say
 *  (no result, or a string, which the caller shows as a document). `command` (the server command
 *  id) decides when the result's fields do not, e.g. for a cancelled run. */
export function describeCommandResult(result: unknown, command?: string): ResultMessage | undefined {
  if (!isObject(result)) return undefined;
  let kind = command ? COMMAND_KINDS[command] : undefined;
  if ('testFile' in result || 'framework' in result || isObject(result.run)) kind = 'tests';
  else if ('docstring' in result || 'style' in result || 'signatureCheck' in result) kind = 'docstring';
  else if (typeof result.sent === 'boolean') kind = 'cloud';
  if (kind === 'tests') return describeTests(result);
  if (kind === 'docstring') return describeDocstring(result);
  if (kind === 'cloud' && typeof result.sent === 'boolean') return describeCloud(result);
  if (result.offered === false) return notOffered('suggestion', result);
  return describeGeneric(result);
}
