// Which suggestion is on screen and how much of it was taken, for the server's counters:
// `textDocument/didShowCompletion`, `textDocument/didPartiallyAcceptCompletion` and the item's
// `nearcode.didAcceptCompletion` command (docs/protocol.md). Plain module (unit-tested).

export interface WireRange {
  start: { line: number; character: number };
  end: { line: number; character: number };
}

/** An InlineCompletionItem as the server sent it (LSP shape). */
export interface WireInlineItem {
  insertText: string | { kind: 'snippet'; value: string };
  filterText?: string;
  range?: WireRange;
  command?: { title: string; command: string; arguments?: unknown[] };
}

import { SERVER_COMMANDS } from './protocol.generated';

export const ACCEPT_COMMAND = SERVER_COMMANDS.accept;

export function insertTextOf(item: WireInlineItem): string {
  return typeof item.insertText === 'string' ? item.insertText : item.insertText.value;
}

export function completionIdOf(item: WireInlineItem): string | undefined {
  const c = item.command;
  if (!c || c.command !== ACCEPT_COMMAND || !c.arguments || c.arguments.length === 0) return undefined;
  const id = c.arguments[0];
  return typeof id === 'string' || typeof id === 'number' ? String(id) : undefined;
}

interface Current {
  key: string;
  uri: string;
  item: WireInlineItem;
  /** UTF-16 units of insertText already in the document when shown (range before the cursor). */
  base: number;
  accepted: number;
}

export type AcceptKind = 'word' | 'line';

export interface PartialReport {
  item: WireInlineItem;
  acceptedLength: number;
  /** nearcode's addition to Copilot's notification: the server's insight counts them apart. */
  acceptKind: AcceptKind;
}

export class SuggestionTracker {
  private current: Current | undefined;
  private readonly seen: string[] = [];
  counts = { shown: 0, partiallyAccepted: 0, accepted: 0 };

  constructor(private readonly memory = 64) {}

  private keyOf(uri: string, item: WireInlineItem): string {
    return completionIdOf(item) ?? `${uri}\u0000${JSON.stringify(item.range ?? null)}\u0000${insertTextOf(item)}`;
  }

  /** The item is on screen. Returns true when it was not reported before (report it then). */
  shown(uri: string, item: WireInlineItem, base = 0): boolean {
    const key = this.keyOf(uri, item);
    if (this.current?.key !== key) {
      this.current = { key, uri, item, base: Math.max(0, base), accepted: 0 };
    }
    if (this.seen.includes(key)) return false;
    this.seen.push(key);
    if (this.seen.length > this.memory) this.seen.shift();
    this.counts.shown += 1;
    return true;
  }

  /** Text inserted into `uri` by an accept-next-word / accept-next-line command. */
  partiallyAccepted(uri: string, insertedLength: number, acceptKind: AcceptKind = 'word'): PartialReport | undefined {
    const cur = this.current;
    if (!cur || cur.uri !== uri || insertedLength <= 0) return undefined;
    const total = insertTextOf(cur.item).length;
    cur.accepted = Math.min(total - cur.base, cur.accepted + insertedLength);
    this.counts.partiallyAccepted += 1;
    return { item: cur.item, acceptedLength: cur.base + cur.accepted, acceptKind };
  }

  /** The item's accept command ran (the whole suggestion was taken). */
  accepted(completionId: unknown): void {
    this.counts.accepted += 1;
    if (this.current && completionIdOf(this.current.item) === String(completionId)) {
      this.current = undefined;
    }
  }

  /** The suggestion went away (document closed, other edits). */
  clear(uri?: string): void {
    if (!uri || this.current?.uri === uri) this.current = undefined;
  }

  get currentItem(): WireInlineItem | undefined {
    return this.current?.item;
  }
}
