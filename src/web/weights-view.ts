import type { DownloadOffer } from '../core/weights.ts';
import type { JobEvent } from '../jobs/events.ts';
import type { WeightsView } from '../schemas/weights.ts';
import { formatBytes } from './format.ts';

/**
 * What the Models page and the experiment form show of pretrained weights (plan/weights.md): a
 * record as a list item (source, format, status, sha256, tensors, date), a running load's live
 * figures, and failures in words — the codes stay in the API.
 */

export const FORMAT_LABELS: Record<string, string> = {
  torchvision_pth: 'PyTorch .pth',
  safetensors: 'safetensors',
  studio_ckpt: 'Studio checkpoint',
};

const DATE = new Intl.DateTimeFormat('en-GB', { day: 'numeric', month: 'short', year: 'numeric' });
const TIME = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', hour12: false });

/** "8 Dec 2025". */
export const formatDate = (iso: string): string => DATE.format(new Date(iso));
/** "8 Dec 2025, 14:02". */
export const formatDateTime = (iso: string): string => `${DATE.format(new Date(iso))}, ${TIME.format(new Date(iso))}`;

/** The name a person knows the weights by: the file (uploaded, read, downloaded), else the format. */
export function weightsTitle(w: Pick<WeightsView, 'file_name' | 'format' | 'id'>): string {
  return w.file_name ?? (w.format ? FORMAT_LABELS[w.format] : w.id);
}

/** Where they came from, in words: "uploaded", "server file" (the path is shown beside), "downloaded · torchvision IMAGENET1K_V1". */
export function sourceLabel(w: Pick<WeightsView, 'source' | 'source_path' | 'file_name'>, offers: readonly DownloadOffer[] = []): string {
  if (w.source === 'download') {
    const o = offers.find((x) => x.file === w.file_name);
    return o ? `downloaded · torchvision ${o.variant}` : 'downloaded from torchvision';
  }
  return w.source_path ? 'server file' : 'uploaded';
}

/** A long name cut in the middle, so its start and its end (hash, extension) both stay: "efficientnet_b1_…-bac287d4.pth". */
export function middleCut(name: string, max: number): string {
  if (name.length <= max) return name;
  const tail = Math.round((max - 1) * 0.45);
  return `${name.slice(0, max - 1 - tail)}…${name.slice(name.length - tail)}`;
}

/** "8 Dec" this year, "8 Dec 2025" before. */
function shortDate(iso: string, now = new Date()): string {
  const d = new Date(iso);
  return d.getFullYear() === now.getFullYear() ? formatDate(iso).replace(/ \d{4}$/, '') : formatDate(iso);
}

/**
 * One option of the form's Weights select, short enough for the select beside the model at
 * 1280 px: "mobilenet_v3_small.pth · 8 Dec"; its detail line (shown under the select when chosen)
 * says where they came from, when, and their sha256.
 */
export function weightsOption(w: WeightsView): { label: string; detail: string } {
  const how = w.source === 'download' ? 'Downloaded from torchvision' : w.source_path ? `Read from ${w.source_path}` : 'Uploaded';
  return {
    label: `${middleCut(weightsTitle(w), 32)} · ${shortDate(w.created_at)}`,
    detail: `${how} ${formatDateTime(w.created_at)} · ${w.tensors_loaded} tensors · sha256 ${w.sha256 ? `${w.sha256.slice(0, 12)}…` : '—'}`,
  };
}

export interface WordedError {
  title: string;
  message: string;
}

/** A message as a sentence: its field prefix ("path: …") dropped, the first letter capital, a full stop. */
export function sentence(message: string): string {
  const m = message.replace(/^[a-z_.]+: (?=\S)/, '').trim();
  if (!m) return '';
  const s = m.charAt(0).toUpperCase() + m.slice(1);
  return /[.!?)]$/.test(s) ? s : `${s}.`;
}

/** How to get a published file onto an offline machine by hand (the page's tabs do the rest). */
export function manualWay(o: { url: string; file: string; sha256: string | null; sha256_prefix: string }): string {
  const sha = o.sha256 ? `its sha256 is ${o.sha256}` : `its sha256 starts with ${o.sha256_prefix}`;
  return `Download ${o.url} on a computer that is online (${sha}), copy ${o.file} to this machine, then upload it or load it by its path on the server.`;
}

