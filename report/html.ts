// HTML pieces of the report: every string that comes from data goes through escapeHtml; the
// page is one file with its CSS inline and nothing fetched.

export function escapeHtml(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Markup that is already safe (built here, or vega's SVG), as opposed to a string to escape. */
export class Html {
  constructor(readonly markup: string) {}
}
export const raw = (markup: string) => new Html(markup);

type CellValue = string | number | null | undefined | Html;

export const count = (x: number | null | undefined): string => (x === null || x === undefined ? '–' : x.toLocaleString('en-US'));

function cell(v: CellValue, tag: 'td' | 'th'): string {
  if (v instanceof Html) return `<${tag}>${v.markup}</${tag}>`;
  // Counts and their blanks align right.
  const numeric = typeof v === 'number' || v === null || v === undefined;
  const text = v === null || v === undefined ? '–' : numeric ? count(v) : v;
  return `<${tag}${numeric ? ' class="num"' : ''}>${escapeHtml(text)}</${tag}>`;
}

/** A table with a header row; `id` names it for the tests and for links. */
export function table(id: string, header: string[], rows: CellValue[][], caption?: string): string {
  const head = `<tr>${header.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr>`;
  const body = rows.map((r) => `<tr>${r.map((v, i) => cell(v, i === 0 ? 'th' : 'td')).join('')}</tr>`).join('\n');
  const cap = caption ? `<caption>${escapeHtml(caption)}</caption>` : '';
  return `<table id="${escapeHtml(id)}">${cap}<thead>${head}</thead><tbody>${body}</tbody></table>`;
}

export function section(id: string, title: string, ...parts: string[]): string {
  return `<section id="${escapeHtml(id)}"><h2>${escapeHtml(title)}</h2>\n${parts.join('\n')}\n</section>`;
}

export const para = (text: string) => `<p>${escapeHtml(text)}</p>`;
export const figure = (svg: string, caption: string) => `<figure>${svg}<figcaption>${escapeHtml(caption)}</figcaption></figure>`;

const CSS = `
body{font:14px/1.45 Helvetica,Arial,sans-serif;color:#1a1a1a;margin:0;background:#fafafa}
main{max-width:1180px;margin:0 auto;padding:20px 28px 60px;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
p.meta{color:#555;margin:0 0 12px}
table{border-collapse:collapse;margin:6px 0 14px;font-size:13px}
caption{text-align:left;font-weight:bold;padding:4px 0}
th,td{border:1px solid #d4d4d4;padding:3px 8px;text-align:left;vertical-align:top}
thead th{background:#eef2f6}
tbody th{font-weight:normal;background:#fbfbfb;white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums}
td code,th code{font-size:12px}
figure{display:inline-block;margin:6px 18px 12px 0;vertical-align:top}
figcaption{font-size:12px;color:#444;max-width:560px}
.grid{display:flex;flex-wrap:wrap;gap:6px 18px}
.hash{font-family:Menlo,Consolas,monospace;font-size:11px;word-break:break-all}
nav a{margin-right:12px}
`;

export function page(title: string, meta: string, nav: { id: string; title: string }[], body: string[]): string {
  const links = nav.map((n) => `<a href="#${escapeHtml(n.id)}">${escapeHtml(n.title)}</a>`).join('');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeHtml(title)}</title><style>${CSS}</style></head>
<body><main>
<h1>${escapeHtml(title)}</h1><p class="meta">${escapeHtml(meta)}</p>
<nav>${links}</nav>
${body.join('\n')}
</main></body></html>
`;
}
