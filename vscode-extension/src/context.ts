// The report of nearcode.showContext as a Markdown document: what the last completion was given
// (each part: file and lines, tokens, why it was kept, cut or dropped; the budget by part), then the
// prompt itself. Plain module (unit-tested with Node's test runner).

import type { ContextResult } from './protocol.generated';

const FENCE = '`'.repeat(4);

export function contextDocument(result: Partial<ContextResult> | null | undefined): string {
  if (!result || !result.available) {
    return `# nearcode context\n\n${result?.reason ?? 'No completion has been asked for in this document yet.'}\n`;
  }
  const lines = ['# nearcode context', '', FENCE + 'text', (result.text ?? '').trimEnd(), FENCE];
  if (result.prompt) {
    lines.push('', '## The prompt the engine received', '', FENCE + 'text', result.prompt, FENCE);
  }
  return lines.join('\n') + '\n';
}
