/**
 * The native engine's decode tuning in words for the model panel: which GEMV runs, and whether
 * this GPU chose it (engine/phi3/autotune.ts). Pure, so it is unit-tested.
 */
import type { DecodeTuningInfo } from '../worker/protocol';

export function tuningText(t: DecodeTuningInfo): string {
  if (t.source === 'skipped') return 'decode kernels: defaults';
  const when = t.source === 'stored' ? 'measured on this GPU at an earlier load' : 'measured on this GPU';
  const ms = (name: string) => t.timings?.find((x) => x.name === name)?.msPerStep ?? null;
  const chosen = ms(t.name);
  const base = ms('default');
  if (t.name === 'default') return `decode kernels: default; none of the ${(t.timings?.length ?? 1) - 1} others was 3% faster (${when})`;
  if (chosen === null || base === null) return `decode kernels: ${t.name} (${when})`;
  return `decode kernels: ${t.name}, ${Math.round((100 * (base - chosen)) / base)}% faster than the default (${when})`;
}
