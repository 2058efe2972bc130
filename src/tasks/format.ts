/** How the tasks' pages print numbers (the same forms as the web layer's: src/web/training-view.ts). */

export const pct = (v: number | null | undefined): string => (v === null || v === undefined ? '—' : `${(v * 100).toFixed(1)}%`);
export const fixed = (v: number | null | undefined, d = 4): string => (v === null || v === undefined ? '—' : v.toFixed(d));

/** A value in a target's own units: 4 significant digits, no exponent for everyday sizes. */
export function num(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(2);
  return Number(v.toPrecision(4)).toString();
}
