/** Small presentation helpers shared by the page controllers. */

const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['year', 365 * 24 * 3600],
  ['month', 30 * 24 * 3600],
  ['day', 24 * 3600],
  ['hour', 3600],
  ['minute', 60],
];
const rtf = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });

/** "3 minutes ago"; under a minute is "just now". */
export function timeAgo(iso: string, now = Date.now()): string {
  const seconds = Math.round((Date.parse(iso) - now) / 1000);
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size) return rtf.format(Math.trunc(seconds / size), unit);
  }
  return 'just now';
}

/** The avatar letter of a project: its first letter or digit, else a dot. */
export function initial(name: string): string {
  const m = /[\p{L}\p{N}]/u.exec(name);
  return m ? m[0].toUpperCase() : '·';
}

export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 10 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

export interface PagerLink {
  label: string;
  href: string | null;
  current?: boolean;
  rel?: 'prev' | 'next';
}

export interface Pager {
  from: number;
  to: number;
  pages: number;
  links: PagerLink[];
}

/**
 * Previous, a window of page numbers around the current one (with the first and last always
 * there, gaps shown as …), next. `hrefOf(n)` builds the URL of page n.
 */
export function pager(page: number, pageSize: number, total: number, hrefOf: (n: number) => string): Pager {
  const pages = Math.max(1, Math.ceil(total / pageSize));
  const from = total === 0 ? 0 : Math.min(total, (page - 1) * pageSize + 1);
  const to = Math.min(total, page * pageSize);
  const links: PagerLink[] = [{ label: '‹ Prev', href: page > 1 ? hrefOf(Math.min(page - 1, pages)) : null, rel: 'prev' }];
  const shown = new Set([1, pages]);
  for (let n = page - 2; n <= page + 2; n++) if (n >= 1 && n <= pages) shown.add(n);
  let last = 0;
  for (const n of [...shown].sort((a, b) => a - b)) {
    if (n - last > 1) links.push({ label: '…', href: null });
    links.push({ label: String(n), href: hrefOf(n), current: n === page });
    last = n;
  }
  links.push({ label: 'Next ›', href: page < pages ? hrefOf(page + 1) : null, rel: 'next' });
  return { from, to, pages, links };
}
