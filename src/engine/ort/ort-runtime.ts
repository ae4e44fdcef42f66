/**
 * A `TokenRuntime` over an onnxruntime-web session: feeds one Phi-3 graph per step in whichever
 * layout it has, and keeps the KV cache (present.* → past.*) between steps so `generate()` gets the
 * same KV reuse as the native engine.
 *
 * Where the cache lives:
 * - WebGPU EP: present.* are requested as `gpu-buffer` outputs and fed back as past.* without ever
 *   being downloaded. Truncating the cache for KV reuse (a follow-up turn that diverges from what
 *   is cached) copies the kept prefix of every head into a fresh GPU buffer on ORT's own device
 *   (`copyBufferToBuffer`, KVH copies per tensor); nothing is re-run.
 * - WASM EP: the cache is CPU tensors; onnxruntime copies it into and out of its heap on every
 *   run (O(tokens) bytes per step, the price of the WASM EP). Truncation slices each head.
 *
 * Logits ARE read back, unlike the native engine (which samples on the GPU and reads 4 bytes): on
 * WebGPU the logits stay a `gpu-buffer` output and only the last row (vocab·4 bytes) is copied to
 * a mappable buffer; on WASM the whole (S, vocab) output arrives on the CPU and the last row is
 * used. Tokens are chosen by `sampleReference`, the CPU twin of the GPU sampler (same RNG).
 * Rule: every GPU tensor this runtime owns (past.*, logits) is disposed exactly once — a tensor
 * fed to `run` is disposed only after the run that replaced it has returned.
 */
import type * as Ort from 'onnxruntime-web';
import { AppError } from '../errors';
import type { TokenRuntime } from '../generate';
import { sampleReference } from '../kernels/sampler';
import { float16ToFloat32 } from '../onnx/tensor-data';
import type { SamplingOptions } from '../types';

export type OrtModule = typeof Ort;
export type OrtProvider = 'webgpu' | 'wasm';

interface PastSpec {
  /** `past_key_values.{i}.key|value`. */
  name: string;
  /** `present.{i}.key|value`. */
  present: string;
  type: 'float32' | 'float16';
  kvHeads: number;
  headDim: number;
}

export interface OrtRuntimeOptions {
  ort: OrtModule;
  session: Ort.InferenceSession;
  provider: OrtProvider;
  /** Tokens the cache may hold (the model's rotary cache rows, or less). */
  contextLimit: number;
  vocab: number;
  /** ORT's WebGPU device (webgpu only): used for the last-row logits copy and KV truncation. */
  device?: GPUDevice;
  /** Phi-3 128K: the length past which the graph's LongRoPE `If` takes the long factors (see `reusableFor`). */
  rotarySwitch?: number;
}

/** The past.* inputs of the graph, with their fixed (kvHeads, headDim) dims. */
export function pastSpecs(session: Ort.InferenceSession): PastSpec[] {
  const pasts: PastSpec[] = [];
  for (const m of session.inputMetadata) {
    const match = /^past_key_values\.(\d+)\.(key|value)$/.exec(m.name);
    if (!match || !m.isTensor) continue;
    const [, kvHeads, , headDim] = m.shape;
    if (typeof kvHeads !== 'number' || typeof headDim !== 'number') {
      throw new AppError('MODEL_UNSUPPORTED_GRAPH', `Input ${m.name} has shape ${JSON.stringify(m.shape)}; expected [batch, kvHeads, past, headDim] with fixed kvHeads and headDim.`);
    }
    if (m.type !== 'float32' && m.type !== 'float16') throw new AppError('MODEL_UNSUPPORTED_GRAPH', `Input ${m.name} has type ${m.type}; expected float32 or float16.`);
    pasts.push({ name: m.name, present: `present.${match[1]}.${match[2]}`, type: m.type, kvHeads, headDim });
  }
  if (pasts.length === 0) throw new AppError('MODEL_UNSUPPORTED_GRAPH', 'The graph has no past_key_values.* inputs, so it cannot keep a KV cache between steps.');
  return pasts;
}

export class OrtRuntime implements TokenRuntime {
  readonly cachedIds: number[] = [];
  readonly contextLimit: number;
  readonly provider: OrtProvider;
  private readonly ort: OrtModule;
  private readonly session: Ort.InferenceSession;
  private readonly pasts: PastSpec[];
  private readonly inputNames: ReadonlySet<string>;
  private readonly vocab: number;
  private readonly device: GPUDevice | undefined;
  /** past.* tensors for the next run; absent → an empty (1, KVH, 0, D) tensor. */
  private past = new Map<string, Ort.Tensor>();
  /** Length of the sequence the past tensors hold (≥ cachedIds.length until truncation is applied). */
  private pastLength = 0;
  private destroyed = false;
  private readonly rotarySwitch: number;
  /** Whether the past tensors' keys were rotated with LongRoPE's long factors (a run past `rotarySwitch`). */
  private longKeys = false;

