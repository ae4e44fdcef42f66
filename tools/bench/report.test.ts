/**
 * The benchmark's pure parts: statistics over rounds, native ÷ ort ratios, argument lists, and
 * the Markdown/SVG renderers (what a missing figure looks like, section splicing).
 */
import { describe, expect, it } from 'vitest';
import { benchTokenIds, combineRounds, computeRatios, foldDecodeProfile, foldPrefillProfile, isMissing, parseIntList, summarize, tokensPerSec, type BenchReport, type RoundResult } from './report';
import { renderDecodeSvg, renderMarkdown, spliceSection } from './render';

function round(over: Partial<RoundResult> = {}): RoundResult {
  return {
    loadMs: 1000,
    firstTokenMs: 50,
    decode: { '0': 20, '512': 18 },
    prefill: { '128': 400 },
    perToken: { dispatches: 200, submits: 1, readbackBytes: 4 },
    heap: { beforeBytes: 10 * 2 ** 20, peakBytes: 40 * 2 ** 20 },
    gpuBuffers: { afterLoadBytes: 300 * 2 ** 20, peakBytes: 420 * 2 ** 20 },
    ...over,
  };
}

function report(over: Partial<BenchReport> = {}): BenchReport {
  const native = combineRounds('native', 'native', [round(), round({ decode: { '0': 30, '512': 24 } }), round({ decode: { '0': 25, '512': 21 } })], 230);
  const ort = combineRounds('ort', 'ort', [round({ decode: { '0': 10, '512': 12 }, prefill: { '128': 500 }, perToken: { dispatches: 600, submits: 3, readbackBytes: 128256 } })], null);
  return {
    version: 1,
    createdAt: '2026-11-26T00:00:00.000Z',
    host: 'browser',
    machine: { cpus: 2, cpuModel: 'cpu', loadavgBefore: [1, 2, 3], loadavgAfter: [1.5, 2, 3], platform: 'linux x64', node: 'v20', browser: 'Chromium 1', adapter: { vendor: 'google', architecture: 'swiftshader', device: '', description: 'SwiftShader' }, features: ['timestamp-query'] },
    model: { dir: '/m', onnxPath: 'onnx/model_q4.onnx', layers: 1, hidden: 3072, intermediate: 8192, vocab: 32064, dtype: 'q4', bytes: 500 * 2 ** 20, generated: true },
    settings: { rounds: 3, contexts: [0, 512], prefill: [128], decodeSteps: 4, loadFrom: 'memory' },
    engines: { native, ort },
    ratios: computeRatios(native, ort),
    kernels: { timer: 'timestamp-query', copy: { bytes: 1, ms: 1, gbPerSec: 100, note: 'n' }, kernels: [{ name: 'lm_head', shape: '3072 → 32064', ms: 0.5, bytes: 55e6, gbPerSec: 80, fractionOfCopy: 0.8 }] },
    notes: ['a note'],
    ...over,
  };
}

