/**
 * Renders a `BenchReport` as Markdown (a generated section spliced into docs/benchmarks.md between
 * markers) and as a hand-written SVG bar chart of decode tokens/s. Pure string functions.
 * Rule: the renderers print what the report holds — a missing figure is shown as "—" with its
 * reason, never as 0.
 */
import { isMissing, type BenchReport, type EngineResult, type Missing, type Summary } from './report';

const fmt = (x: number, digits = 2): string => {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  return x.toFixed(digits);
};
const mb = (bytes: number) => `${fmt(bytes / 2 ** 20, 1)} MiB`;
const cell = (s: Summary | undefined, unit = '', scale = 1): string => {
  if (!s) return '—';
  const spread = s.n > 1 ? ` (${fmt(s.min * scale)}–${fmt(s.max * scale)})` : '';
  return `${fmt(s.median * scale)}${unit}${spread}`;
};

/** One row of the engines table: figure name, then native, ort. */
function rows(n: EngineResult | Missing, o: EngineResult | Missing, ratios: BenchReport['ratios']): string[][] {
  const get = (e: EngineResult | Missing, f: (e: EngineResult) => string) => (isMissing(e) ? '—' : f(e));
  const ctxKeys = new Set<string>();
  const preKeys = new Set<string>();
  for (const e of [n, o]) {
    if (isMissing(e)) continue;
    Object.keys(e.decodeTokensPerSec).forEach((k) => ctxKeys.add(k));
    Object.keys(e.prefillTokensPerSec).forEach((k) => preKeys.add(k));
  }
  const ratio = (table: Record<string, number> | null, k: string) => (table && table[k] !== undefined ? `${fmt(table[k])}×` : '—');
  const out: string[][] = [];
  for (const k of [...ctxKeys].sort((a, b) => Number(a) - Number(b))) {
    out.push([`decode tok/s, context ${k}`, get(n, (e) => cell(e.decodeTokensPerSec[k])), get(o, (e) => cell(e.decodeTokensPerSec[k])), ratio(ratios.decode, k)]);
  }
  for (const k of [...preKeys].sort((a, b) => Number(a) - Number(b))) {
    out.push([`prefill tok/s, ${k}-token prompt`, get(n, (e) => cell(e.prefillTokensPerSec[k])), get(o, (e) => cell(e.prefillTokensPerSec[k])), ratio(ratios.prefill, k)]);
  }
  out.push(['time to first token after load (16-token prompt), ms', get(n, (e) => cell(e.firstTokenMs)), get(o, (e) => cell(e.firstTokenMs)), '']);
  out.push(['load to ready, ms', get(n, (e) => cell(e.loadMs)), get(o, (e) => cell(e.loadMs)), '']);
  const heap = (e: EngineResult) => (isMissing(e.peakJsHeapDuringLoadBytes) ? `— (${e.peakJsHeapDuringLoadBytes.missing})` : cell(e.peakJsHeapDuringLoadBytes, ' MiB', 1 / 2 ** 20));
  out.push(['peak JS heap during load', get(n, heap), get(o, heap), '']);
  const gpu = (pick: 'afterLoad' | 'peak') => (e: EngineResult) => {
    const g = e.gpuBufferBytes;
    return g === undefined ? '— (not counted in this report)' : isMissing(g) ? `— (${g.missing})` : cell(g[pick], ' MiB', 1 / 2 ** 20);
  };
  out.push(['GPU buffers after load', get(n, gpu('afterLoad')), get(o, gpu('afterLoad')), '']);
  out.push(['GPU buffers, most at once over load and round', get(n, gpu('peak')), get(o, gpu('peak')), '']);
  out.push(['dispatches per decode token', get(n, (e) => cell(e.perToken.dispatches)), get(o, (e) => cell(e.perToken.dispatches)), '']);
  out.push(['submits per decode token', get(n, (e) => cell(e.perToken.submits)), get(o, (e) => cell(e.perToken.submits)), '']);
  out.push(['bytes read back per decode token', get(n, (e) => cell(e.perToken.readbackBytes)), get(o, (e) => cell(e.perToken.readbackBytes)), '']);
  return out;
}

