/**
 * The native engine's kernel tuning in words for the model panel: which decode GEMV and prefill
 * GEMM run, and whether this GPU chose them (engine/phi3/autotune.ts). Pure, so it is unit-tested.
 */
import type { KernelChoice, KernelTuningInfo } from '../worker/protocol';

/** One family's choice: "direct, 41% faster than the default" or "default (no other was 3% faster)". */
function choiceText(c: KernelChoice): string {
  const ms = (name: string) => c.timings?.find((x) => x.name === name)?.ms ?? null;
  if (c.name === 'default') return c.timings ? 'default (no other was 3% faster)' : 'default';
  const chosen = ms(c.name);
  const base = ms('default');
  if (chosen === null || base === null) return c.name;
  return `${c.name}, ${Math.round((100 * (base - chosen)) / base)}% faster than the default`;
}

export function tuningText(t: KernelTuningInfo): string {
  if (t.source === 'measuring') {
    const n = t.progress ? ` (${t.progress.done} of ${t.progress.total})` : '';
    return `kernels: defaults while this GPU's are measured in the background${n}, first load only`;
  }
  if (t.source === 'skipped') return t.reason ? `kernels: defaults (measuring them stopped: ${t.reason.replace(/\.$/, '')}; measured again at the next load)` : 'kernels: defaults';
  const when = t.source === 'stored' ? 'measured on this GPU at an earlier load' : 'measured on this GPU';
  return `decode kernels: ${choiceText(t.decode)}; prefill: ${choiceText(t.prefill)} (${when})`;
}