describe('statistics', () => {
  it('summarize gives median (odd and even counts), min, max and keeps the order of values', () => {
    expect(summarize([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3, n: 3, values: [3, 1, 2] });
    expect(summarize([4, 1, 3, 2]).median).toBe(2.5);
    expect(() => summarize([])).toThrow(/no values/);
  });

  it('tokensPerSec is 1000 / median step time', () => {
    expect(tokensPerSec([100, 50, 200])).toBe(10);
    expect(tokensPerSec([100], 128)).toBe(1280);
  });

  it('combineRounds takes medians per key, and only keys every round has', () => {
    const e = combineRounds('native', 'n', [round(), round({ decode: { '0': 30 } }), round({ decode: { '0': 25, '512': 21 } })], 230);
    expect(e.decodeTokensPerSec['0'].median).toBe(25);
    expect(e.decodeTokensPerSec['512']).toBeUndefined();
    expect(e.prefillTokensPerSec['128'].median).toBe(400);
    expect(e.peakJsHeapDuringLoadBytes).toMatchObject({ median: 40 * 2 ** 20 });
    expect(e.declaredDispatchesPerDecode).toBe(230);
    const node = combineRounds('native', 'n', [round({ heap: null })], null);
    expect(node.peakJsHeapDuringLoadBytes).toEqual({ missing: expect.stringMatching(/browser only/) });
  });

  it('combineRounds folds the GPU buffer bytes, and says so when a round lacks them', () => {
    const e = combineRounds('ort', 'o', [round(), round({ gpuBuffers: { afterLoadBytes: 100, peakBytes: 200 } }), round()], null);
    expect(e.gpuBufferBytes).toMatchObject({ afterLoad: { median: 300 * 2 ** 20, min: 100 }, peak: { median: 420 * 2 ** 20, min: 200 } });
    const old = combineRounds('ort', 'o', [round(), round({ gpuBuffers: undefined })], null);
    expect(old.gpuBufferBytes).toEqual({ missing: 'GPU buffers were not counted in every round' });
  });
});

describe('ratios', () => {
  it('native ÷ ort on medians per context and prompt length', () => {
    const r = report().ratios;
    expect(r.decode).toEqual({ '0': 25 / 10, '512': 21 / 12 });
    expect(r.prefill).toEqual({ '128': 400 / 500 });
    expect(r.reason).toBeUndefined();
  });

  it('null with the reason when an engine is missing', () => {
    const native = combineRounds('native', 'n', [round()], 1);
    expect(computeRatios(native, { missing: 'onnxruntime failed to load' })).toEqual({ decode: null, prefill: null, reason: 'ort: onnxruntime failed to load' });
  });
});

describe('decode profile', () => {
  const step = (qkv: number, o: number, qkv2: number) => [
    { kind: 'qkv', weightBytes: 2e6, ms: qkv },
    { kind: 'o', weightBytes: 1e6, ms: o },
    { kind: 'qkv', weightBytes: 2e6, ms: qkv2 },
    { kind: 'attention', weightBytes: 0, ms: 0.5 },
  ];
  it('takes each kernel\'s fastest step, sums per kind in order, and gives GB/s of the weights and the share of copy', () => {
    const p = foldDecodeProfile(512, [step(0.004, 0.003, 0.006), step(0.002, 0.005, 0.004)], 2000);
    expect(p.kinds.map((k) => k.kind)).toEqual(['qkv', 'o', 'attention']);
    const qkv = p.kinds[0];
    expect(qkv.calls).toBe(2);
    expect(qkv.ms).toBeCloseTo(0.006, 12); // 0.002 + 0.004
    expect(qkv.weightBytes).toBe(4e6);
    expect(qkv.gbPerSec).toBeCloseTo(4e6 / 0.006e6, 9);
    expect(qkv.fractionOfCopy).toBeCloseTo(4e6 / 0.006e6 / 2000, 9);
    expect(p.kinds[2].gbPerSec).toBeNull();
    expect(p.totalMs).toBeCloseTo(0.006 + 0.003 + 0.5, 12);
    expect(p.steps).toBe(2);
    expect(foldDecodeProfile(0, [step(1, 1, 1)], null).kinds[0].fractionOfCopy).toBeNull();
  });
  it('with leave-one-out timings, gives each kind its cost inside the step (clamped at 0) and renders the in-step columns', () => {
    const p = foldDecodeProfile(512, [step(0.004, 0.003, 0.006)], 2000, { stepMs: 1, withoutMs: { qkv: 0.996, o: 1.0005, attention: 0.6 } });
    expect(p.stepMs).toBe(1);
    const [qkv, o, attention] = p.kinds;
    expect(qkv.inStepMs).toBeCloseTo(0.004, 12);
    expect(qkv.inStepGbPerSec).toBeCloseTo(4e6 / 0.004e6, 9); // both qkv calls' weights
    expect(qkv.inStepFractionOfCopy).toBeCloseTo(0.5, 9);
    expect(o.inStepMs).toBe(0); // slower without it: noise, clamped
    expect(o.inStepGbPerSec).toBeNull();
    expect(attention.inStepMs).toBeCloseTo(0.4, 12);
    expect(attention.inStepGbPerSec).toBeNull();
    const md = renderMarkdown({ ...report(), profile: [p] });
    expect(md).toContain('In one pass the step\'s kernels take 1.000 ms');
    expect(md).toContain('in step % of copy');
    expect(md).toMatch(/\| qkv .*\| 0\.004 \| 1000 \| 50\.0% \|/);
    // Without them (older reports), the table keeps its per-pass columns only.
    const plain = renderMarkdown({ ...report(), profile: [foldDecodeProfile(512, [step(0.004, 0.003, 0.006)], 2000)] });
    expect(plain).not.toContain('in step');
    expect(md).not.toContain('read floor');
  });
  it('with weight-read timings, gives each matmul kind its read floor in the step and the share of it the kernels reach', () => {
    const inStep = { stepMs: 1, withoutMs: { qkv: 0.996, o: 1.0005, attention: 0.6 }, readMs: { qkv: 0.998, o: 1.001 }, readAllMs: 0.7 };
    const p = foldDecodeProfile(512, [step(0.004, 0.003, 0.006)], 2000, inStep);
    expect(p.readAllMs).toBe(0.7);
    const [qkv, o, attention] = p.kinds;
    expect(qkv.readFloorMs).toBeCloseTo(0.002, 12); // 0.998 − 0.996
    expect(qkv.readFloorGbPerSec).toBeCloseTo(4e6 / 0.002e6, 9);
    expect(qkv.readFloorFractionOfCopy).toBeCloseTo(1, 9);
    expect(qkv.ofReadFloor).toBeCloseTo(0.5, 9); // 0.002 of the kernels' 0.004
    expect(o.readFloorMs).toBeCloseTo(0.0005, 12);
    expect(o.ofReadFloor).toBeNull(); // its in-step time clamped to 0: no share
    expect(attention.readFloorMs).toBeUndefined();
    const md = renderMarkdown({ ...report(), profile: [p] });
    expect(md).toContain('With every weight matmul only reading, the step takes 0.700 ms.');
    expect(md).toMatch(/\| qkv .*\| 0\.004 \| 1000 \| 50\.0% \| 0\.002 \| 2000 \| 100\.0% \| 50\.0% \|/);
    expect(md).toMatch(/\| attention .*\| 0\.400 \| — \| — \| — \| — \| — \| — \|/);
  });
  it('refuses steps that ran different kernels, and no steps', () => {
    expect(() => foldDecodeProfile(0, [step(1, 1, 1), step(1, 1, 1).slice(1)], 1)).toThrow(/different kernels/);
    expect(() => foldDecodeProfile(0, [], 1)).toThrow(/no profiled steps/);
  });
  it('renders a copy-only kernel report (--no-kernels) without a GEMV table', () => {
    const r = report();
    if (isMissing(r.kernels)) throw new Error('fixture has kernels');
    const md = renderMarkdown({ ...r, kernels: { ...r.kernels, kernels: [] } });
    expect(md).toContain('Copy bandwidth: 100 GB/s');
    expect(md).toContain('No GEMV was timed in isolation (--no-kernels). Copy bandwidth: 100 GB/s');
    expect(md).not.toContain('| kernel | shape |');
  });
  it('renders the dispatch cost line when the kernel report has it', () => {
    const r = report();
    if (isMissing(r.kernels)) throw new Error('fixture has kernels');
    const md = renderMarkdown({ ...r, kernels: { ...r.kernels, dispatch: { dependentUs: 9.5, independentUs: 2.25, note: 'n' } } });
    expect(md).toContain('Fixed cost of a small dispatch: 9.50 µs when each depends on the previous one');
    expect(md).toContain('2.25 µs when independent');
  });
  it('renders a table per context', () => {
    const md = renderMarkdown(report({ profile: [foldDecodeProfile(2048, [step(0.002, 0.003, 0.004)], 2000)] }));
    expect(md).toContain('Native decode step at context 2048');
    expect(md).toMatch(/\| qkv \| 2 \| 0\.006 \|/);
    expect(renderMarkdown(report({ profile: { missing: 'the device has no timestamp-query' } }))).toContain('Decode step profile: not measured (the device has no timestamp-query)');
  });
});

describe('prefill profile', () => {
  // A 512-token chunk: qkv twice (two layers; 3072 × 9216 multiply-adds per row), attention, the
  // lm_head on its last row only (3072 × 32064).
  const chunk = (qkv: number, qkv2: number) => [
    { kind: 'qkv', weightBytes: 2e6, ms: qkv, macsPerRow: 3072 * 9216, rows: 512 },
    { kind: 'attention', weightBytes: 0, ms: 0.3, macsPerRow: 0, rows: 512 },
    { kind: 'qkv', weightBytes: 2e6, ms: qkv2, macsPerRow: 3072 * 9216, rows: 512 },
    { kind: 'lm_head', weightBytes: 5e7, ms: 0.05, macsPerRow: 3072 * 32064, rows: 1 },
  ];
  it('takes each kernel\'s fastest chunk, sums per kind in order, and gives a matmul\'s TFLOP/s from rows · K · N', () => {
    const p = foldPrefillProfile(512, [chunk(2, 1.5), chunk(1, 3)]);
    expect(p.kinds.map((k) => k.kind)).toEqual(['qkv', 'attention', 'lm_head']);
    const qkv = p.kinds[0];
    expect(qkv.calls).toBe(2);
    expect(qkv.ms).toBeCloseTo(2.5, 12); // 1 + 1.5
    expect(qkv.tflops).toBeCloseTo((2 * 2 * 512 * 3072 * 9216) / (2.5 * 1e9), 6);
    expect(p.kinds[1].tflops).toBeNull();
    expect(p.kinds[2].tflops).toBeCloseTo((2 * 3072 * 32064) / (0.05 * 1e9), 6);
    expect(p.totalMs).toBeCloseTo(2.5 + 0.3 + 0.05, 12);
    expect(p.runs).toBe(2);
    // Older kernel lists without rows or multiply-adds: no rate, never a wrong one.
    expect(foldPrefillProfile(512, [[{ kind: 'qkv', weightBytes: 1, ms: 1 }]]).kinds[0].tflops).toBeNull();
  });
  it('refuses chunks that ran different kernels, and no chunks', () => {
    expect(() => foldPrefillProfile(512, [chunk(1, 1), chunk(1, 1).slice(1)])).toThrow(/different kernels/);
    expect(() => foldPrefillProfile(512, [])).toThrow(/no profiled chunks/);
  });
  it('renders a table per prompt length, and says why when it was not measured', () => {
    const md = renderMarkdown(report({ prefillProfile: [foldPrefillProfile(512, [chunk(1, 1.5)])] }));
    expect(md).toContain('Native prefill of one 512-token chunk');
    expect(md).toMatch(/\| qkv \| 2 \| 2\.500 \| 87\.7% \| 23\.2 \|/);
    expect(md).toMatch(/\| attention \| 1 \| 0\.300 \| .* \| — \|/);
    expect(renderMarkdown(report({ prefillProfile: { missing: 'the device has no timestamp-query' } }))).toContain('Prefill profile: not measured (the device has no timestamp-query)');
  });
});

describe('arguments and prompts', () => {
  it('parseIntList sorts, dedupes and names a bad entry', () => {
    expect(parseIntList('--contexts', '2048, 0,512,0')).toEqual([0, 512, 2048]);
    expect(() => parseIntList('--contexts', '0,abc')).toThrow(/--contexts: "abc"/);
    expect(() => parseIntList('--prefill', '-1')).toThrow(/"-1"/);
  });

  it('benchTokenIds is deterministic and avoids special ids', () => {
    const a = benchTokenIds(1000, 5);
    expect(a).toEqual(benchTokenIds(1000, 5));
    expect(a).not.toEqual(benchTokenIds(1000, 6));
    expect(Math.min(...a)).toBeGreaterThanOrEqual(3);
    expect(Math.max(...a)).toBeLessThan(32000);
  });
});

describe('rendering', () => {
  it('Markdown table holds both engines, the ratio, load average and kernel bandwidth', () => {
    const md = renderMarkdown(report());
    expect(md).toContain('| decode tok/s, context 0 | 25.0 (20.0–30.0) | 10.0 | 2.50× |');
    expect(md).toContain('| prefill tok/s, 128-token prompt | 400 (400–400) | 500 | 0.80× |');
    expect(md).toContain('| bytes read back per decode token | 4.00 (4.00–4.00) | 128256 |  |');
    expect(md).toContain('| GPU buffers after load | 300 MiB (300–300) | 300 MiB |  |');
    expect(md).toContain('| GPU buffers, most at once over load and round | 420 MiB (420–420) | 420 MiB |  |');
    // A report from before the count.
    const old = report();
    delete (old.engines.ort as { gpuBufferBytes?: unknown }).gpuBufferBytes;
    expect(renderMarkdown(old)).toContain('| GPU buffers after load | 300 MiB (300–300) | — (not counted in this report) |  |');
    expect(md).toContain('load average before 1.00 / 2.00 / 3.00');
    expect(md).toContain('| lm_head | 3072 → 32064 | 0.500 | 52.5 MiB | 80.0 | 80.0% |');
    expect(md).toContain('- a note');
  });

  it('a missing engine shows as — with its reason, never as 0', () => {
    const r = report();
    const absent = report({ engines: { native: r.engines.native, ort: { missing: 'no ORT here' } }, ratios: computeRatios(r.engines.native, { missing: 'no ORT here' }) });
    const md = renderMarkdown(absent);
    expect(md).toContain('ort (absent: no ORT here)');
    expect(md).toContain('| decode tok/s, context 0 | 25.0 (20.0–30.0) | — | — |');
    expect(md).toContain('Ratios: none (ort: no ORT here).');
    expect(renderDecodeSvg(absent)).toContain('ort: not measured');
  });

  it('SVG has one bar per engine and context, widths proportional to tok/s', () => {
    const svg = renderDecodeSvg(report());
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    const widths = [...svg.matchAll(/<rect x="110" y="[\d.]+" width="([\d.]+)"[^>]*><title>(\w+): ([\d.]+) tok\/s/g)].map((m) => ({ w: Number(m[1]), engine: m[2], v: Number(m[3]) }));
    expect(widths).toHaveLength(4);
    // The largest median (native, context 0: 25) spans the full plot width (640 - 110 - 90).
    expect(widths.find((b) => b.engine === 'native' && b.v === 25)?.w).toBeCloseTo(440, 1);
    expect(widths.find((b) => b.engine === 'ort' && b.v === 10)?.w).toBeCloseTo(176, 1);
    expect(svg).toContain('context 512');
  });

  it('spliceSection replaces between markers and appends when absent', () => {
    const doc = '# B\n\nintro\n\n<!-- x:begin -->\nold\n<!-- x:end -->\n\ntail\n';
    expect(spliceSection(doc, 'x', 'new')).toBe('# B\n\nintro\n\n<!-- x:begin -->\nnew\n<!-- x:end -->\n\ntail\n');
    expect(spliceSection('# B\n', 'y', 'body')).toBe('# B\n\n<!-- y:begin -->\nbody\n<!-- y:end -->\n');
  });
});
