/** Plain-text and markdown rendering of result tables. */

export type Align = 'l' | 'r';

export interface Table {
  title: string;
  headers: string[];
  rows: string[][];
  /** Per column; default: first column left, the rest right. */
  align?: Align[];
  /** Lines printed under the table (column meanings, caveats). */
  notes?: string[];
}

function alignOf(t: Table, i: number): Align {
  return t.align?.[i] ?? (i === 0 ? 'l' : 'r');
}

export function renderText(t: Table): string {
  const widths = t.headers.map((h, i) => Math.max(h.length, ...t.rows.map((r) => (r[i] ?? '').length)));
  const cell = (s: string, i: number) => (alignOf(t, i) === 'l' ? s.padEnd(widths[i]!) : s.padStart(widths[i]!));
  const line = (cells: string[]) => cells.map((c, i) => cell(c, i)).join('  ').trimEnd();
  const out = [`== ${t.title} ==`, line(t.headers), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of t.rows) out.push(line(t.headers.map((_, i) => r[i] ?? '')));
  for (const n of t.notes ?? []) out.push(`  ${n}`);
  return out.join('\n') + '\n';
}

function mdEscape(s: string): string {
  return s.replace(/\|/g, '\\|');
}

export function renderMarkdown(t: Table): string {
  const out = [`### ${t.title}`, '', `| ${t.headers.map(mdEscape).join(' | ')} |`];
  out.push(`| ${t.headers.map((_, i) => (alignOf(t, i) === 'l' ? ':---' : '---:')).join(' | ')} |`);
  for (const r of t.rows) out.push(`| ${t.headers.map((_, i) => mdEscape(r[i] ?? '')).join(' | ')} |`);
  if (t.notes?.length) {
    out.push('');
    for (const n of t.notes) out.push(`- ${n}`);
  }
  return out.join('\n') + '\n';
}
