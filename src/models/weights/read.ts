import { AppError } from '../../kernel/errors.ts';
import { CHECKPOINT_FORMAT } from '../checkpoint.ts';
import { isLegacyTorchFile, isZip, LEGACY_MESSAGE, readTorchPth } from './pth.ts';
import { readSafetensors, readSafetensorsHeader } from './safetensors.ts';
import { readStudioCheckpoint } from './studio-ckpt.ts';
import type { ReadWeights, WeightsFormat } from './types.ts';

/**
 * Which weights format the bytes are, from their first bytes alone (never from the file name):
 * a zip → torchvision `.pth`; a u64 length then `{` → safetensors, or the studio's checkpoint
 * when its header says so. Cheap enough for a request to refuse an obviously wrong upload at once.
 */
export function sniffWeightsFormat(head: Uint8Array): WeightsFormat {
  if (isLegacyTorchFile(head)) throw new AppError('BAD_INPUT', LEGACY_MESSAGE);
  if (isZip(head)) return 'torchvision_pth';
  if (head.length >= 9 && head[8] === 0x7b) {
    // Both start `{`; the studio's header starts with its format field.
    const text = Buffer.from(head.subarray(8, Math.min(head.length, 8 + 64))).toString('latin1');
    return text.startsWith(`{"format":"${CHECKPOINT_FORMAT}"`) ? 'studio_ckpt' : 'safetensors';
  }
  throw new AppError(
    'BAD_INPUT',
    'not a weights file this studio reads: expected a PyTorch .pth (torch.save of a state dict), a .safetensors file, or a .ckpt of a studio run',
  );
}

export function readWeightsFile(bytes: Uint8Array): ReadWeights & { model?: string | null } {
  const format = sniffWeightsFormat(bytes.subarray(0, 128));
  if (format === 'torchvision_pth') return readTorchPth(bytes);
  if (format === 'studio_ckpt') return readStudioCheckpoint(bytes);
  const h = readSafetensorsHeader(bytes);
  if (h && (h.json as { format?: unknown }).format === CHECKPOINT_FORMAT) return readStudioCheckpoint(bytes);
  return readSafetensors(bytes);
}
