/**
 * torchvision's `_make_divisible` (from the TF MobileNet code): round `v` to the nearest multiple
 * of `divisor`, never below it, and never more than 10% below `v`.
 */
export function makeDivisible(v: number, divisor = 8): number {
  let n = Math.max(divisor, Math.floor((v + divisor / 2) / divisor) * divisor);
  if (n < 0.9 * v) n += divisor;
  return n;
}