  constructor(o: OrtRuntimeOptions) {
    this.ort = o.ort;
    this.session = o.session;
    this.provider = o.provider;
    this.contextLimit = o.contextLimit;
    this.vocab = o.vocab;
    this.device = o.device;
    this.rotarySwitch = o.rotarySwitch ?? Infinity;
    this.pasts = pastSpecs(o.session);
    this.inputNames = new Set(o.session.inputNames);
    if (o.provider === 'webgpu' && !o.device) throw new AppError('BAD_ARGUMENT', 'OrtRuntime on the WebGPU EP needs onnxruntime\'s GPUDevice.');
  }

  /** Output locations for `InferenceSession.create`: KV and logits stay on the GPU under WebGPU. */
  static outputLocations(outputNames: readonly string[]): Record<string, Ort.Tensor.DataLocation> {
    const loc: Record<string, Ort.Tensor.DataLocation> = {};
    for (const n of outputNames) if (n === 'logits' || n.startsWith('present.')) loc[n] = 'gpu-buffer';
    return loc;
  }

  truncate(length: number): void {
    if (length < this.cachedIds.length) this.cachedIds.length = length;
  }

  /**
   * TokenRuntime.reusableFor. The graph rotates a run's keys by the factors of the run's whole
   * length, so keys cached on one side of LongRoPE's switch are stale on the other: the run that
   * crosses runs the whole sequence again, as onnxruntime-genai does (and the native engine).
   * A `reach` (PrefillFeed.reach) changes nothing here: the graph picks by the run's own length.
   */
  reusableFor(stepEnd: number): number {
    return stepEnd > this.rotarySwitch === this.longKeys ? this.cachedIds.length : 0;
  }

  async step(ids: readonly number[], sampling: SamplingOptions, stepIndex: number): Promise<number> {
    const row = await this.logits(ids);
    // History for the repetition penalty = every cached token, as the native sampler sees it.
    return sampleReference(row, this.cachedIds, sampling, stepIndex);
  }

  /** Runs `ids` after the cache, appends them, and returns the last position's logits (vocab,). */
  async logits(ids: readonly number[]): Promise<Float32Array> {
    if (this.destroyed) throw new AppError('BAD_ARGUMENT', 'This onnxruntime engine was destroyed; load the model again.');
    if (ids.length === 0) throw new AppError('BAD_ARGUMENT', 'A step needs at least one token.');
    if (this.cachedIds.length + ids.length > this.contextLimit) {
      throw new AppError('CONTEXT_OVERFLOW', `${this.cachedIds.length + ids.length} tokens do not fit in the ${this.contextLimit}-token context. Start a new conversation or shorten it.`);
    }
    if (this.reusableFor(this.cachedIds.length + ids.length) < this.cachedIds.length) {
      ids = [...this.cachedIds, ...ids];
      this.cachedIds.length = 0;
    }
    this.applyTruncation();
    const { ort } = this;
    const S = ids.length;
    const past = this.cachedIds.length;
    const total = past + S;
    const feeds: Record<string, Ort.Tensor> = {};
    feeds.input_ids = new ort.Tensor('int64', BigInt64Array.from(ids, (id) => BigInt(id)), [1, S]);
    if (this.inputNames.has('attention_mask')) feeds.attention_mask = new ort.Tensor('int64', new BigInt64Array(total).fill(1n), [1, total]);
    if (this.inputNames.has('position_ids')) feeds.position_ids = new ort.Tensor('int64', BigInt64Array.from({ length: S }, (_, i) => BigInt(past + i)), [1, S]);
    for (const p of this.pasts) feeds[p.name] = this.past.get(p.name) ?? this.emptyPast(p);

    let out: Ort.InferenceSession.OnnxValueMapType;
    try {
      out = await this.session.run(feeds);
    } catch (err) {
      throw new AppError('MODEL_UNSUPPORTED_GRAPH', `onnxruntime-web (${this.provider}) failed to run the model: ${err instanceof Error ? err.message : String(err)}`);
    }
    const next = new Map<string, Ort.Tensor>();
    for (const p of this.pasts) {
      const present = out[p.present];
      if (!present) throw new AppError('MODEL_UNSUPPORTED_GRAPH', `The model has no output ${p.present} to feed back as ${p.name}.`);
      next.set(p.name, present);
    }
    for (const t of this.past.values()) t.dispose();
    this.past = next;
    this.pastLength = total;
    this.longKeys = total > this.rotarySwitch;
    this.cachedIds.push(...ids);
    const logits = out.logits;
    if (!logits) throw new AppError('MODEL_UNSUPPORTED_GRAPH', 'The model has no "logits" output.');
    try {
      return await this.lastRow(logits, S);
    } finally {
      if (logits.location === 'gpu-buffer') logits.dispose();
    }
  }