function table(header: string[], body: string[][]): string {
  const line = (r: string[]) => `| ${r.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...body.map(line)].join('\n');
}

export function renderMarkdown(r: BenchReport): string {
  const m = r.machine;
  const a = m.adapter;
  const adapter = [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ') || 'unknown';
  const lines: string[] = [];
  lines.push(`Run ${r.createdAt} on **${r.host === 'browser' ? `headless ${m.browser ?? 'Chromium'}` : `Node ${m.node} (webgpu package)`}**, adapter **${adapter}**` + ` (features: ${m.features.join(', ') || 'none'}).`);
  if (r.commit) lines.push(`Engine code at commit \`${r.commit}\`.`);
  lines.push(`Machine: ${m.cpus} × ${m.cpuModel}; load average before ${m.loadavgBefore.map((x) => x.toFixed(2)).join(' / ')}, after ${m.loadavgAfter.map((x) => x.toFixed(2)).join(' / ')} (1/5/15 min).`);
  lines.push(
    `Model: ${r.model.generated ? 'generated random-weight' : 'given'} Phi-3, ${r.model.layers} layer(s), hidden ${r.model.hidden}, intermediate ${r.model.intermediate}, vocab ${r.model.vocab}, ${r.model.dtype} (${mb(r.model.bytes)}, \`${r.model.onnxPath}\`).`,
  );
  lines.push(`Settings: ${r.settings.rounds} round(s)${r.host === 'browser' ? ', engines alternated' : ''}; ${r.settings.decodeSteps} timed decode steps per context; loaded from ${r.settings.loadFrom}. Cells: median (min–max over rounds).`);
  lines.push('');
  const labels = (e: EngineResult | Missing, name: string) => (isMissing(e) ? `${name} (absent: ${e.missing})` : `${name}: ${e.label}`);
  lines.push(table(['figure', labels(r.engines.native, 'native'), labels(r.engines.ort, 'ort'), 'native ÷ ort'], rows(r.engines.native, r.engines.ort, r.ratios)));
  if (r.ratios.reason) lines.push('', `Ratios: none (${r.ratios.reason}).`);
  lines.push('');
  if (isMissing(r.kernels)) {
    lines.push(`Per-kernel GPU time: not measured (${r.kernels.missing}).`);
  } else {
    const k = r.kernels;
    const head = k.kernels.length === 0 ? 'No GEMV was timed in isolation (--no-kernels).' : `Per-kernel GPU time (native kernels, isolated, timer: ${k.timer}).`;
    lines.push(`${head} Copy bandwidth: ${fmt(k.copy.gbPerSec)} GB/s (${k.copy.note}).`);
    if (k.dispatch) lines.push('', `Fixed cost of a small dispatch: ${fmt(k.dispatch.dependentUs)} µs when each depends on the previous one (a decode step's chain), ${fmt(k.dispatch.independentUs)} µs when independent (${k.dispatch.note}).`);
    if (k.kernels.length > 0) {
      lines.push(
        '',
        table(
          ['kernel', 'shape', 'ms / call', 'bytes read', 'GB/s', '% of copy'],
          k.kernels.map((t) => [t.name, t.shape, fmt(t.ms, 3), mb(t.bytes), fmt(t.gbPerSec), t.fractionOfCopy === null ? '—' : `${fmt(t.fractionOfCopy * 100, 1)}%`]),
        ),
      );
    }
  }
  if (r.profile && isMissing(r.profile)) {
    lines.push('', `Decode step profile: not measured (${r.profile.missing}).`);
  } else if (r.profile) {
    for (const p of r.profile) {
      lines.push('', `Native decode step at context ${p.context}, each kernel timed in context (a timestamped pass per kernel; fastest of ${p.steps} steps; summed over the layers): ${fmt(p.totalMs, 3)} ms in all.`);
      const inStep = p.stepMs !== undefined;
      const floor = p.readAllMs !== undefined;
      if (inStep) {
        lines.push(
          `In one pass the step's kernels take ${fmt(p.stepMs!, 3)} ms; "in step" is that minus the step without the kind (no pass boundary per kernel), the figure the GEMV bandwidth target is checked on.`,
        );
      }
      if (floor) {
        lines.push(
          `"Read floor": the same difference with the kind replaced by a kernel that only reads its weights (kernels/weight-read.ts), the least time those bytes take there; "of floor" is floor ÷ in step. With every weight matmul only reading, the step takes ${fmt(p.readAllMs!, 3)} ms.`,
        );
      }
      lines.push('');
      const pct = (f: number | null | undefined) => (f === null || f === undefined ? '—' : `${fmt(f * 100, 1)}%`);
      const ms3 = (v: number | undefined) => (v === undefined ? '—' : fmt(v, 3));
      const rate = (v: number | null | undefined) => (v === null || v === undefined ? '—' : fmt(v));
      const head = ['kernel', 'calls', 'ms / token', 'share', 'weights read', 'GB/s', '% of copy'];
      const inStepHead = ['in step ms', 'in step GB/s', 'in step % of copy'];
      const floorHead = ['read floor ms', 'floor GB/s', 'floor % of copy', 'of floor'];
      lines.push(
        table(
          [...head, ...(inStep ? inStepHead : []), ...(floor ? floorHead : [])],
          p.kinds.map((k) => [
            k.kind, String(k.calls), fmt(k.ms, 3), `${fmt((100 * k.ms) / p.totalMs, 1)}%`, k.weightBytes ? mb(k.weightBytes) : '—', rate(k.gbPerSec), pct(k.fractionOfCopy),
            ...(inStep ? [ms3(k.inStepMs), rate(k.inStepGbPerSec), pct(k.inStepFractionOfCopy)] : []),
            ...(floor ? [ms3(k.readFloorMs), rate(k.readFloorGbPerSec), pct(k.readFloorFractionOfCopy), pct(k.ofReadFloor)] : []),
          ]),
        ),
      );
    }
  }
  if (r.prefillProfile && isMissing(r.prefillProfile)) {
    lines.push('', `Prefill profile: not measured (${r.prefillProfile.missing}).`);
  } else if (r.prefillProfile) {
    for (const p of r.prefillProfile) {
      lines.push('', `Native prefill of one ${p.tokens}-token chunk, each kernel timed in context (a timestamped pass per kernel; fastest of ${p.runs} chunks; summed over the layers): ${fmt(p.totalMs, 3)} ms in all. TFLOP/s counts 2 · rows · K · N per matmul.`, '');
      lines.push(
        table(
          ['kernel', 'calls', 'ms / chunk', 'share', 'TFLOP/s'],
          p.kinds.map((k) => [k.kind, String(k.calls), fmt(k.ms, 3), `${fmt((100 * k.ms) / p.totalMs, 1)}%`, k.tflops === null ? '—' : fmt(k.tflops, 2)]),
        ),
      );
    }
  }
  if (r.notes.length) lines.push('', ...r.notes.map((n) => `- ${n}`));
  return lines.join('\n');
}

