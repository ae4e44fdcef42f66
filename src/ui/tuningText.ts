/**
 * The native engine's kernel tuning in words for the model panel: which decode GEMV and prefill
 * GEMM run, which attention kernels, and whether this GPU chose them (engine/phi3/autotune.ts).
 * Pure, so it is unit-tested.
 */
import type { AttentionTuningInfo, KernelChoice, KernelTuningInfo } from '../worker/protocol';

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

/** The attention kernels' tuning: waiting for a long chat, being measured, or what it chose. */
export function attentionTuningText(a: AttentionTuningInfo): string {
  const tokens = `${a.context.toLocaleString('en-US')} tokens`;
  // While measuring, or after a measurement stopped: what runs, the defaults or a stored choice.
  const again = a.decode.name !== 'default' || a.prefill.name !== 'default';
  const running = again ? `${a.decode.name}; prefill: ${a.prefill.name}` : 'defaults';
  switch (a.source) {
    case 'waiting':
      return `attention: defaults until a chat reaches ${tokens}, then measured once on this GPU`;
    case 'measuring':
      return `attention: ${running} while this GPU's are measured${again ? ' again' : ''} at ${tokens} of context${a.progress ? ` (${a.progress.done} of ${a.progress.total})` : ''}`;
    case 'skipped':
      return `attention: ${running}${a.reason ? ` (measuring ${again ? 'again' : 'them'} stopped: ${a.reason.replace(/\.$/, '')}; measured again after the next load)` : ''}`;
    default:
      return `attention: ${choiceText(a.decode)}; prefill: ${choiceText(a.prefill)} (measured on this GPU at ${tokens} of context${a.source === 'stored' ? ', at an earlier load' : ''})`;
  }
}