/** What went wrong with a download, without the manual way the worker appends, the URL as the file's name. */
function downloadDetail(w: WeightsView): string {
  let m = (w.error?.message ?? '').split(': download ')[0];
  if (w.url && w.file_name) m = m.split(w.url).join(w.file_name);
  // A status code says nothing to a person: what it means does.
  m = m.replace(/ answered HTTP 404$/, ' is not on the server').replace(/ answered HTTP \d+$/, ': the server answered with an error');
  return m.replace(/[.\s]+$/, '');
}

/** A failed record's error in words: a heading and what happened (and, for a download, the manual way). */
export function wordedError(w: WeightsView, offers: readonly DownloadOffer[] = []): WordedError | null {
  if (!w.error) return null;
  const offer = offers.find((o) => o.file === w.file_name);
  switch (w.error.code) {
    case 'CANCELLED':
      return { title: 'Cancelled', message: w.source === 'download' ? 'The download was cancelled; what arrived is kept, and downloading again resumes it.' : 'The load was cancelled before it finished.' };
    case 'INTERRUPTED':
      return { title: 'Interrupted', message: 'The studio stopped while these weights were loading. Load them again.' };
    case 'OFFLINE':
      return { title: 'This machine is offline', message: offer ? manualWay(offer) : 'The download server cannot be reached from this machine. Load the file by upload or server path instead.' };
    case 'DOWNLOAD_FAILED':
      return { title: 'The download failed', message: `The download did not finish: ${downloadDetail(w)}.${offer ? ` Or by hand: ${manualWay(offer)}` : ''}` };
    case 'HASH_MISMATCH':
      return { title: 'Not the published file', message: 'The downloaded bytes do not have the published checksum, so they were discarded. Try again, or download the file elsewhere and load it here.' };
    case 'UNSAFE_PICKLE':
      return { title: 'Refused for safety', message: `${sentence(w.error.message)} Re-save it as a plain state dict (torch.save(model.state_dict(), …)) or as safetensors.` };
    case 'PAYLOAD_TOO_LARGE':
      return { title: 'Too large', message: sentence(w.error.message) };
    default:
      return { title: /do not fit/.test(w.error.message) ? `Not weights for ${w.model}` : 'Could not load these weights', message: sentence(w.error.message) };
  }
}

/** A running load's figures as the live widget shows them (from its job's last events). */
export interface WeightsLive {
  percent: number;
  indeterminate: boolean;
  step: string;
}

export function liveFigures(events: readonly JobEvent[], source: WeightsView['source']): WeightsLive {
  let fraction = 0;
  let done: number | null = null;
  let total: number | null = null;
  let tensors: number | null = null;
  let message: string | null = null;
  let seen = false;
  for (const e of events) {
    const d = (typeof e.data === 'object' && e.data !== null ? e.data : {}) as Record<string, unknown>;
    const num = (k: string): number | null => (typeof d[k] === 'number' && Number.isFinite(d[k]) ? (d[k] as number) : null);
    if (e.type === 'progress') {
      seen = true;
      fraction = num('progress') ?? fraction;
      done = num('bytes_done') ?? done;
      total = num('bytes_total') ?? total;
      tensors = num('tensors') ?? tensors;
    } else if (e.type === 'log' && typeof d.message === 'string' && d.message) message = d.message;
  }
  const percent = Math.round(Math.min(1, Math.max(0, fraction)) * 100);
  let step: string;
  if (tensors !== null) step = `Storing ${tensors} tensors`;
  else if (source === 'download' && done !== null && (total === null || done < total)) step = `${formatBytes(done)}${total ? ` of ${formatBytes(total)}` : ''} downloaded`;
  else if (done !== null && total !== null && done >= total) step = `Reading ${formatBytes(total)}: checking and matching tensors`;
  else if (message) step = sentence(message).replace(/\.$/, '');
  else step = source === 'download' ? 'Connecting' : 'Reading the file';
  return { percent, indeterminate: !seen || percent === 0, step };
}