/** Replaces the text between `<!-- NAME:begin -->` and `<!-- NAME:end -->` (appends both when absent). */
export function spliceSection(doc: string, name: string, body: string): string {
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const block = `${begin}\n${body.trim()}\n${end}`;
  const i = doc.indexOf(begin);
  const j = doc.indexOf(end);
  if (i >= 0 && j > i) return doc.slice(0, i) + block + doc.slice(j + end.length);
  return `${doc.trimEnd()}\n\n${block}\n`;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Grouped bars: one group per decode context, one bar per engine (tokens/s, linear scale). */
export function renderDecodeSvg(r: BenchReport): string {
  const engines = (['native', 'ort'] as const).map((name) => ({ name, e: r.engines[name] }));
  const contexts = [...new Set(engines.flatMap(({ e }) => (isMissing(e) ? [] : Object.keys(e.decodeTokensPerSec))))].sort((a, b) => Number(a) - Number(b));
  const colors = { native: '#2563eb', ort: '#f59e0b' };
  const W = 640;
  const barH = 18;
  const groupGap = 14;
  const left = 110;
  const right = 90;
  const top = 48;
  const groupH = engines.length * barH + groupGap;
  const H = top + Math.max(1, contexts.length) * groupH + 40;
  let max = 0;
  for (const { e } of engines) if (!isMissing(e)) for (const s of Object.values(e.decodeTokensPerSec)) max = Math.max(max, s.median);
  const scale = max > 0 ? (W - left - right) / max : 0;
  const a = r.machine.adapter;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text x="12" y="20" font-size="14" font-weight="bold">Decode tokens/s by context (median of ${r.settings.rounds} round(s); higher is better)</text>`);
  out.push(`<text x="12" y="36" fill="#555">${esc(`${r.model.layers}-layer full-width Phi-3 ${r.model.dtype}; ${[a.vendor, a.architecture, a.description].filter(Boolean).join(' ')}; ${r.host}${/swiftshader/i.test(JSON.stringify(a)) ? ' (SwiftShader = CPU, not a GPU)' : ''}`)}</text>`);
  contexts.forEach((ctx, gi) => {
    const y0 = top + gi * groupH;
    out.push(`<text x="${left - 8}" y="${y0 + (engines.length * barH) / 2 + 4}" text-anchor="end">context ${esc(ctx)}</text>`);
    engines.forEach(({ name, e }, bi) => {
      const y = y0 + bi * barH;
      const s = isMissing(e) ? undefined : e.decodeTokensPerSec[ctx];
      if (!s) {
        out.push(`<text x="${left + 4}" y="${y + barH - 5}" fill="#888">${name}: not measured</text>`);
        return;
      }
      const w = Math.max(1, s.median * scale);
      out.push(`<rect x="${left}" y="${y + 1}" width="${w.toFixed(1)}" height="${barH - 2}" fill="${colors[name]}"><title>${name}: ${fmt(s.median)} tok/s</title></rect>`);
      out.push(`<text x="${(left + w + 4).toFixed(1)}" y="${y + barH - 5}">${name} ${fmt(s.median)}</text>`);
    });
  });
  if (contexts.length === 0) out.push(`<text x="${left}" y="${top + 14}" fill="#888">no decode figures</text>`);
  const ly = H - 16;
  out.push(`<rect x="12" y="${ly - 10}" width="12" height="12" fill="${colors.native}"/><text x="28" y="${ly}">native (WGSL kernels)</text>`);
  out.push(`<rect x="190" y="${ly - 10}" width="12" height="12" fill="${colors.ort}"/><text x="206" y="${ly}">onnxruntime-web WebGPU</text>`);
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
