/**
 * Exports: JSON (the whole tree, every branch; re-importable) and Markdown (the selected path,
 * for reading). Rule: JSON export must always pass `parseImport` — the round-trip test checks.
 */
import { selectedPath } from './tree';
import { EXPORT_FORMAT, EXPORT_VERSION, type Conversation, type ExportFile } from './types';

export function toExportFile(conversations: Conversation[], now: number): ExportFile {
  return { format: EXPORT_FORMAT, version: EXPORT_VERSION, exportedAt: now, conversations };
}

export function exportJson(conversations: Conversation[], now: number): string {
  return JSON.stringify(toExportFile(conversations, now), null, 2);
}

function conversationMarkdown(c: Conversation): string {
  const lines = [`# ${c.title.replace(/\n/g, ' ')}`, ''];
  lines.push(`_Exported from Phi-3 WebGPU Chat. Created ${new Date(c.createdAt).toISOString()}._`, '');
  if (c.settings.systemPrompt.trim()) lines.push('## System', '', c.settings.systemPrompt, '');
  for (const m of selectedPath(c)) {
    lines.push(m.role === 'user' ? '## User' : '## Assistant', '', m.content, '');
    if (m.error) lines.push(`> Error: ${m.error}`, '');
  }
  return lines.join('\n');
}

export function exportMarkdown(conversations: Conversation[]): string {
  return conversations.map(conversationMarkdown).join('\n---\n\n');
}

/** A file name safe on every OS: letters, digits, dashes. */
export function exportFileName(title: string, ext: 'json' | 'md'): string {
  const slug = title.normalize('NFKD').replace(/[^\w\s-]/g, '').trim().replace(/\s+/g, '-').toLowerCase().slice(0, 60);
  return `${slug || 'conversation'}.${ext}`;
}