  private emptyPast(p: PastSpec): Ort.Tensor {
    const dims = [1, p.kvHeads, 0, p.headDim];
    return p.type === 'float16' ? new this.ort.Tensor('float16', new Uint16Array(0), dims) : new this.ort.Tensor('float32', new Float32Array(0), dims);
  }

  /** Last position's row of a (1, S, V) logits tensor, as f32. */
  private async lastRow(logits: Ort.Tensor, S: number): Promise<Float32Array> {
    const V = this.vocab;
    if (logits.dims[logits.dims.length - 1] !== V) throw new AppError('MODEL_UNSUPPORTED_GRAPH', `logits have shape ${JSON.stringify(logits.dims)}; expected last dim ${V}.`);
    if (logits.type !== 'float32' && logits.type !== 'float16') throw new AppError('MODEL_UNSUPPORTED_GRAPH', `logits have type ${logits.type}; expected float32 or float16.`);
    const es = logits.type === 'float32' ? 4 : 2;
    if (logits.location === 'gpu-buffer') {
      // Copy only the last row (V·es bytes) instead of downloading the whole (S, V) output.
      const device = this.device!;
      const size = Math.ceil((V * es) / 4) * 4;
      const staging = device.createBuffer({ label: 'ort logits row', size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      try {
        const encoder = device.createCommandEncoder({ label: 'ort logits row' });
        encoder.copyBufferToBuffer(logits.gpuBuffer, (S - 1) * V * es, staging, 0, size);
        device.queue.submit([encoder.finish()]);
        await staging.mapAsync(GPUMapMode.READ);
        const bytes = staging.getMappedRange().slice(0);
        return es === 4 ? new Float32Array(bytes, 0, V) : float16ToFloat32(new Uint16Array(bytes, 0, V));
      } finally {
        staging.destroy();
      }
    }
    const data = logits.data;
    if (data instanceof Float32Array) return data.slice((S - 1) * V, S * V);
    if (data instanceof Uint16Array) return float16ToFloat32(data.subarray((S - 1) * V, S * V));
    // A Float16Array, where the browser has one (onnxruntime then uses it for float16).
    const halves = data as unknown as { subarray(a: number, b: number): ArrayLike<number> };
    return Float32Array.from(halves.subarray((S - 1) * V, S * V));
  }

  /** Shrinks the past tensors to `cachedIds.length` positions when `truncate` dropped tokens. */
  private applyTruncation(): void {
    const keep = this.cachedIds.length;
    if (keep === this.pastLength) return;
    if (keep === 0) {
      for (const t of this.past.values()) t.dispose();
      this.past.clear();
      this.pastLength = 0;
      return;
    }
    const next = new Map<string, Ort.Tensor>();
    for (const p of this.pasts) {
      const t = this.past.get(p.name)!;
      next.set(p.name, t.location === 'gpu-buffer' ? this.truncateGpu(t, p, keep) : this.truncateCpu(t, p, keep));
    }
    for (const t of this.past.values()) t.dispose();
    this.past = next;
    this.pastLength = keep;
  }

  /** (1, KVH, P, D) → (1, KVH, keep, D) on ORT's device: one copy per head. */
  private truncateGpu(t: Ort.Tensor, p: PastSpec, keep: number): Ort.Tensor {
    const device = this.device!;
    const es = p.type === 'float32' ? 4 : 2;
    const P = this.pastLength;
    const rowBytes = p.headDim * es;
    // headDim is even (rotary halves), so every offset and size below is a multiple of 4.
    const buffer = device.createBuffer({ label: `${p.name} (truncated)`, size: p.kvHeads * keep * rowBytes, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
    const encoder = device.createCommandEncoder({ label: 'ort kv truncate' });
    for (let h = 0; h < p.kvHeads; h++) encoder.copyBufferToBuffer(t.gpuBuffer, h * P * rowBytes, buffer, h * keep * rowBytes, keep * rowBytes);
    device.queue.submit([encoder.finish()]);
    return this.ort.Tensor.fromGpuBuffer(buffer, { dataType: p.type, dims: [1, p.kvHeads, keep, p.headDim], dispose: () => buffer.destroy() });
  }

  /** (1, KVH, P, D) → (1, KVH, keep, D) on the CPU. */
  private truncateCpu(t: Ort.Tensor, p: PastSpec, keep: number): Ort.Tensor {
    const P = this.pastLength;
    const D = p.headDim;
    const src = t.data as Float32Array | Uint16Array;
    const dst = new (src.constructor as Float32ArrayConstructor | Uint16ArrayConstructor)(p.kvHeads * keep * D);
    for (let h = 0; h < p.kvHeads; h++) dst.set(src.subarray(h * P * D, h * P * D + keep * D), h * keep * D);
    return p.type === 'float16' ? new this.ort.Tensor('float16', dst as Uint16Array, [1, p.kvHeads, keep, D]) : new this.ort.Tensor('float32', dst as Float32Array, [1, p.kvHeads, keep, D]);
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const t of this.past.values()) t.dispose();
    this.past.clear();
    await this.session.release();
  }
}
