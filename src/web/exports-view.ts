import { FORMAT_NAMES, FORMATS, type FormatName } from '../export/formats/index.ts';
import { pct } from './training-view.ts';

/** How the deploy page names and shapes things; no I/O here. */

/** The export formats (src/export/formats/), in registry order. */
export const EXPORT_VARIANTS: readonly FormatName[] = FORMAT_NAMES;
export type ExportVariantName = FormatName;

export const VARIANT_NOTES = Object.fromEntries(FORMATS.map((f) => [f.name, f.note])) as Record<ExportVariantName, string>;

/** A predicted value as a person reads it: 4 significant digits, no exponent for everyday sizes. */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3);
  return Number(v.toPrecision(4)).toString();
}

export interface AnswerBar {
  label: string;
  score: number;
  /** 0–100, one decimal. */
  percent: number;
  percent_label: string;
}

/** A score as a bar: clamped to [0, 1], shown in percent with one decimal. */
export function answerBar(label: string, score: number, threshold?: number): AnswerBar & { threshold: number | null; threshold_percent: number | null } {
  const s = Number.isFinite(score) ? Math.min(Math.max(score, 0), 1) : 0;
  const percent = Math.round(s * 1000) / 10;
  const t = threshold === undefined ? null : Math.min(Math.max(threshold, 0), 1);
  return { label, score: s, percent, percent_label: `${percent.toFixed(1)}%`, threshold: t, threshold_percent: t === null ? null : Math.round(t * 1000) / 10 };
}

/** The deploy page of a project; the experiment and export in view ride along in the query. */
export function exportsUrl(projectId: string, experimentId?: string, exportId?: string): string {
  const q = new URLSearchParams();
  if (experimentId) q.set('experiment', experimentId);
  if (exportId) q.set('export', exportId);
  const s = q.toString();
  return `/projects/${projectId}/exports${s ? `?${s}` : ''}`;
}

/** 11.2 M, 842 K, 96: parameter counts as a person reads them. */
export function formatCount(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e8 ? 0 : n >= 1e7 ? 1 : 2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(n >= 1e5 ? 0 : 1)} K`;
  return String(Math.round(n));
}

/** FLOPs at batch 1: 1.82 GFLOPs, 56.3 MFLOPs. */
export function formatFlops(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} K`;
  return String(Math.round(n));
}

export function formatMs(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

export function formatRate(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  return v >= 1000 ? Math.round(v).toLocaleString('en-US') : v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

/** A small error in scientific notation once it is below what fixed digits show. */
export function formatError(v: number | null | undefined): string {
  if (v === null || v === undefined || Number.isNaN(v)) return 'NaN';
  if (v === 0) return '0';
  return v < 1e-3 ? v.toExponential(1) : v.toFixed(4);
}

/** The figures of one benchmark run (one thread count), as the page needs them. */
export interface LatencyLike {
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
}
export interface ThreadRunLike {
  threads: number;
  latency_b1: LatencyLike;
  throughput: { batch: number; images_per_s: number }[];
}
export interface BenchmarkLike {
  results: ThreadRunLike[];
  peak_rss_bytes?: number;
}

/** The run with the most threads: what a deployment on this machine would see. */
export function mainRun(b: BenchmarkLike | null | undefined): ThreadRunLike | null {
  if (!b || b.results.length === 0) return null;
  return b.results.reduce((best, r) => (r.threads > best.threads ? r : best));
}

export const throughputAt = (r: ThreadRunLike | null, batch: number): number | null =>
  r?.throughput.find((t) => t.batch === batch)?.images_per_s ?? null;

export interface BenchmarkRow {
  threads: string;
  p50: string;
  p90: string;
  p99: string;
  throughput: { batch: number; value: string }[];
}

export function benchmarkRows(b: BenchmarkLike | null | undefined): BenchmarkRow[] {
  if (!b) return [];
  return [...b.results]
    .sort((x, y) => x.threads - y.threads)
    .map((r) => ({
      threads: `${r.threads} thread${r.threads === 1 ? '' : 's'}`,
      p50: formatMs(r.latency_b1.p50_ms),
      p90: formatMs(r.latency_b1.p90_ms),
      p99: formatMs(r.latency_b1.p99_ms),
      throughput: r.throughput.map((t) => ({ batch: t.batch, value: formatRate(t.images_per_s) })),
    }));
}

export interface ProfileNodeLike {
  node: string;
  op_type: string;
  /** Kernel time per run, microseconds. */
  mean_us: number;
  percent: number;
  params: number | null;
}

export interface ProfileRow {
  node: string;
  op: string;
  time: string;
  percent: number;
  percent_label: string;
  params: string;
}

/** The slowest nodes first, `limit` of them; times per run in ms (or µs when small). */
export function profileRows(nodes: readonly ProfileNodeLike[], limit: number): ProfileRow[] {
  return [...nodes]
    .sort((a, b) => b.mean_us - a.mean_us)
    .slice(0, limit)
    .map((n) => ({
      node: n.node,
      op: n.op_type,
      time: n.mean_us >= 1000 ? `${(n.mean_us / 1000).toFixed(2)} ms` : `${n.mean_us.toFixed(0)} µs`,
      percent: Math.max(0, Math.min(100, n.percent)),
      percent_label: `${n.percent.toFixed(1)}%`,
      params: n.params === null || n.params === 0 ? '—' : formatCount(n.params),
    }));
}

/** Measures are null where the model gave NaN (JSON has none): shown as NaN, never as a number. */
export interface ValidationLike {
  max_abs_error: number | null;
  rmse: number | null;
  cosine: number | null;
  argmax_agreement: number | null;
  /** What was compared (absent before tasks: class probabilities); argmax agreement means something only for those. */
  kind?: 'probabilities' | 'scores' | 'values';
  passed: boolean;
  failures?: string[];
}

export interface ValidationView {
  passed: boolean;
  max_abs: string;
  rmse: string;
  cosine: string;
  /** null: not measured for this kind of output (scores, values). */
  agreement: string | null;
  failures: string[];
}

export function validationView(v: ValidationLike | null | undefined): ValidationView | null {
  if (!v) return null;
  return {
    passed: v.passed,
    max_abs: formatError(v.max_abs_error),
    rmse: formatError(v.rmse),
    cosine: v.cosine === null || Number.isNaN(v.cosine) ? 'NaN' : v.cosine.toFixed(5),
    agreement: (v.kind ?? 'probabilities') !== 'probabilities' ? null : v.argmax_agreement === null ? 'NaN' : pct(v.argmax_agreement),
    failures: v.failures ?? [],
  };
}

/** Accuracy beside the fp32 variant of the same export: "−1.6 pt", "+0.0 pt". */
export function accuracyDelta(acc: number | null | undefined, reference: number | null | undefined): string | null {
  if (acc === null || acc === undefined || reference === null || reference === undefined) return null;
  const d = (acc - reference) * 100;
  const sign = d > 0.05 ? '+' : d < -0.05 ? '−' : '±';
  return `${sign}${Math.abs(d).toFixed(1)} pt`;
}

/**
 * The manifest as the page shows it: 2-space JSON, with short arrays of plain values (shapes,
 * mean/std) kept on one line. JSON strings hold no raw newline or bracket that the pattern could
 * split, because a bracket inside a string simply leaves that array expanded.
 */
export function prettyJson(v: unknown): string {
  return JSON.stringify(v, null, 2).replace(/\[\n([^[\]{}]*?)\n\s*\]/g, (whole, inner: string) => {
    const one = `[${inner.trim().split(/,\n\s*/).join(', ')}]`;
    return one.length <= 72 ? one : whole;
  });
}
